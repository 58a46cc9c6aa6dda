"""Extract Qualcomm AI Hub's published per-model, per-device measurements into bench/data/aihub_perf.csv.

    .venv/bin/python bench/aihub_perf.py --repo /path/to/ai-hub-models [--out bench/data/aihub_perf.csv]

``--repo`` is a git checkout (or bare git dir) of https://github.com/quic/ai-hub-models; the files are read
with ``git show <commit>:qai_hub_models/models/<id>/perf.yaml`` at the commit given by ``--commit``
(default HEAD, recorded in every row). One CSV row per (model id, precision, component, device, runtime)
with a passed job: latency, the published peak-memory range, the primary compute unit and the layer split
(layers placed on NPU/GPU/CPU). ``split`` is the held-out rule of bench/estimator.py (``fit`` when the first
byte of sha256(model id) is even, else ``holdout``). bench/data/aihub_models.csv keeps each model's stated
parameter count and input resolution (info.yaml). Nothing here is measured by projdeploy.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from projdeploy.check.fit import split_of  # noqa: E402

FIELDS = [
    "model_id",
    "split",
    "precision",
    "component",
    "device",
    "runtime",
    "latency_ms",
    "mem_min_mb",
    "mem_max_mb",
    "compute_unit",
    "layers_total",
    "layers_npu",
    "layers_gpu",
    "layers_cpu",
    "source",
]
MODEL_FIELDS = ["model_id", "split", "name", "params", "input_resolution", "source_repo", "source"]


def _git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=True).stdout


def perf_rows(mid: str, perf: dict, src: str) -> list[dict]:
    rows = []
    for prec, pv in (perf.get("precisions") or {}).items():
        for comp, cv in ((pv or {}).get("components") or {}).items():
            for dev, runtimes in ((cv or {}).get("performance_metrics") or {}).items():
                for rt, m in (runtimes or {}).items():
                    if not isinstance(m, dict) or m.get("job_status") != "Passed":
                        continue
                    if m.get("inference_time_milliseconds") is None:
                        continue
                    mem = m.get("estimated_peak_memory_range_mb") or {}
                    lc = m.get("layer_counts") or {}
                    rows.append(
                        {
                            "model_id": mid,
                            "split": split_of(mid),
                            "precision": prec,
                            "component": comp,
                            "device": dev,
                            "runtime": rt,
                            "latency_ms": m["inference_time_milliseconds"],
                            "mem_min_mb": mem.get("min", ""),
                            "mem_max_mb": mem.get("max", ""),
                            "compute_unit": m.get("primary_compute_unit", ""),
                            "layers_total": lc.get("total", ""),
                            "layers_npu": lc.get("npu", 0),
                            "layers_gpu": lc.get("gpu", 0),
                            "layers_cpu": lc.get("cpu", 0),
                            "source": src,
                        }
                    )
    return rows


def model_row(mid: str, info: dict, src: str) -> dict:
    td = info.get("technical_details") or {}
    return {
        "model_id": mid,
        "split": split_of(mid),
        "name": info.get("name", ""),
        "params": td.get("Number of parameters", ""),
        "input_resolution": td.get("Input resolution", ""),
        "source_repo": info.get("source_repo", ""),
        "source": src,
    }


def extract(repo: str, commit: str) -> tuple[list[dict], list[dict]]:
    import yaml

    sha = _git(repo, "rev-parse", commit).strip()
    rows, models = [], []
    for path in _git(repo, "ls-tree", "--name-only", sha, "qai_hub_models/models/").split():
        mid = path.rsplit("/", 1)[-1]
        try:
            perf = yaml.safe_load(_git(repo, "show", f"{sha}:{path}/perf.yaml"))
            info = yaml.safe_load(_git(repo, "show", f"{sha}:{path}/info.yaml")) or {}
        except subprocess.CalledProcessError:
            continue  # not a model folder (no perf.yaml)
        rows += perf_rows(mid, perf or {}, f"quic/ai-hub-models@{sha}:{path}/perf.yaml")
        models.append(model_row(mid, info, f"quic/ai-hub-models@{sha}:{path}/info.yaml"))
    return rows, models


def _write(path: Path, fields: list[str], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", required=True, help="git checkout or bare git dir of quic/ai-hub-models")
    ap.add_argument("--commit", default="HEAD")
    ap.add_argument("--out", default=str(ROOT / "bench/data/aihub_perf.csv"))
    ap.add_argument("--models-out", default=str(ROOT / "bench/data/aihub_models.csv"))
    a = ap.parse_args(argv)
    rows, models = extract(a.repo, a.commit)
    _write(Path(a.out), FIELDS, rows)
    _write(Path(a.models_out), MODEL_FIELDS, models)
    print(f"{len(rows)} measurement rows from {len(models)} models -> {a.out}, {a.models_out}")


if __name__ == "__main__":
    main()
