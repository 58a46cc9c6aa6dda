"""Time ``prune`` of SmolLM2-135M to a quarter of its non-embedding parameters (loading timed separately).

    .venv/bin/python bench/prune_speed.py --threads 2 --repeats 3

Loads ``smollm2-135m`` once (the GGUF is dequantized on first use and cached), re-tokenizes the task with
its tokenizer, then runs ``project_model(..., "prune")`` ``--repeats`` times: importance from activations
on ``--calibration`` training windows + materialising the small model (what ``projdeploy project`` does
between loading and writing). Prints one JSON line per repeat (wall and CPU seconds, 1-minute load
average of the host) and the median; needs the models extra (``pip install 'projdeploy[models]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--calibration", type=int, default=32)
    p.add_argument("--params", default="25%")
    p.add_argument("--task", default="pycode:email")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    from projdeploy.foundation import load_big
    from projdeploy.project.api import project_model
    from projdeploy.tasks import get_task
    from projdeploy.tasks.hf_tokenizer import fit_task

    t0 = time.perf_counter()
    big = load_big("smollm2-135m")
    print(json.dumps({"load_s": round(time.perf_counter() - t0, 1)}), flush=True)
    task = fit_task(get_task(a.task), big.tokenizer)
    walls = []
    for r in range(a.repeats):
        load1 = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        _, info = project_model("smollm2-135m", task, "prune", params=a.params, calibration=a.calibration)
        walls.append(time.perf_counter() - t0)
        row = {"repeat": r, "wall_s": round(walls[-1], 1), "cpu_s": round(time.process_time() - c0, 1)}
        print(json.dumps({**row, "load1": round(load1, 1), "config": info["config"]}), flush=True)
    out = {"threads": a.threads, "calibration": a.calibration, "median_wall_s": round(statistics.median(walls), 1)}
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    main()
