"""Training throughput of the tiny and small sizes on built-in tasks.

    .venv/bin/python bench/train_throughput.py --steps 30 --repeats 3 --threads 2

Reports tokens/s (median and spread over repeats), the model FLOPs per second
(6 x params-ish, from ModelConfig.flops_per_token) and, as the same-run baseline,
the throughput of each size relative to tiny on the same task and machine.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from projdeploy.models import build_model
from projdeploy.tasks import get_task
from projdeploy.train.loop import Throughput, TrainConfig, train_loop
from projdeploy.train.losses import task_data, task_loss_fn
from projdeploy.train.small import model_config_for_task


def measure(task_name: str, size: str, steps: int, batch: int, seed: int) -> dict:
    task = get_task(task_name)
    cfg = model_config_for_task(task, size)
    model = build_model(cfg, seed=seed)
    tc = TrainConfig(steps=steps, batch_size=batch, eval_every=0, warmup_steps=1, seed=seed)
    # warm-up (allocator, kernels) is excluded from the figure
    train_loop(
        model,
        task_data(task),
        task_loss_fn(task),
        TrainConfig(steps=3, batch_size=batch, eval_every=0, warmup_steps=1),
        throughput=Throughput(task.seq_len),
    )
    t0 = time.perf_counter()
    res = train_loop(
        model,
        task_data(task),
        task_loss_fn(task),
        tc,
        throughput=Throughput(task.seq_len, cfg.flops_per_token(task.seq_len)),
    )
    dt = time.perf_counter() - t0
    return {"tokens_per_s": res.tokens / dt, "flops_per_s": res.flops / dt, "params": cfg.num_parameters()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tasks", default="digits:0-4,pycode:email")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"# torch {torch.__version__}, {platform.machine()}, {args.threads} threads, "
        f"{args.steps} steps x batch {args.batch}, {args.repeats} repeats (seeds 0..{args.repeats - 1})\n"
    )
    print("| task | size | params | tokens/s (median) | min-max | GFLOP/s (model) | rel. to tiny |")
    print("|---|---|---|---|---|---|---|")
    for task_name in args.tasks.split(","):
        base = None
        for size in ("tiny", "small"):
            runs = [measure(task_name, size, args.steps, args.batch, s) for s in range(args.repeats)]
            tps = [r["tokens_per_s"] for r in runs]
            med = statistics.median(tps)
            base = base or med
            print(
                f"| {task_name} | {size} | {runs[0]['params']:,} | {med:,.0f} | {min(tps):,.0f}-{max(tps):,.0f} | "
                f"{statistics.median(r['flops_per_s'] for r in runs) / 1e9:.2f} | {med / base:.2f}x |"
            )


if __name__ == "__main__":
    main()
