"""Names from user files never become paths outside --out (projdeploy/layout.py): names, symlinks, ownership."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from projdeploy.cli import cli
from projdeploy.layout import UnsafeNameError, UnsafePathError, build_dir, check_write, safe_component

REPO = Path(__file__).resolve().parents[1]
HOSTILE = [
    "../x",
    "x/../../y",
    "/abs",
    "a\\b",
    ".",
    "..",
    "-rf",
    "CON",
    "nul.txt",
    "line\nbreak",
    "n" * 300,
]
NON_ASCII = "données-ü"


def snapshot(root: Path, skip: Path | None = None) -> dict[str, str]:
    """Every path under ``root`` (except under ``skip``) with the sha256 of files and the target of links."""
    out = {}
    for p in sorted(root.rglob("*")):
        if skip is not None and (p == skip or skip in p.parents):
            continue
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


@pytest.fixture
def world(tmp_path):
    """A user's directory tree: a victim folder beside and above --out, each holding a file."""
    work = tmp_path / "home" / "work"
    for d in (tmp_path / "victim", tmp_path / "home" / "victim", work / "y", work / "x", tmp_path / "home" / "y"):
        d.mkdir(parents=True, exist_ok=True)
        (d / "precious.txt").write_text(f"user data in {d.name}\n")
    out = work / "out"
    return tmp_path, out


def _image_task(dirpath: Path, name) -> Path:
    rng = np.random.default_rng(0)
    np.savez(dirpath / "train.npz", images=rng.integers(0, 16, (20, 8, 8)), labels=rng.integers(0, 3, 20))
    f = dirpath / "task.yaml"
    f.write_text(json.dumps({"name": name, "type": "image-cls", "data": {"train": "train.npz"}}))
    return f


def _target(dirpath: Path, name, fmt="onnx", recipe="int8-dynamic") -> Path:
    f = dirpath / "target.yaml"
    f.write_text(json.dumps({"name": name, "artifacts": [{"format": fmt, "recipe": recipe}], "profiles": ["pixel-8"]}))
    return f


def _fake_artifact(dirpath: Path, main_file, files=None) -> Path:
    d = dirpath / "artifact"
    d.mkdir()
    (d / "manifest.json").write_text(
        json.dumps(
            {
                "schema": "projdeploy.manifest/1",
                "format": "onnx",
                "main_file": main_file,
                "files": files or {},
                "model": {"task": "digits-cls"},
            }
        )
    )
    return d


def _run(*args):
    r = CliRunner().invoke(cli, list(map(str, args)))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    return r


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
def test_hostile_name_as_task_target_and_manifest_entry(world, name):
    root, out = world
    before = snapshot(root, skip=out)
    task = _image_task(root / "home" / "work", name)
    ok_task = root / "ok"
    ok_task.mkdir()
    ok_task = _image_task(ok_task, "ok-task")
    runs = {
        "task name": (["build", "--task", task, "--target", "web", "--out", out, "--dry-run"], "'name'"),
        "target name": (
            ["build", "--task", ok_task, "--target", _target(root / "home" / "work", name), "--out", out, "--dry-run"],
            "'name'",
        ),
        "target recipe": (
            [
                "build",
                "--task",
                ok_task,
                "--target",
                _target(root / "home", "t", recipe=name),
                "--out",
                out,
                "--dry-run",
            ],
            "'artifacts[0].recipe'",
        ),
    }
    art = _fake_artifact(root / "home" / "work", name)
    runs["manifest main_file (check)"] = (
        ["check", "--artifact", art, "--task", "digits-cls", "--profile", "pixel-8", "--out", out],
        "'main_file'",
    )
    runs["manifest main_file (sdk)"] = (
        ["sdk", "--artifact", art, "--target", "web", "--out", out / "sdk"],
        "main_file",
    )
    before = snapshot(root, skip=out)
    for what, (args, field) in runs.items():
        r = _run(*args)
        assert r.exit_code == 2, (what, r.output)
        assert field in r.output and "Traceback" not in r.output, (what, r.output)
        assert snapshot(root, skip=out) == before, what
        assert not out.exists() or not any(out.iterdir()), what


def test_manifest_listing_files_outside_the_artifact_is_refused(world):
    root, out = world
    rec = {"sha256": hashlib.sha256(b"user data in victim\n").hexdigest(), "size": 20}
    for rel in ("../../../victim/precious.txt", str(root / "victim" / "precious.txt")):
        art = _fake_artifact(root / "home" / "work" / "x", "model.onnx", {"model.onnx": rec, rel: rec})
        r = _run("sdk", "--artifact", art, "--target", "web", "--out", out)
        assert r.exit_code == 2 and "files[" in r.output and "Traceback" not in r.output, r.output
        import shutil

        shutil.rmtree(art)
    # a symlink inside the artifact that leads outside it
    art = _fake_artifact(root / "home" / "work" / "x", "model.onnx", {"model.onnx": rec})
    (art / "model.onnx").symlink_to(root / "victim" / "precious.txt")
    r = _run("sdk", "--artifact", art, "--target", "web", "--out", out)
    assert r.exit_code == 2 and "outside the artifact" in r.output, r.output


def test_names_rule_table():
    for name in HOSTILE:
        with pytest.raises(UnsafeNameError, match="'f.yaml': field 'n'|f.yaml: field 'n'"):
            safe_component(name, "f.yaml", "n")
    for bad in (None, 3, ["a"], "a:b", "x.", " x", "COM1.tar.gz", "lpt9", "a\x00b", "a\u200bb"):
        with pytest.raises(UnsafeNameError):
            safe_component(bad, "f.yaml", "n")
    for good in ("digits-cls", NON_ASCII, "模型", "COM10", "a.b", "x" * 128):
        assert safe_component(good, "f.yaml", "n") == good


