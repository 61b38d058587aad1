import re
import shutil
import subprocess
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def locked_versions() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version
    return pins


def test_every_declared_dependency_is_pinned_in_the_lock_within_its_range():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    pins = locked_versions()
    problems = []
    for requirement in map(Requirement, declared):
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement} is not in requirements.lock")
        elif pins[name] not in requirement.specifier:
            problems.append(f"{requirement}: the lock pins {pins[name]}")
    assert not problems, "; ".join(problems) + ". Regenerate the lock: bash .ci/lock"
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_dockerfile_installs_the_lock_first_then_the_package_without_deps_as_non_root():
    dockerfile = (REPO / "Dockerfile").read_text()
    instructions = re.findall(r"^([A-Z]+) (.*)$", dockerfile, flags=re.MULTILINE)
    pip_installs = [args for op, args in instructions if op == "RUN" and "pip install" in args]
    assert pip_installs == [
        "pip install --no-cache-dir -r /tmp/requirements.lock",
        "pip install --no-cache-dir --no-deps /opt/jersey-cls",
    ]
    order = [args for op, args in instructions if op in ("COPY", "RUN")]
    lock_installed = order.index("pip install --no-cache-dir -r /tmp/requirements.lock")
    code_copied = next(i for i, args in enumerate(order) if args.startswith("jersey_cls"))
    assert lock_installed < code_copied  # a code change does not invalidate the dependency layer
    assert instructions[0] == ("FROM", "python:3.11-slim")
    user = [args for op, args in instructions if op == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert ("ENTRYPOINT", '["jersey-cls"]') in instructions
    # .ci/run runs these same two pip commands in a fresh virtualenv, then `pip check`.
    ci = (REPO / ".ci" / "run").read_text()
    assert 'bin/pip" install -r requirements.lock' in ci and 'bin/pip" install --no-deps .' in ci and "pip check" in ci


def test_dockerignore_keeps_runs_data_and_caches_out():
    rules = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert rules[0] == "*"  # everything is out unless named
    assert {rule for rule in rules if rule.startswith("!")} == {
        "!requirements.lock",
        "!pyproject.toml",
        "!README.md",
        "!jersey_cls/",
        "!configs/",
    }


def test_dockerfile_passes_hadolint():
    assert shutil.which("hadolint"), "hadolint comes with the test extra: pip install -e '.[test]'"
    lint = subprocess.run(["hadolint", str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
