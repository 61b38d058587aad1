import re
import shutil
import subprocess
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
LOCKS = (REPO / "requirements.lock", REPO / "requirements-test.lock")
# Distributions that exist for some platforms only: their pins must say where they apply.
PLATFORM_ONLY = {"nvidia-": "sys_platform == 'linux'", "cuda-": "sys_platform == 'linux'",
                 "triton": "sys_platform == 'linux'", "colorama": "sys_platform == 'win32'"}  # fmt: skip


def pins(path: Path) -> list[tuple[str, str, str, list[str]]]:
    """(name, version, marker, hashes) of every pin of a uv-compiled, hash-pinned requirements file."""
    found = []
    for entry in re.findall(r"^[A-Za-z0-9_.-]+==.*?(?=^[A-Za-z0-9_.-]+==|\Z)", path.read_text(), flags=re.M | re.S):
        head = entry.split("\\")[0].strip()
        requirement, _, marker = head.partition(";")
        name, _, version = requirement.strip().partition("==")
        found.append((canonicalize_name(name), version.strip(), marker.strip(), re.findall(r"--hash=(\S+)", entry)))
    return found


def test_every_declared_dependency_is_pinned_with_hashes_within_its_range():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    locked = [pin for lock in LOCKS for pin in pins(lock)]
    assert all(hashes for *_, hashes in locked), "every pin carries --hash lines (pip install --require-hashes)"
    versions = {}
    for name, version, *_ in locked:
        versions.setdefault(name, set()).add(version)
    problems = []
    for requirement in map(Requirement, declared):
        name = canonicalize_name(requirement.name)
        if name not in versions:
            problems.append(f"{requirement} is not locked")
        elif not any(v in requirement.specifier for v in versions[name]):
            problems.append(f"{requirement}: the locks pin {versions[name]}")
    assert not problems, "; ".join(problems) + ". Regenerate the locks: bash .ci/lock"
    assert versions["torch"] == {"2.14.1"} and versions["torchvision"] == {"0.29.1"}
    runtime = {name for name, *_ in pins(LOCKS[0])}
    assert not runtime & {name for name, *_ in pins(LOCKS[1])}, "the test lock repeats runtime pins"
    assert not runtime & {"bitsandbytes", "hydra-core", "jsonnet", "tensorboardx", "pytest", "ruff"}


def test_every_platform_specific_pin_carries_its_marker():
    platform_only = [(name, marker) for lock in LOCKS for name, _, marker, _ in pins(lock)
                     if any(name.startswith(prefix) for prefix in PLATFORM_ONLY)]  # fmt: skip
    assert any(name.startswith("nvidia-") for name, _ in platform_only)  # the CUDA wheels are in the lock
    for name, marker in platform_only:
        needed = next(m for prefix, m in PLATFORM_ONLY.items() if name.startswith(prefix))
        assert needed in marker, f"{name} is pinned for every platform; it needs the marker {needed}"
        assert not Marker(marker).evaluate({"sys_platform": "darwin", "platform_machine": "arm64"})


def test_dockerfile_installs_the_lock_with_hashes_first_then_the_package_and_keeps_caches_in_work():
    dockerfile = (REPO / "Dockerfile").read_text()
    instructions = re.findall(r"^([A-Z]+) (.*)$", dockerfile, flags=re.MULTILINE)
    pip_installs = [args for op, args in instructions if op == "RUN" and "pip install" in args]
    assert pip_installs == [
        "pip install --no-cache-dir --require-hashes -r /tmp/requirements.lock",
        "pip install --no-cache-dir --no-deps /opt/jersey-cls",
    ]
    order = [args for op, args in instructions if op in ("COPY", "RUN")]
    lock_installed = order.index(pip_installs[0])
    code_copied = next(i for i, args in enumerate(order) if args.startswith("jersey_cls"))
    assert lock_installed < code_copied  # a code change does not invalidate the dependency layer
    assert instructions[0] == ("FROM", "python:3.11-slim")
    user = [args for op, args in instructions if op == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert ("ENTRYPOINT", '["jersey-cls"]') in instructions
    env = dockerfile[dockerfile.index("ENV ") :].split("\n\n")[0]
    assert "XDG_CACHE_HOME=/work/.cache" in env and "HF_HOME=/work/.cache/huggingface" in env
    # .ci/run runs these same two pip commands in a fresh virtualenv, on a copy of what the Dockerfile copies, and
    # fails when they fail.
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines() if not line.lstrip().startswith("#")]
    copied = {source for op, args in instructions if op == "COPY" for source in args.split()[:-1]}
    copy = next(line for line in ci if line.endswith('"$docker_dir/src/"'))
    assert copy.split()[2:-1] and set(copy.split()[2:-1]) == copied - {"requirements.lock"}
    local = {"/tmp/requirements.lock": "requirements.lock", "/opt/jersey-cls": '"$docker_dir/src"'}
    for install in pip_installs:
        pip, *flags, path = install.split()
        assert f'"$docker_dir/venv/bin/{pip}" {" ".join(flags)} {local[path]}' in ci
    assert 'if ! wait "$docker_pid"; then' in ci


def test_ci_runs_the_readme_test_command():
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    commands = [" ".join(block.replace("\\\n", " ").split()) for block in blocks]
    command = next(c for c in commands if c.endswith("&& pytest"))
    assert command.removesuffix(" && pytest") in (REPO / ".ci" / "run").read_text()


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