def test_non_ascii_task_name_stays_allowed(world):
    root, out = world
    task = _image_task(root / "home" / "work", NON_ASCII)
    r = _run("build", "--task", task, "--target", "web", "--out", out, "--dry-run", "--cache-dir", root / "c")
    assert r.exit_code == 0, r.output
    assert build_dir(out, NON_ASCII, str(task), "web", "web.yaml") == out / f"{NON_ASCII}-web"
    # built-in variants keep their documented mapping (':' and ',' -> '_')
    assert build_dir(out, "digits:1,3", "built-in", "ios", "ios.yaml").name == "digits_1_3-ios"


def test_symlinked_out_and_planted_symlink(world):
    root, out = world
    owned = root / "owned"
    owned.mkdir()
    (owned / "keep.txt").write_text("mine\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.symlink_to(owned, target_is_directory=True)
    before = snapshot(root)
    r = _run("build", "--task", "digits-cls", "--target", "web", "--out", out, "--dry-run")
    assert r.exit_code == 2 and "symbolic link" in r.output, r.output
    r = _run("sdk", "--artifact", root / "nope", "--target", "web", "--out", out)
    assert r.exit_code == 2 and "symbolic link" in r.output, r.output
    assert snapshot(root) == before
    out.unlink()

    # a symlink planted where the build's package goes, inside an existing output
    out.mkdir()
    (out / "digits-cls-web").symlink_to(owned, target_is_directory=True)
    before = snapshot(root)
    r = _run("build", "--task", "digits-cls", "--target", "web", "--out", out, "--dry-run")
    assert r.exit_code == 2 and ("symbolic link" in r.output or "outside" in r.output), r.output
    assert snapshot(root) == before
    with pytest.raises(UnsafePathError):
        check_write(out / "digits-cls-web" / "sdk", root=out)


def test_replacing_an_output_never_follows_planted_symlinks(tmp_path):
    from projdeploy.fsutil import atomic_dir

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("x")
    out = tmp_path / "out"
    with atomic_dir(out) as t:
        (t / "a.txt").write_text("1")
    (out / "sdk").symlink_to(victim, target_is_directory=True)  # planted inside a projdeploy output
    (out / "file").symlink_to(victim / "precious.txt")
    with atomic_dir(out) as t:
        (t / "a.txt").write_text("2")
    assert (victim / "precious.txt").read_text() == "x" and (out / "a.txt").read_text() == "2"


def test_unrelated_out_directory_is_left_intact(tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    before = snapshot(tmp_path)
    for args in (
        ["sdk", "--artifact", tmp_path / "nope", "--target", "web", "--out", user],
        ["export", "--checkpoint", tmp_path / "nope", "--format", "onnx", "--recipe", "fp32"]
        + ["--task", "digits-cls", "--out", user / "notes.txt"],
        ["train", "--task", "digits-cls", "--out", user, "--steps", "1"],
        ["export", "--checkpoint", tmp_path, "--format", "onnx", "--recipe", "fp32", "--task", "digits-cls"]
        + ["--out", "."],
    ):
        r = _run(*args)
        assert r.exit_code == 2 and "Traceback" not in r.output, (args, r.output)
        assert "--overwrite" in r.output or "current directory" in r.output, r.output
    assert snapshot(tmp_path) == before


def test_build_subprocess_with_hostile_target_keeps_user_directory(tmp_path):
    """The reported bug: a target named x/../../victim replaced a directory two levels above --out."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("user data\n")
    out = tmp_path / "a" / "out"
    out.mkdir(parents=True)
    target = _target(tmp_path, "x/../../victim")
    before = snapshot(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "projdeploy.cli", "build", "--task", "digits-cls", "--target", str(target)]
    cmd += ["--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--finetune-steps", "1"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "field 'name'" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert snapshot(tmp_path) == before


def test_overwrite_flag_allows_replacing_a_user_directory(tmp_path):
    from projdeploy.fsutil import atomic_dir
    from projdeploy.layout import MARKER, overwriting

    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    with pytest.raises(UnsafePathError, match="--overwrite"):
        with atomic_dir(user) as t:
            (t / "x").write_text("1")
    assert (user / "notes.txt").read_text() == "keep me"
    with overwriting(), atomic_dir(user) as t:
        (t / "x").write_text("1")
    assert sorted(p.name for p in user.iterdir()) == [MARKER, "x"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_out_in_a_read_only_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = _run("train", "--task", "digits-cls", "--out", ro / "x", "--steps", "1")
        assert r.exit_code == 2 and "cannot write" in r.output and "Traceback" not in r.output, r.output
    finally:
        ro.chmod(0o755)


def test_user_task_records_resolved_data_paths_and_sha256(tmp_path):
    from projdeploy.tasks import get_task

    d = tmp_path / "proj"
    d.mkdir()
    f = _image_task(d, "imgs")
    task = get_task(str(f))
    want = {
        "path": str((d / "train.npz").resolve()),
        "sha256": hashlib.sha256((d / "train.npz").read_bytes()).hexdigest(),
    }
    assert task.data_files == {"data.train": want}
    assert task.summary()["data_files"] == task.data_files  # what build writes into manifest.json and report.json
