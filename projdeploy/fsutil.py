"""Atomic file and directory writes: write to a temporary path, then rename.

A crash or an error never leaves a half-written artifact at the final path.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from .layout import MARKER


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_dir(final: str | Path, overwrite: bool = True, root: str | Path | None = None):
    """Yield a fresh temporary directory next to ``final``; on success rename it into place.

    ``final`` is checked first (:func:`projdeploy.layout.check_write`): no symlinks between
    ``root`` (default ``final``) and it, and an existing directory is replaced only when
    projdeploy made it or ``--overwrite`` is in effect. On error the temporary directory is
    removed and ``final`` is untouched; temporary directories left by killed processes are
    removed by the next write to the same place. The result carries the ownership marker.
    ``overwrite=False`` refuses any existing ``final`` (FileExistsError).
    """
    from .layout import check_write, mark

    final = check_write(final, root)
    if final.exists() and not overwrite:
        raise FileExistsError(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-{os.getpid()}-", dir=final.parent))
    except OSError as e:
        raise _unwritable(final, e) from None
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the result should look like any other directory
    try:
        yield tmp
        if not (tmp / MARKER).exists():
            mark(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}-{tmp.name[-8:]}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _unwritable(path: Path, e: OSError):
    from .errors import DataError

    return DataError(f"{path}: cannot write here ({e.strerror or e}); choose a writable location")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def stale_siblings(final: Path) -> list[Path]:
    """Temporary / replaced copies of ``final`` whose writing process no longer runs (killed mid-write)."""
    out = []
    for p in final.parent.glob(f".{glob.escape(final.name)}.*-*"):
        kind, _, rest = p.name[len(final.name) + 2 :].partition("-")
        pid = rest.split("-")[0]
        if kind in ("tmp", "old") and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            out.append(p)
    return out


def remove_stale(final: Path) -> list[Path]:
    """Delete :func:`stale_siblings` of ``final``; returns what was removed."""
    gone = stale_siblings(final)
    for p in gone:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
    return gone


def atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    if path.is_symlink():
        from .layout import UnsafePathError

        raise UnsafePathError(f"{path}: is a symbolic link (to {os.path.realpath(path)}); not writing through it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
    except OSError as e:
        raise _unwritable(path, e) from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
