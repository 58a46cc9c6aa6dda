"""The stage cache (projdeploy/cache.py): verified reuse, tampered/corrupted entries, stale temporaries, locks."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

from projdeploy.cache import StageCache, locked, verify_entry


def _writer(text: str):
    def run(tmp: Path):
        (tmp / "model").mkdir()
        (tmp / "model" / "model.safetensors").write_bytes(text.encode() * 100)
        (tmp / "config.json").write_text("{}")
        return "made"

    return run


def test_entry_roundtrip_records_hashes(tmp_path):
    msgs = []
    c = StageCache(tmp_path, msgs.append)
    assert c.get("export", "k1") is None
    meta = c.put("export", "k1", _writer("a"), {"x": 1})
    assert set(meta["files"]) == {"model/model.safetensors", "config.json"} and meta["note"] == "made"
    assert c.get("export", "k1")["files"] == meta["files"] and not msgs


def test_tampered_truncated_missing_and_extra_files_are_detected(tmp_path):
    msgs = []
    c = StageCache(tmp_path, msgs.append)
    cases = {
        "tampered": lambda p: (p / "config.json").write_text('{"evil": 1}'),
        "truncated": lambda p: (p / "model" / "model.safetensors").write_bytes(b"a"),
        "missing payload": lambda p: (p / "model" / "model.safetensors").unlink(),
        "extra file": lambda p: (p / "model" / "extra.bin").write_bytes(b"1"),
        "corrupt stage.json": lambda p: (p / "stage.json").write_text("{not json"),
        "no hashes": lambda p: (p / "stage.json").write_text(json.dumps({"stage": "export"})),
    }
    for i, (what, damage) in enumerate(cases.items()):
        key = f"k{i}"
        c.put("export", key, _writer("a"), {})
        damage(c.path("export", key))
        assert verify_entry(c.path("export", key)) is not None, what
        assert c.get("export", key, repair=False) is None, what  # a dry run reports, keeps
        assert c.path("export", key).is_dir()
        assert c.get("export", key) is None, what
        assert not c.path("export", key).exists(), what  # discarded, so the stage runs again
        assert "failed verification" in msgs[-1], what
        c.put("export", key, _writer("a"), {})
        assert c.get("export", key) is not None, what


def _killed_writer(root: str, ready):
    c = StageCache(root, lambda m: None)

    def run(tmp: Path):
        (tmp / "half.bin").write_bytes(b"x" * 10)
        ready.set()
        time.sleep(60)

    c.put("pretrain", "kk", run, {})


def test_killed_writer_leaves_no_entry_and_the_next_run_cleans_up(tmp_path):
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    p = ctx.Process(target=_killed_writer, args=(str(tmp_path), ready))
    p.start()
    assert ready.wait(30)
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    c = StageCache(tmp_path, lambda m: None)
    leftovers = [q for q in (tmp_path / "pretrain").iterdir() if ".tmp-" in q.name]
    assert leftovers and c.get("pretrain", "kk") is None
    assert c.clean_stale() == leftovers
    assert not [q for q in (tmp_path / "pretrain").iterdir() if ".tmp-" in q.name]


def _hold(lock_path: str, hold_s: float, log: str):
    with locked(lock_path):
        with open(log, "a") as f:
            f.write(f"start {os.getpid()} {time.monotonic()}\n")
        time.sleep(hold_s)
        with open(log, "a") as f:
            f.write(f"end {os.getpid()} {time.monotonic()}\n")


def test_locks_serialise_processes(tmp_path):
    log = tmp_path / "log"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_hold, args=(str(tmp_path / "out"), 0.3, str(log))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    events = [ln.split()[0] for ln in log.read_text().splitlines()]
    assert events == ["start", "end"] * 3  # never two holders at once
