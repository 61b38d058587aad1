"""The shipped configs, installed with the package: base.yaml gives every command its defaults."""
