"""Where projdeploy puts files: the one module that turns names into paths and checks every write.

    python -c "from projdeploy.layout import safe_component; print(safe_component('digits-cls', 'task.yaml', 'name'))"

Names that come from outside the code (a task or target YAML, a manifest, a
tokenizer file, a checkpoint config) become a file or folder name only through
:func:`safe_component`. The rule is *refuse, never rewrite*: a name is used as
it is or the run stops with :class:`UnsafeNameError` (exit code 2) naming the
file and the field. A usable name is a single path component of at most
:data:`MAX_NAME` characters with

- no ``/`` or ``\\``, no NUL or other control character, not ``.`` or ``..``;
- no leading ``-`` (it would read as an option), no leading or trailing space,
  no trailing ``.``, none of ``< > : " | ? *`` (Windows forbids them);
- a stem that is not a name Windows reserves (``CON``, ``PRN``, ``AUX``,
  ``NUL``, ``COM1``-``COM9``, ``LPT1``-``LPT9``, in any case, with any suffix).

Letters outside ASCII are allowed.

Where files go (every location projdeploy decides):

- ``--out`` of ``train``/``pretrain``/``grow``/``project``/``finetune``/``export``/``sdk``: the
  folder itself, as given (checked by :func:`overwrite_option` before the command runs);
- ``build``: ``--out/<task>-<target>/`` (:func:`build_dir`) with ``artifacts/<format>-<recipe>/``
  (:func:`artifact_dir_name`), ``model/``, ``sdk/``, ``report.*``, ``manifest.json``;
- the stage cache: ``<cache>/<stage>/<key>/`` (:meth:`projdeploy.cache.StageCache.path`);
- ``eval`` without ``--out``: ``<checkpoint>/eval-<task>.json`` (:func:`eval_file`);
- inside an artifact or checkpoint: fixed file names chosen by the code, and the files an artifact's
  manifest lists, each checked by :func:`inside_manifest` when read;
- inside a generated SDK: paths derived from ASCII identifiers (``projdeploy.sdk.spec.identifier``),
  each checked by :func:`contained` when written.

Every directory that projdeploy replaces goes through :func:`check_write` (via
:func:`projdeploy.fsutil.atomic_dir`): the path is resolved, symlinks included,
and must not be a symlink itself nor pass through one below its root; an
existing directory is replaced only when projdeploy made it (it holds
:data:`MARKER` or a file that only projdeploy writes) or when the user passed
``--overwrite``. :func:`contained` checks that a path lies inside a root.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import unicodedata
from pathlib import Path

from .errors import ConfigError, ProjdeployError

MAX_NAME = 128
MARKER = ".projdeploy-output"
MARKER_TEXT = "This directory was written by projdeploy, which may replace it.\n"
# Files only projdeploy writes: a folder holding one of them is a projdeploy output
# (outputs written before MARKER existed carry these).
OWNED_BY = (MARKER, "projdeploy_sdk.json", "projdeploy.json", "stage.json")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_WINDOWS_FORBIDDEN = set('<>:"|?*')
NAME_RULE = (
    f"a single file name of 1-{MAX_NAME} characters: no '/' or '\\', not '.' or '..', no control characters, "
    "no leading '-', no leading/trailing space or trailing '.', none of <>:\"|?*, and not a name Windows "
    "reserves (CON, PRN, AUX, NUL, COM1-9, LPT1-9)"
)

_overwrite: contextvars.ContextVar[bool] = contextvars.ContextVar("projdeploy_overwrite", default=False)


class UnsafeNameError(ConfigError):
    """A name from a user file that cannot be a single, portable path component."""


class UnsafePathError(ProjdeployError):
    """A write that would land outside its root, through a symlink, or over a directory projdeploy did not make."""


def _problem(name: str) -> str | None:
    if not name:
        return "is empty"
    if len(name) > MAX_NAME:
        return f"is {len(name)} characters long"
    if name in (".", ".."):
        return "is a relative directory reference"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        return "contains a control or format character"
    if name.startswith("-"):
        return "starts with '-'"
    if name != name.strip() or name.endswith("."):
        return "starts or ends with a space, or ends with '.'"
    if _WINDOWS_FORBIDDEN & set(name):
        return "contains a character Windows forbids in file names"
    if name.split(".")[0].rstrip().upper() in _WINDOWS_RESERVED:
        return "is a device name Windows reserves"
    return None


def safe_component(name, source: str, field: str) -> str:
    """``name`` when it is a safe single path component, else :class:`UnsafeNameError` naming source and field."""
    if not isinstance(name, str):
        raise UnsafeNameError(source, field, f"got {type(name).__name__} {name!r}; allowed: {NAME_RULE}")
    problem = _problem(name)
    if problem:
        shown = repr(name) if len(name) <= 80 else repr(name[:60]) + "..."
        raise UnsafeNameError(source, field, f"{shown} {problem}; allowed: {NAME_RULE}")
    return name


def child(root: str | Path, name, source: str, field: str) -> Path:
    """``root / name`` for a name from a user file, checked by :func:`safe_component` and :func:`contained`."""
    return contained(Path(root) / safe_component(name, source, field), root)


def contained(path: str | Path, root: str | Path) -> Path:
    """``path`` if, with symlinks resolved, it lies inside ``root`` (also resolved); else :class:`UnsafePathError`."""
    real, base = Path(path).resolve(), Path(root).resolve()
    if real != base and base not in real.parents:
        raise UnsafePathError(f"{path}: resolves to {real}, outside {root} ({base}); nothing was written")
    return Path(path)


def inside_manifest(directory: str | Path, rel: str, source: str, field: str) -> Path:
    """A file an artifact's manifest lists: a relative path that stays inside the artifact directory."""
    parts = Path(rel).parts if isinstance(rel, str) else ()
    if not parts or Path(rel).is_absolute() or "\\" in rel:
        raise UnsafeNameError(source, field, f"{rel!r} must be a relative path inside the artifact directory")
    for part in parts:
        safe_component(part, source, field)
    try:
        return contained(Path(directory) / rel, directory)
    except UnsafePathError:
        raise UnsafeNameError(source, field, f"{rel!r} leads outside the artifact directory (symlink)") from None


