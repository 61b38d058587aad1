"""Data doctor: scan every split once before training and say what is broken, ambiguous or leaking.

Each image is decoded fully and hashed, in a process pool; results are cached by path, size and mtime, so
later runs only look at files that changed.
"""

import hashlib
import json
import os
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from jersey_cls.data.images import load_rgb
from jersey_cls.data.layouts import IMAGE_SUFFIXES, Split

EXAMPLES = 5


def inspect_image(path: str) -> tuple[str | None, str, str | None]:
    """(problem kind or None, detail, content hash or None) for one image file."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return "unreadable file", f"{path}: {error}", None
    if not data:
        return "zero-byte image", path, None
    digest = hashlib.sha1(data).hexdigest()
    try:
        load_rgb(path)
    except (OSError, ValueError, SyntaxError) as error:
        if "truncated" in str(error).lower():
            kind = "truncated image"
        elif "cannot identify" in str(error) and Path(path).suffix.lower() not in IMAGE_SUFFIXES:
            kind = "non-image file"
        else:
            kind = "undecodable image"
        return kind, f"{path}: {error}", digest
    return None, "", digest


def _inspect_all(paths: list[str], cache_file: Path, workers: int) -> dict[str, tuple]:
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    results, todo = {}, []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError as error:
            results[path] = ("unreadable file", f"{path}: {error}", None)
            continue
        entry = cache.get(path)
        if entry and entry[:2] == [stat.st_size, stat.st_mtime_ns]:
            results[path] = tuple(entry[2:])
        else:
            todo.append((path, stat))
    if todo:
        todo_paths = [path for path, _ in todo]
        if workers > 1 and len(todo) > 100:
            with ProcessPoolExecutor(workers) as pool:
                found = list(pool.map(inspect_image, todo_paths, chunksize=32))
        else:
            found = [inspect_image(path) for path in todo_paths]
        for (path, stat), result in zip(todo, found, strict=True):
            results[path] = result
            cache[path] = [stat.st_size, stat.st_mtime_ns, *result]
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        staging = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
        staging.write_text(json.dumps(cache))
        os.replace(staging, cache_file)  # concurrent runs never read a half-written cache
    return results


def examine(splits: dict[str, Split], cache_dir: Path, workers: int) -> tuple[dict, set[str], set[str]]:
    """The report, the images to skip everywhere, and the val/test images that duplicate a train image.

    The report groups every finding by kind: {kind: {"count": n, "examples": [...]}}; layout problems found
    while reading the splits (malformed lines, missing images, empty or conflicting labels) are included.
    """
    findings: dict[str, list[str]] = defaultdict(list)
    for split in splits.values():
        for kind, examples in split.skipped.items():
            findings[kind] += examples
    paths = sorted({path for split in splits.values() for path, _ in split.samples})
    root_key = hashlib.sha1("\n".join(sorted(str(s.root.resolve()) for s in splits.values())).encode()).hexdigest()
    results = _inspect_all(paths, cache_dir / "doctor" / f"{root_key[:16]}.json", workers)
    bad = set()
    for path, (kind, detail, _) in results.items():
        if kind:
            findings[kind].append(detail)
            bad.add(path)
    train_hashes = {results[path][2]: path for path, _ in splits["train"].samples if results[path][2]}
    train_labels = {label for _, label in splits["train"].samples}
    leaking = set()
    for name, split in splits.items():
        if name == "train":
            continue
        for path, label in split.samples:
            twin = train_hashes.get(results[path][2])
            if twin and path not in bad:
                findings[f"{name} image identical to a train image (leakage)"].append(f"{path} == {twin}")
                leaking.add(path)
            if label not in train_labels:
                kind = f"{name} label absent from train (the classes head cannot score it)"
                findings[kind].append(f"{path}: {label!r}")
    report = {kind: {"count": len(items), "examples": items[:EXAMPLES]} for kind, items in sorted(findings.items())}
    return report, bad, leaking


def skip_flagged(splits: dict[str, Split], bad: set[str], leaking: set[str]) -> None:
    """Drop the bad images from every split, and val/test images that duplicate a train image."""
    for name, split in splits.items():
        split.samples = [
            (path, label)
            for path, label in split.samples
            if path not in bad and (name == "train" or path not in leaking)
        ]


def format_report(report: dict) -> str:
    lines = []
    for kind, group in report.items():
        lines.append(f"  {group['count']:>6}  {kind}")
        lines += [f"            e.g. {example}" for example in group["examples"][:3]]
    return "\n".join(lines)
