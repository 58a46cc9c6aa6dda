"""Wall time per stage of the default build, cold (empty cache) and cached.

    .venv/bin/python bench/build.py --task digits-cls --target ios --out bench/results/build.md

Runs ``projdeploy build`` twice as real subprocesses against a fresh cache
directory and reads each stage's time from the build manifest. The cached
run is also given as a ratio to the cold one (same machine, same job).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_build(task, target, cache, out, extra=()) -> tuple[float, dict, int]:
    exe = Path(sys.executable).with_name("projdeploy")
    t0 = time.perf_counter()
    p = subprocess.run(
        [str(exe), "build", "--task", task, "--target", target, "--cache-dir", str(cache), "--out", str(out), *extra],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        sys.exit(f"build failed ({p.returncode}):\n{p.stderr[-3000:]}")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in task)
    manifest = json.loads((Path(out) / f"{safe}-{target}" / "manifest.json").read_text())
    return wall, manifest, p.returncode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="digits-cls")
    ap.add_argument("--target", default="ios")
    ap.add_argument("--out", default=None, help="write the Markdown table here (default: stdout)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cold_wall, cold, rc = run_build(args.task, args.target, Path(tmp) / "cache", Path(tmp) / "dist")
        warm_wall, warm, _ = run_build(args.task, args.target, Path(tmp) / "cache", Path(tmp) / "dist")
        big_wall, big, _ = run_build(
            args.task, args.target, Path(tmp) / "cache", Path(tmp) / "dist", ("--force", "project")
        )  # big model cached, every later stage re-run
    lines = [
        f"## Build wall time per stage: `projdeploy build --task {args.task} --target {args.target}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores; torch threads default. "
        f"Command: `.venv/bin/python bench/build.py --task {args.task} --target {args.target}`. "
        f"Budgets {'passed' if rc == 0 else 'FAILED (exit 1)'}.",
        "",
        "Columns: an empty cache (cold, pretraining included); everything cached; the big model cached and "
        "every later stage re-run (`--force project`).",
        "",
        "| stage | cold (s) | cached (s) | big model cached (s) |",
        "|---|---|---|---|",
    ]
    warm_by = {s["stage"]: s for s in warm["stages"]}
    big_by = {s["stage"]: s for s in big["stages"]}

    def cell(rec):
        return "hit" if rec.get("cached") else f"{rec.get('seconds', float('nan')):.1f}"

    for s in cold["stages"]:
        lines.append(
            f"| {s['stage']} | {s['seconds']:.1f} | {cell(warm_by.get(s['stage'], {}))} | "
            f"{cell(big_by.get(s['stage'], {}))} |"
        )
    lines.append(
        f"| **whole command (wall, incl. start-up and assembly)** | **{cold_wall:.1f}** | "
        f"**{warm_wall:.1f}** ({warm_wall / cold_wall:.3f}x of cold) | **{big_wall:.1f}** "
        f"({big_wall / cold_wall:.3f}x of cold) |"
    )
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