@contextlib.contextmanager
def overwriting(allowed: bool = True):
    """Within this block, :func:`check_write` may replace directories projdeploy did not make (``--overwrite``)."""
    token = _overwrite.set(bool(allowed))
    try:
        yield
    finally:
        _overwrite.reset(token)


def owned(path: Path) -> bool:
    """Whether an existing directory is a projdeploy output (or empty), so that replacing it loses nothing."""
    try:
        names = set(os.listdir(path))
    except OSError:
        return False
    return not names or bool(names & set(OWNED_BY)) or (path / "manifest.json").is_file() and _pd_manifest(path)


def _pd_manifest(path: Path) -> bool:
    import json

    try:
        m = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(m, dict) and str(m.get("schema", "")).startswith(("projdeploy.", "projdeploy-"))


def _symlink_on_the_way(final: Path, root: Path) -> Path | None:
    """The first symlink among ``final`` and its parents up to ``root`` (both included)."""
    for q in [final, *final.parents]:
        if q.is_symlink():
            return q
        if q == root:
            break
    return None


def check_write(final: str | Path, root: str | Path | None = None, what: str = "output") -> Path:
    """Verify that a directory or file may be (re)written at ``final``; return its absolute path.

    Refused (nothing written): a symlink at ``final`` or between ``root`` (default: ``final``)
    and it (an ``--out`` that is a symlink, or one planted inside an existing output), a
    ``final`` that resolves outside ``root``, an existing file where
    a directory goes, and an existing directory projdeploy did not make, unless
    ``--overwrite`` (:func:`overwriting`) is in effect.
    """
    final = Path(os.path.abspath(final))
    root = Path(os.path.abspath(root)) if root is not None else final
    link = _symlink_on_the_way(final, root)
    if link is not None:
        raise UnsafePathError(
            f"{what} {final}: {link} is a symbolic link (to {os.path.realpath(link)}); "
            "projdeploy writes only into real directories; pass the real path"
        )
    if final != root:
        contained(final, root)
    if final == Path.cwd() or final in Path.cwd().parents:
        raise UnsafePathError(f"{what} {final}: is the current directory or holds it; choose a new directory")
    if not final.exists() or _overwrite.get():
        return final
    if not final.is_dir():
        raise UnsafePathError(f"{what} {final}: exists and is a file; remove it or pass --overwrite")
    if not owned(final):
        raise UnsafePathError(
            f"{what} {final}: exists, is not empty and was not written by projdeploy (no {MARKER}); "
            "choose a new directory or pass --overwrite to replace it"
        )
    return final


