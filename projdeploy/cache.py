"""The build's stage cache: verified entries, per-entry and per-output locks, cleanup after kills.

    python -c "from projdeploy.cache import StageCache; print(StageCache('/tmp/pd-cache').clean_stale())"

An entry is ``<root>/<stage>/<key>/`` with the stage's files and ``stage.json``,
which records the sha256 and size of every other file in the entry. Every
reuse re-hashes the files: a missing, extra, truncated or edited file makes
the entry invalid; the mismatch is reported, the entry discarded and the stage
run again. Entries are written with :func:`projdeploy.fsutil.atomic_dir`
(temporary folder, then rename), so a killed build never leaves a half entry;
its temporary folder is removed by the next run (:meth:`StageCache.clean_stale`).
A lock per entry (``flock`` on ``<stage>/.<key>.lock``) makes two builds that
need the same stage compute it once; :func:`locked` also guards an output folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from .fsutil import atomic_dir, atomic_write_json, remove_stale, sha256_file
from .layout import MARKER, child

META = "stage.json"


@contextlib.contextmanager
def locked(path: str | Path, echo: Callable[[str], None] | None = None, what: str = ""):
    """Hold an exclusive ``flock`` on ``<parent>/.<name>.lock`` (created if missing) for the block."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.parent / f".{path.name}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if echo is not None:
                echo(f"      waiting for another projdeploy process using {what or path} ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def tree_digest(directory: Path) -> dict[str, dict]:
    """sha256 and size of every file under ``directory`` except ``stage.json`` and the ownership marker."""
    files = {}
    for p in sorted(directory.rglob("*")):
        rel = p.relative_to(directory).as_posix()
        if p.is_file() and rel not in (META, MARKER):
            files[rel] = {"sha256": sha256_file(p), "size": p.stat().st_size}
    return files


def verify_entry(path: Path) -> str | None:
    """Why the entry at ``path`` cannot be reused (None when every file matches its recorded sha256)."""
    try:
        meta = json.loads((path / META).read_text())
    except FileNotFoundError:
        return f"{META} is missing"
    except (OSError, ValueError) as e:
        return f"{META} is unreadable ({e})"
    want = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(want, dict):
        return f"{META} records no file hashes"
    have = set()
    for p in path.rglob("*"):
        rel = p.relative_to(path).as_posix()
        if p.is_file() and rel not in (META, MARKER):
            have.add(rel)
    if have - set(want):
        return f"unexpected file {sorted(have - set(want))[0]!r}"
    for rel, rec in sorted(want.items()):
        p = path / rel
        if rel not in have:
            return f"file {rel!r} is missing"
        if not isinstance(rec, dict) or p.stat().st_size != rec.get("size") or sha256_file(p) != rec.get("sha256"):
            return f"file {rel!r} does not match its recorded sha256 (tampered or corrupted)"
    return None


class StageCache:
    """Content-keyed stage entries under ``root``; see the module docstring."""

    def __init__(self, root: str | Path, echo: Callable[[str], None] = print):
        self.root, self.echo = Path(root), echo

    def path(self, stage: str, key: str) -> Path:
        return child(self.root / stage, key, "stage cache", f"{stage} key")

    def lock(self, stage: str, key: str):
        return locked(self.path(stage, key), self.echo, f"cache entry {stage}/{key}")

    def get(self, stage: str, key: str, repair: bool = True) -> dict | None:
        """The entry's ``stage.json`` if it exists and verifies; else None (a bad entry is reported and removed)."""
        path = self.path(stage, key)
        if not path.is_dir():
            return None
        problem = verify_entry(path)
        if problem is None:
            return json.loads((path / META).read_text())
        self.echo(f"      cache entry {path} failed verification: {problem}; " + ("discarded" if repair else "stale"))
        if repair:
            self.discard(path)
        return None

    def discard(self, path: Path) -> None:
        """Move an invalid entry out of the way (renamed as a stale copy, then deleted)."""
        import shutil

        gone = path.with_name(f".{path.name}.old-{os.getpid()}-bad")
        os.replace(path, gone)
        shutil.rmtree(gone, ignore_errors=True)

    def put(self, stage: str, key: str, run: Callable[[Path], str | None], material: dict) -> dict:
        """Run ``run(tmp)`` into a fresh entry, record its files' hashes, rename it into place; returns its meta."""
        path = self.path(stage, key)
        t0 = time.perf_counter()
        with atomic_dir(path) as tmp:
            note = run(tmp) or ""
            meta = {
                "stage": stage,
                "key": key,
                "material": material,
                "seconds": time.perf_counter() - t0,
                "note": note,
                "files": tree_digest(tmp),
            }
            atomic_write_json(tmp / META, json.loads(json.dumps(meta, default=str)))
        return meta

    def clean_stale(self) -> list[Path]:
        """Remove temporary and half-replaced entries left by killed builds; returns what was removed."""
        gone: list[Path] = []
        if not self.root.is_dir():
            return gone
        for stage_dir in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.is_symlink()):
            names = {p.name[1:].split(".tmp-")[0].split(".old-")[0] for p in stage_dir.glob(".*.*-*")}
            for name in sorted(names):
                gone += remove_stale(stage_dir / name)
        return gone
