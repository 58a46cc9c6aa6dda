"""Builds under faults, in real subprocesses: kill -9 at every stage, concurrent builds on one --out, determinism.

All on the tiny preset with a few steps; marked slow (each runs whole builds).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STAGE_LABELS = ("pretrain", "project", "finetune", "export", "check", "sdk")


def _cmd(cache: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "projdeploy.cli",
        "build",
        "--task",
        "digits-cls",
        "--target",
        "web",
        "--pretrain-steps",
        "6",
        "--finetune-steps",
        "3",
        "--cache-dir",
        str(cache),
        "--out",
        str(out),
        *extra,
    ]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def _verify_output(d: Path) -> dict:
    """The assembled package is complete and every artifact matches its manifest."""
    from exporters.base import verify_manifest

    m = json.loads((d / "manifest.json").read_text())
    for a in m["artifacts"]:
        verify_manifest(d / a["path"])
    for f in ("report.json", "model/config.json", "model/model.safetensors", "sdk"):
        assert (d / f).exists(), f
    return m


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]


# The child runs the real CLI with one change: when ``stage`` has written its whole entry into the temporary
# directory, it says so and waits, so the kill lands at the worst moment (files written, entry not yet renamed
# into place) on every run, however fast the stage is. Killing on a timer raced the sdk stage (0.0 s).
_PAUSE_AFTER_WRITE = """
import sys, time
from projdeploy import cache
stage = sys.argv.pop(1)
put = cache.StageCache.put
def paused_put(self, name, key, run, material):
    def run_then_wait(tmp):
        note = run(tmp)
        if name == stage:
            print("FAULT-POINT " + name, flush=True)
            time.sleep(600)
        return note
    return put(self, name, key, run_then_wait, material)
cache.StageCache.put = paused_put
from projdeploy.cli import main
sys.argv[0] = "projdeploy"
main()
"""


def _run_until(cmd, stage: str, timeout: float = 600) -> str:
    """Start a build that pauses inside ``stage`` after writing its entry; kill -9 its process group there."""
    cmd = [cmd[0], "-c", _PAUSE_AFTER_WRITE, stage, *cmd[3:]]  # cmd[1:3] is "-m projdeploy.cli"
    p = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(), start_new_session=True
    )
    seen, t0 = [], time.monotonic()
    for line in p.stdout:
        seen.append(line)
        if line.startswith(f"FAULT-POINT {stage}"):
            os.killpg(p.pid, signal.SIGKILL)
            break
        assert time.monotonic() - t0 < timeout
    p.wait()
    out = "".join(seen)
    assert p.returncode == -signal.SIGKILL, out  # it really was killed mid-stage
    return out


@pytest.mark.slow
def test_kill_9_at_every_stage_then_rerun_finishes_and_verifies(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "dist"
    left = 0
    for stage in STAGE_LABELS:
        _run_until(_cmd(cache, out), stage)
        left += len(_leftovers(cache))
        assert not (out / "digits-cls-web").exists()  # nothing half-assembled
    assert left > 0  # the kills did leave temporary entries behind ...
    p = subprocess.run(_cmd(cache, out), capture_output=True, text=True, env=_env(), timeout=900)
    assert p.returncode in (0, 1), p.stdout + p.stderr  # 1 = a budget failed; the build completed
    assert not _leftovers(cache) and not _leftovers(out)  # ... and the next run removed them
    m = _verify_output(out / "digits-cls-web")
    # stages finished before a later kill are reused, not recomputed
    assert [s["cached"] for s in m["stages"]][:5] == [True] * 5, m["stages"]

    # a tampered file in the cached export stage and a truncated cached checkpoint: reported, redone
    onnx = next((cache / "export").rglob("*.onnx"))
    onnx.write_bytes(onnx.read_bytes()[:-1] + b"\0")
    weights = next((cache / "finetune").rglob("model.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    p = subprocess.run(_cmd(cache, out), capture_output=True, text=True, env=_env(), timeout=900)
    assert p.returncode in (0, 1), p.stdout + p.stderr
    assert p.stdout.count("failed verification") == 2, p.stdout
    m = _verify_output(out / "digits-cls-web")
    assert {s["stage"]: s["cached"] for s in m["stages"]}["finetune"] is False


@pytest.mark.slow
def test_concurrent_builds_on_one_out_are_serialised(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "dist"
    procs = [
        subprocess.Popen(_cmd(cache, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert all(p.returncode in (0, 1) for p in procs), outputs
    both = "".join(outputs)
    for stage in STAGE_LABELS:  # each stage computed once; the other build waited and reused it
        assert (
            both.count(f"] {stage}")
            and sum(1 for ln in both.splitlines() if f"] {stage}" in ln and "running" in ln) == 1
        ), (stage, both)
    _verify_output(out / "digits-cls-web")
    assert not _leftovers(cache) and not _leftovers(out)


@pytest.mark.slow
def test_same_build_twice_with_empty_caches_is_byte_identical_or_explained(tmp_path):
    from projdeploy.cache import tree_digest

    runs = []
    for i in range(2):
        cache, out = tmp_path / f"cache{i}", tmp_path / f"dist{i}"
        p = subprocess.run(_cmd(cache, out), capture_output=True, text=True, env=_env(), timeout=900)
        assert p.returncode in (0, 1), p.stdout + p.stderr
        runs.append(out / "digits-cls-web")
    a, b = (tree_digest(d) for d in runs)
    assert set(a) == set(b)
    differ = sorted(f for f in a if a[f]["sha256"] != b[f]["sha256"])
    explained = json.loads((runs[0] / "manifest.json").read_text())["nondeterministic"]
    unexplained = [f for f in differ if f not in explained]
    assert not unexplained, (unexplained, differ)
    # the things a user ships are reproducible: weights, artifacts, SDK
    assert not [f for f in differ if f.startswith(("artifacts/", "sdk/")) or f.endswith(".safetensors")], differ
    assert "model/model.safetensors" in a and "model/config.json" not in differ