def probe_writable(path: str | Path, what: str = "--out") -> None:
    """Fail now, not after minutes of work, if ``path`` cannot be created (read-only, under /proc, a file)."""
    import tempfile

    p = Path(os.path.abspath(path))
    base = next(q for q in [p, *p.parents] if q.exists())
    if not base.is_dir():
        raise UnsafePathError(f"{what} {p}: {base} is a file, not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".projdeploy-probe-", dir=base))
    except OSError as e:
        raise UnsafePathError(f"{what} {p}: cannot write in {base} ({e.strerror or e})") from None


def mark(directory: str | Path) -> None:
    """Record that projdeploy made ``directory`` (so a later run may replace it)."""
    (Path(directory) / MARKER).write_text(MARKER_TEXT)


def build_dir(out: str | Path, task_name: str, task_source: str, target_name: str, target_source: str) -> Path:
    """``--out/<task>-<target>/``: where ``projdeploy build`` assembles its package.

    Built-in task variants (``digits:0-4``, ``digits:1,3,5``) write ``:`` and ``,`` as ``_``;
    every other name is used unchanged or refused.
    """
    if task_source == "built-in":
        task_name = task_name.replace(":", "_").replace(",", "_")
    task = safe_component(task_name, task_source, "name")
    target = safe_component(target_name, target_source, "name")
    return child(out, f"{task}-{target}", f"{task_source} + {target_source}", "name")


def eval_file(checkpoint: str | Path, task_name: str, task_source: str) -> Path:
    """``<checkpoint>/eval-<task>.json``: where ``projdeploy eval`` writes by default (same naming as build_dir)."""
    if task_source == "built-in":
        task_name = task_name.replace(":", "_").replace(",", "_")
    return child(checkpoint, f"eval-{safe_component(task_name, task_source, 'name')}.json", task_source, "name")


def artifact_dir_name(key: str, source: str, field: str = "artifacts") -> str:
    """The folder name of an artifact ``format/recipe`` inside a build: ``format-recipe``, each part checked."""
    fmt, _, recipe = key.partition("/")
    safe_component(fmt, source, f"{field}.format")
    safe_component(recipe, source, f"{field}.recipe")
    return safe_component(f"{fmt}-{recipe}", source, field)


def overwrite_option(command=None, *, out_is_parent: bool = False):
    """Click decorator: ``--overwrite``, and ``--out`` checked by :func:`check_write` before the command runs.

    ``out_is_parent``: ``--out`` is a folder the command writes a new subfolder into (``build``),
    so only its subfolder is checked (by the command) and ``--out`` may be any real directory.
    """
    if command is None:
        return lambda c: overwrite_option(c, out_is_parent=out_is_parent)
    import functools

    import click

    @functools.wraps(command)
    def wrapped(*args, overwrite: bool, **kwargs):
        with overwriting(overwrite):
            if kwargs.get("out"):
                if not out_is_parent:
                    check_write(kwargs["out"], what="--out")
                probe_writable(kwargs["out"])
            return command(*args, **kwargs)

    return click.option(
        "--overwrite",
        is_flag=True,
        help="Replace --out even if it exists and was not written by projdeploy (its contents are lost).",
    )(wrapped)
