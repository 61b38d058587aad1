"""The package is layered by concern, and every import points down: a package never imports one above it."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "jersey_cls"
# Lowest first. The top-level modules (messages, numbers, seeds, lightning_internals) are the foundation.
LAYERS = ["synth", "data", "model", "training", "evaluation", "deploy", "cli"]


def layer_of(module: str) -> int:
    """0 for the foundation, then 1 + the package's place in LAYERS; __main__ runs the command, above all."""
    parts = module.split(".")
    if parts[1:] == ["__main__"]:
        return len(LAYERS) + 1
    return LAYERS.index(parts[1]) + 1 if len(parts) > 2 or parts[1] in LAYERS else 0


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jersey_cls"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("jersey_cls")}
    return found


def module_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_import_points_down_the_layers():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_of(path)
        for imported in imports(path):
            if imported != "jersey_cls" and layer_of(imported) > layer_of(module):
                upward.append(f"{module} imports {imported}")
    assert not upward, "\n".join(upward)


def test_the_layers_name_every_package_and_the_top_holds_at_most_six_files():
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")} - {"configs"}
    assert packages == set(LAYERS)
    assert len([path for path in PACKAGE.iterdir() if path.suffix == ".py"]) <= 6


def test_the_layer_check_catches_an_upward_import(tmp_path):
    module = tmp_path / "probe.py"
    module.write_text("from jersey_cls.cli.app import main\n")
    assert layer_of("jersey_cls.data.datamodule") < layer_of(next(iter(imports(module))))
