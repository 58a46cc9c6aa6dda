"""Pretraining benchmark: SLM vs PN vs hard mixture vs dense big at equal FLOPs; growth warm-start vs scratch.

    .venv/bin/python bench/pretrain.py --data digits --preset tiny --seeds 0 --scale 1.0

Every model kind of one preset gets the same pretraining FLOPs (counted, 3x forward per
trained token). Reported: generic held-out eval loss (PN / hard mixture route each
eval row through its cluster's expert), throughput as a ratio to the SLM measured in
the same run (the machine is shared, absolute tokens/s are distorted), one-shot PN
projection time, and growth: train the SLM on half the budget, grow it into the big
architecture (function-preserving, AdamW state carried), train on the other half,
versus the big model trained from scratch on the whole budget.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def run(args) -> dict:
    import torch

    from projdeploy.models.grow import GrowTarget, grow_checkpoint
    from projdeploy.project.pn import project_pn
    from projdeploy.tasks import get_task
    from projdeploy.train.presets import get_preset
    from projdeploy.train.pretrain import flop_budget, pretrain

    torch.set_num_threads(args.threads)
    task, p = get_task(args.data), get_preset(args.preset)
    budget = flop_budget(task, p) * args.scale
    rows = []
    root = Path(tempfile.mkdtemp(prefix="bench-pretrain-"))
    for seed in args.seeds:
        common = dict(seed=seed, progress=False, flops=budget, eval_every=0, ckpt_every=0)
        res = {}
        for kind in ("slm", "pn", "hard-moe", "dense"):
            res[kind] = pretrain(kind, args.data, args.preset, root / f"{kind}-{seed}", **common)
        t0 = time.perf_counter()
        project_pn(root / f"pn-{seed}", task)
        proj_s = time.perf_counter() - t0
        # growth: half the budget as the SLM, grow, the other half as the big model
        half = pretrain("slm", args.data, args.preset, root / f"slm-half-{seed}", **{**common, "flops": budget / 2})
        big_cfg = res["dense"]["params"]
        from projdeploy.train.pretrain import model_configs

        bc = model_configs(task, p)["dense"]
        grow_checkpoint(
            root / f"slm-half-{seed}",
            GrowTarget(
                hidden_size=bc.hidden_size,
                intermediate_size=bc.intermediate_size,
                num_hidden_layers=bc.num_hidden_layers,
                num_attention_heads=bc.num_attention_heads,
                num_key_value_heads=bc.num_key_value_heads,
                seed=seed,
            ),
            root / f"grown-{seed}",
        )
        cont = pretrain(
            "dense",
            args.data,
            args.preset,
            root / f"grown-big-{seed}",
            init=root / f"grown-{seed}",
            **{**common, "flops": budget / 2},
        )
        rows.append(
            {
                "seed": seed,
                "projection_s": proj_s,
                "big_params": big_cfg,
                **{
                    k: {
                        "eval_loss": r["eval"]["loss"],
                        "metric": r["eval"]["value"],
                        "steps": r["steps"],
                        "seconds": r["seconds"],
                        "flops": r["flops"],
                        "tokens_per_s": r["tokens_per_s"],
                        "params": r["params"],
                    }
                    for k, r in res.items()
                },
                "grow": {
                    "slm_half_eval_loss": half["eval"]["loss"],
                    "slm_half_flops": half["flops"],
                    "grown_eval_loss": cont["eval"]["loss"],
                    "flops": half["flops"] + cont["flops"],
                    "steps": [half["steps"], cont["steps"]],
                },
            }
        )
    return {
        "data": args.data,
        "preset": args.preset,
        "budget_flops": budget,
        "seeds": args.seeds,
        "rows": rows,
        "metric": task.metric,
    }


def table(r: dict) -> str:
    def agg(get):
        vals = [get(row) for row in r["rows"]]
        return f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals):.4f}" if len(vals) > 1 else f"{vals[0]:.4f}"

    lines = [
        f"Data `{r['data']}`, preset `{r['preset']}`, budget {r['budget_flops']:.3e} training FLOPs per model, "
        f"seeds {r['seeds']}; eval = generic held-out split (loss in nats/token; {r['metric']}).",
        "",
        "| model | params | steps | FLOPs spent | eval loss | " + r["metric"] + " | throughput vs SLM |",
        "|---|---|---|---|---|---|---|",
    ]
    names = {"slm": "SLM (dense small)", "pn": "Projected Network", "hard-moe": "hard mixture", "dense": "dense big"}
    for k, nm in names.items():
        row0 = r["rows"][0][k]
        lines.append(
            f"| {nm} | {row0['params']:,} | {row0['steps']} | {row0['flops']:.3e} | "
            f"{agg(lambda x, k=k: x[k]['eval_loss'])} | {agg(lambda x, k=k: x[k]['metric'])} | "
            f"{agg(lambda x, k=k: x[k]['tokens_per_s'] / x['slm']['tokens_per_s'])}x |"
        )
    g = r["rows"][0]["grow"]
    lines += [
        "",
        "Growth warm-start vs big from scratch, equal total FLOPs:",
        "",
        "| run | FLOPs | eval loss |",
        "|---|---|---|",
        f"| big from scratch | {r['rows'][0]['dense']['flops']:.3e} | {agg(lambda x: x['dense']['eval_loss'])} |",
        f"| SLM (half budget, {g['steps'][0]} steps) -> grow -> big ({g['steps'][1]} steps) | {g['flops']:.3e} | "
        f"{agg(lambda x: x['grow']['grown_eval_loss'])} |",
        f"| (the SLM at the moment of growth) | {g['slm_half_flops']:.3e} | {agg(lambda x: x['grow']['slm_half_eval_loss'])} |",
        "",
        f"One-shot PN projection (load + assign clusters + materialise): {agg(lambda x: x['projection_s'])} s.",
    ]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="digits")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the preset's FLOP budget")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="bench/results/pretrain.md")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    t0 = time.time()
    r = run(args)
    md = table(r)
    cmd = "bench/pretrain.py " + " ".join(sys.argv[1:] if argv is None else argv)
    import platform

    import torch

    text = (
        f"# Pretraining benchmark\n\nCommand: `.venv/bin/python {cmd}`\n\n{md}\n\n"
        f"Machine: {platform.machine()}, torch {torch.__version__}, {args.threads} thread(s), shared with other jobs "
        f"(throughput only as ratios measured in the same run); wall time {time.time() - t0:.0f} s.\n"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1))
    print(text)


if __name__ == "__main__":
    main()
