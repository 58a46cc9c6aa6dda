"""Projection methods vs baselines after projection and after fine-tuning, and AFT vs none vs KD.

    .venv/bin/python bench/methods.py                       # the full table (about 1.5 h on 2 loaded CPU cores)
    .venv/bin/python bench/methods.py --tasks digits:7 --seeds 0 --methods truncate,projector,slm
    .venv/bin/python bench/methods.py --methods '' --aft aft,kd --teachers dense,dense-x4 --betas 1,3,10  # AFT study

Pretrained models (preset ``tiny``, data ``digits``, seed 0, each at the preset's
FLOP budget) are cached under ``--runs``/pretrain; every (task, seed, method)
result is cached as a line of ``--runs``/results.jsonl, so the benchmark runs in
stages and resumes. The table is rewritten from all cached lines at the end.
Seeds vary the task's training subset and the fine-tuning order/initialisation.
Metrics are on the odd rows of each task's eval split; the even rows choose the
early-stopping checkpoint.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

ALL_METHODS = (
    "pn",
    "pn-lowest",
    "pn-tuned",
    "hard-moe",
    "projector",
    "truncate",
    "slm",
    "scratch",
    "response",
    "universal",
)
AFT_VARIANTS = ("none", "aft", "kd", "aft+noise", "kd+noise")
PN_TUNE_STEPS = 50  # coefficient-tuning steps of the "pn-tuned" option (beyond the paper)


def pretrained(runs: Path, kind: str, preset: str, pseed: int = 0) -> Path:
    """The pretrained ``kind`` of pretraining seed ``pseed`` (seed 0 keeps the original cache layout)."""
    out = runs / ("pretrain" if pseed == 0 else f"pretrain-s{pseed}") / kind
    if (out / "projdeploy.json").is_file():
        state = out / "trainer_state.json"  # periodic checkpoints also write projdeploy.json: check completion
        if not state.is_file() or json.loads(state.read_text())["step"] >= json.loads(
            (out / "projdeploy.json").read_text()
        ).get("steps", 0):
            return out
        raise RuntimeError(
            f"{out} is an unfinished pretraining run (another process may be training it); wait for it or delete it"
        )
    if kind == "projector":
        from projdeploy.project.projector import pretrain_projector

        pretrain_projector("digits", preset, out, progress=False, ckpt_every=0, seed=pseed)
    elif kind.startswith("projector-"):  # investigation variants: -s<steps> (more FLOPs), -l<lambda>, -r<rank>
        from projdeploy.project.projector import pretrain_projector

        opt, val = kind.split("-", 1)[1][0], kind.split("-", 1)[1][1:]
        kw = {"s": {"steps": int(val)}, "l": {"lam": float(val)}, "r": {"rank": int(val)}}[opt]
        pretrain_projector("digits", preset, out, progress=False, ckpt_every=0, seed=pseed, **kw)
    elif kind == "universal":
        from projdeploy.project.baselines import train_universal

        train_universal("digits", preset, out, progress=False, seed=pseed)
    elif kind.startswith("dense-x"):  # a longer-trained teacher: x times the preset's FLOP budget (not equal FLOPs)
        from projdeploy.tasks import get_task
        from projdeploy.train.presets import get_preset
        from projdeploy.train.pretrain import flop_budget, pretrain

        mult = float(kind[len("dense-x") :])
        pretrain(
            "dense",
            "digits",
            preset,
            out,
            progress=False,
            seed=pseed,
            flops=mult * flop_budget(get_task("digits"), get_preset(preset)),
        )
    else:
        from projdeploy.train.pretrain import pretrain

        pretrain(kind, "digits", preset, out, progress=False, seed=pseed)
    return out


def start_model(method: str, task, runs: Path, preset: str, seed: int, pseed: int = 0):
    """(small model, projection seconds, info) for a method, before fine-tuning."""
    from projdeploy.models import build_model
    from projdeploy.models.checkpoint import load_model
    from projdeploy.project.api import project_model
    from projdeploy.train.small import model_config_for_task

    t0 = time.perf_counter()
    if method in ("pn", "hard-moe"):
        model, info = project_model(pretrained(runs, method, preset, pseed), task, "pn", seed=seed)
    elif method == "pn-lowest":
        model, info = project_model(pretrained(runs, "pn", preset, pseed), task, "pn", seed=seed, rule="lowest-loss")
    elif method == "pn-tuned":
        model, info = project_model(
            pretrained(runs, "pn", preset, pseed),
            task,
            "pn",
            seed=seed,
            rule="lowest-loss",
            tune_coefficients_steps=PN_TUNE_STEPS,
        )
    elif method.startswith("projector"):  # "projector" or an investigation variant such as "projector-s400"
        model, info = project_model(pretrained(runs, method, preset, pseed), task, "projector", seed=seed)
    elif method == "truncate":
        model, info = project_model(pretrained(runs, "dense", preset, pseed), task, "truncate", seed=seed)
    elif method in ("slm", "response"):
        model, info = load_model(pretrained(runs, "slm", preset, pseed)), {}
    elif method == "scratch":
        from projdeploy.train.presets import get_preset

        model, info = build_model(model_config_for_task(task, get_preset(preset).small_size), seed=seed), {}
    elif method == "universal":
        from projdeploy.project.baselines import specialise_universal

        model, info = specialise_universal(pretrained(runs, "universal", preset, pseed), task, seed=seed)
    else:
        raise ValueError(method)
    return model, time.perf_counter() - t0, info


def ft_config(task, seed: int, args, **kw):
    from projdeploy.train.finetune import FinetuneConfig

    steps = args.cls_steps if task.kind == "cls" else args.ft_steps
    return FinetuneConfig(
        steps=steps, eval_every=max(1, steps // 8), patience=4, seed=seed, lr=args.lr, gate_lr=args.gate_lr, **kw
    )


def run_one(method: str, task_name: str, seed: int, args) -> dict:
    from projdeploy.tasks import get_task
    from projdeploy.tasks.metrics import evaluate
    from projdeploy.train.finetune import finetune, prepare_model, split_eval

    runs = Path(args.runs)
    rows = args.cls_rows if get_task(task_name).kind == "cls" else args.train_rows
    task = get_task(task_name).with_train_limit(rows, seed=seed)
    model, proj_s, info = start_model(method, task, runs, args.preset, seed, args.pretrain_seed)
    before = evaluate(prepare_model(model, task, seed), split_eval(task, "test"))["value"]
    cfg = ft_config(task, seed, args)
    if method == "response":
        if task.kind != "lm":
            return {"skipped": "response distillation needs an LM task"}
        from projdeploy.project.baselines import response_distill

        _, ft = response_distill(
            model, pretrained(runs, "dense", args.preset, args.pretrain_seed), task, cfg, progress=False
        )
    else:
        _, ft = finetune(model, task, "none", cfg=cfg, progress=False)
    return {
        "projected": before,
        "finetuned": ft["test"],
        "val": ft["val"],
        "project_s": proj_s,
        "finetune_s": ft["seconds"],
        "best_step": ft["best_step"],
        "train_rows": len(task.train),
        "info": info,
    }


def run_aft(variant: str, seed: int, args, teacher: str = "dense", beta: float = 10.0) -> dict:
    from projdeploy.models.checkpoint import load_model
    from projdeploy.tasks import get_task
    from projdeploy.train.finetune import finetune

    runs = Path(args.runs)
    task = get_task(args.cls_task).with_train_limit(args.cls_rows, seed=seed)
    transfer = variant.split("+")[0]
    noise = args.noise_dims if variant.endswith("+noise") else 0
    teachers = [pretrained(runs, teacher, args.preset, args.pretrain_seed)] if transfer != "none" else []
    start = load_model(pretrained(runs, "slm", args.preset, args.pretrain_seed))
    _, ft = finetune(
        start,
        task,
        transfer,
        teachers,
        cfg=ft_config(task, seed, args, noise_dims=noise, beta=beta),
        feature_cache=runs / "features",
        progress=False,
    )
    return {
        "finetuned": ft["test"],
        "val": ft["val"],
        "finetune_s": ft["seconds"],
        "best_step": ft["best_step"],
        **{k: ft[k] for k in ("gates_mean_noise", "gates_mean_real") if k in ft},
    }


def probe(args, skip: set = frozenset()) -> list[dict]:
    """Linear-probe accuracy (logistic regression, val half) of frozen pooled features on the cls task.

    Tells whether a teacher's features hold more task information than the student's own: if not,
    feature transfer has nothing to add. Chosen on nothing: one fixed probe (C=1, standardised).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from projdeploy.tasks import get_task
    from projdeploy.train.finetune import split_eval
    from projdeploy.transfer.features import (
        features_of,
        load_feature_model,
        teacher_inputs,
    )

    runs, out = Path(args.runs), []
    for seed in [int(x) for x in args.seeds.split(",")]:
        task = get_task(args.cls_task).with_train_limit(args.cls_rows, seed=seed)
        val = split_eval(task, "val").eval
        for name in ["slm", *args.teachers.split(",")]:
            if f"probe|{tag(args)}|{name}|{seed}" in skip:
                continue
            m = load_feature_model(pretrained(runs, name, args.preset, args.pretrain_seed))
            tr, va = (features_of(m, teacher_inputs(m, task, x)) for x in (task.train.tokens, val.tokens))
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
            clf.fit(tr, task.train.labels)
            out.append(
                {
                    "kind": "probe",
                    "key": f"probe|{tag(args)}|{name}|{seed}",
                    "model": name,
                    "seed": seed,
                    "val_acc": float(clf.score(va, val.labels)),
                    "train_acc": float(clf.score(tr, task.train.labels)),
                }
            )
    return out


def fmt(vals, digits=3):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "n/a"
    return f"{np.mean(vals):.{digits}f} ± {np.std(vals):.{digits}f}" if len(vals) > 1 else f"{vals[0]:.{digits}f}"


def paired_ci(diffs) -> str:
    """Mean of paired differences with its 95% t-interval (``n/a`` below 2 units)."""
    from scipy import stats

    v = np.asarray(diffs, dtype=float)
    if len(v) < 2:
        return "n/a"
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return f"{v.mean():+.3f} [{v.mean() - half:+.3f}, {v.mean() + half:+.3f}] (n={len(v)})"


def tag(args) -> str:
    """The settings a cached result depends on (results of other settings are kept but not mixed in)."""
    lr = "" if args.lr == 3e-3 else f"-lr{args.lr:g}"
    lr += "" if getattr(args, "gate_lr", 1e-2) == 1e-2 else f"-glr{args.gate_lr:g}"
    lr += "" if getattr(args, "pretrain_seed", 0) == 0 else f"-ps{args.pretrain_seed}"
    return f"{args.preset}-r{args.train_rows}-c{args.cls_rows}-f{args.ft_steps}-k{args.cls_steps}{lr}"


OLD_TAG = "tiny-r64-c200-f120-k120"  # lines cached before keys carried settings were run with these


def pretrain_note(runs: Path, pseed: int = 0) -> str:
    rows = []
    for d in sorted(Path(runs, "pretrain" if pseed == 0 else f"pretrain-s{pseed}").glob("*/projdeploy.json")):
        m = json.loads(d.read_text())
        rows.append(f"{d.parent.name}: {m.get('steps')} steps")
    return "; ".join(rows)


def write_table(results: list[dict], args) -> str:
    from projdeploy.tasks import get_task

    t = tag(args)
    results = [r for r in results if r.get("tag", OLD_TAG) == t]
    lines = [
        "# Projection methods and baselines (bench/methods.py)",
        "",
        f"Command: `{args.command}` (settings tag `{t}`)",
        "",
        (
            f"Preset `{args.preset}` (small model d64/L2/ffn192, big dense d128/L2/ffn384, PN k=4 experts h=8 m=4), "
            f"all pretrained on `digits` (seed {args.pretrain_seed}) at the preset's equal FLOP budget (what the SLM "
            f"spends in 400 steps): {pretrain_note(Path(args.runs), args.pretrain_seed)}. `dense-x4` is a teacher trained at 4x that budget (not "
            "equal FLOPs; only used as an AFT/KD teacher); `projector-s400` (400 steps, 4.7x the budget) and "
            "`projector-l4` (lambda 4, equal budget) are investigation rows, not equal-budget results. Task training sets: {args.train_rows} rows (LM), "
            f"{args.cls_rows} rows (`{args.cls_task}`); fine-tuning at most {args.ft_steps} steps (LM) / "
            f'{args.cls_steps} steps (cls), batch 32, lr {args.lr:g}, early stopping on the even eval rows ("val"), '
            'metric on the odd eval rows ("test", never used for any choice). mean ± std (population) over '
            "seeds; seeds vary the training subset, the head initialisation and the batch order. Wall times are "
            "on a shared, loaded 2-core CPU (1 torch thread, load 8-10): compare them within this table only."
        ),
        "",
    ]
    main = [r for r in results if r["kind"] == "method" and "skipped" not in r]
    for task_name in dict.fromkeys(r["task"] for r in main):
        task = get_task(task_name)
        arrow = "higher is better" if task.higher_is_better else "lower is better"
        lines += [
            f"## {task_name} ({task.metric}, {arrow})",
            "",
            "| method | seeds | after projection | after fine-tuning | projection s | fine-tune s |",
            "|---|---|---|---|---|---|",
        ]
        for m in dict.fromkeys([*ALL_METHODS, *sorted(r["method"] for r in main)]):
            rs = [r for r in main if r["task"] == task_name and r["method"] == m]
            if rs:
                lines.append(
                    f"| {m} | {len(rs)} | {fmt([r['projected'] for r in rs])} | "
                    f"{fmt([r['finetuned'] for r in rs])} | {fmt([r['project_s'] for r in rs], 2)} | "
                    f"{fmt([r['finetune_s'] for r in rs], 1)} |"
                )
        lines.append("")
    aft = [r for r in results if r["kind"] == "aft"]
    if aft:
        lines += [
            f"## AFT vs plain fine-tuning vs feature KD on `{args.cls_task}` (headline)",
            "",
            (
                "Each transfer at the teacher and beta with the best mean accuracy on the val half (the test half "
                f"is never used for the choice); noise: {args.noise_dims} standard-normal dimensions appended to "
                "the teacher features, same teacher and beta. Full grid below."
            ),
            "",
            (
                "| transfer | teacher | beta | seeds | val accuracy | test accuracy | test, +noise | "
                "gates real / noise (+noise) |"
            ),
            "|---|---|---|---|---|---|---|---|",
        ]
        nn = [r for r in aft if r["variant"] == "none"]
        if nn:
            lines.append(
                f"| none | - | - | {len(nn)} | {fmt([r['val'] for r in nn])} | "
                f"{fmt([r['finetuned'] for r in nn])} | - | - |"
            )
        for tr in ("aft", "kd"):
            sel = select(results, tr, args)
            if sel is None:
                continue
            rs, nz = (
                [r for r in aft if r["variant"] == v and (r.get("teacher", "dense"), r.get("beta", 10.0)) == sel]
                for v in (tr, tr + "+noise")
            )
            gates = (
                (
                    f"{fmt([r.get('gates_mean_real') for r in nz], 2)} / "
                    f"{fmt([r.get('gates_mean_noise') for r in nz], 2)}"
                )
                if tr == "aft" and nz
                else "-"
            )
            lines.append(
                f"| {tr} | {sel[0]} | {sel[1]:g} | {len(rs)} | {fmt([r['val'] for r in rs])} | "
                f"{fmt([r['finetuned'] for r in rs])} | {fmt([r['finetuned'] for r in nz])} | {gates} |"
            )
        lines.append("")
    groups = dict.fromkeys((r.get("teacher", "dense"), r.get("beta", 10.0)) for r in aft)
    for teacher, beta in groups:
        rs_g = [r for r in aft if (r.get("teacher", "dense"), r.get("beta", 10.0)) == (teacher, beta)]
        lines += [
            (
                f"## Feature transfer on `{args.cls_task}`: teacher `{teacher}`, beta {beta:g} "
                "(student: SLM backbone + fresh head)"
            ),
            "",
            (
                f"Noise variants append {args.noise_dims} standard-normal dimensions to the teacher features. "
                "`none` is plain fine-tuning (no teacher; the same runs in every group)."
            ),
            "",
            (
                "| transfer | seeds | val accuracy (selection half) | test accuracy | mean gate (real dims) | "
                "mean gate (noise dims) | fine-tune s |"
            ),
            "|---|---|---|---|---|---|---|",
        ]
        for v in AFT_VARIANTS:
            rs = [r for r in (rs_g if v != "none" else [r for r in aft if r["variant"] == "none"]) if r["variant"] == v]
            if rs:
                lines.append(
                    f"| {v} | {len(rs)} | {fmt([r.get('val') for r in rs])} | "
                    f"{fmt([r['finetuned'] for r in rs])} | "
                    f"{fmt([r.get('gates_mean_real') for r in rs], 2)} | "
                    f"{fmt([r.get('gates_mean_noise') for r in rs], 2)} | "
                    f"{fmt([r['finetune_s'] for r in rs], 1)} |"
                )
        lines.append("")
    probes = [r for r in results if r["kind"] == "probe"]
    if probes:
        lines += [
            (
                f"## Linear probes of frozen pooled features on `{args.cls_task}` (logistic regression on the "
                f"{args.cls_rows} training rows, accuracy on the val half)"
            ),
            "",
            "| features of | seeds | train accuracy | val accuracy |",
            "|---|---|---|---|",
        ]
        for name in dict.fromkeys(r["model"] for r in probes):
            rs = [r for r in probes if r["model"] == name]
            lines.append(
                f"| {name} | {len(rs)} | {fmt([r['train_acc'] for r in rs])} | {fmt([r['val_acc'] for r in rs])} |"
            )
        lines.append("")
    return "\n".join(lines)


def run_jobs(jobs, keys: set, done: list, cache: Path, args) -> None:
    """Run every job whose key is not cached yet; append each result to the cache as it finishes."""
    from projdeploy.errors import ProjdeployError

    for kind, key, kw in jobs:
        if key in keys:
            continue
        keys.add(key)
        t0 = time.perf_counter()
        if kind == "method":
            try:
                r = run_one(kw["method"], kw["task"], kw["seed"], args)
            except (ImportError, ProjdeployError) as e:  # e.g. PN not available in this build
                print(f"{key}: skipped ({e})", flush=True)
                continue
        else:
            r = run_aft(kw["variant"], kw["seed"], args, kw["teacher"], kw["beta"])
        r.update(kind=kind, key=key, tag=tag(args), **kw)
        with cache.open("a") as f:
            f.write(json.dumps(r) + "\n")
        done.append(r)
        print(
            f"{key}: { ({k: v for k, v in r.items() if k not in ('info', 'key', 'kind')}) } "
            f"[{time.perf_counter() - t0:.0f}s]",
            flush=True,
        )


def select(results: list[dict], transfer: str, args):
    """(teacher, beta) with the best mean *val* accuracy over seeds for ``aft`` or ``kd`` (test never looked at)."""
    t = tag(args)
    groups: dict = {}
    for r in results:
        if r["kind"] == "aft" and r.get("tag", OLD_TAG) == t and r["variant"] == transfer and "val" in r:
            groups.setdefault((r.get("teacher", "dense"), r.get("beta", 10.0)), []).append(r["val"])
    full = {k: v for k, v in groups.items() if len(v) == max(map(len, groups.values()))}
    return max(full, key=lambda k: np.mean(full[k])) if full else None


def run_all(args, done: list, keys: set, cache: Path) -> None:
    """Every method / AFT / probe job of ``args.pretrain_seed`` that is not cached yet."""
    t = tag(args)
    jobs = []
    if not args.table_only:
        seeds = [int(s) for s in args.seeds.split(",")]
        for seed in seeds:
            for tk in args.tasks.split(","):
                for m in [m for m in args.methods.split(",") if m]:
                    jobs.append(("method", f"method|{t}|{tk}|{m}|{seed}", {"task": tk, "method": m, "seed": seed}))
            for teacher in args.teachers.split(","):
                for beta in [float(b) for b in args.betas.split(",")]:
                    for v in [v for v in args.aft.split(",") if v and (args.noise_grid or "+" not in v)]:
                        key = f"aft|{t}|none|{seed}" if v == "none" else f"aft|{t}|{teacher}|b{beta:g}|{v}|{seed}"
                        jobs.append(("aft", key, {"variant": v, "seed": seed, "teacher": teacher, "beta": beta}))
    old_none = {r["key"].replace(f"|{OLD_TAG}|dense|b10|none|", f"|{OLD_TAG}|none|") for r in done}
    keys |= old_none
    run_jobs(jobs, keys, done, cache, args)
    if not args.table_only:  # phase 2: noise variants at each transfer's val-selected teacher and beta
        noise = []
        for v in [v for v in args.aft.split(",") if v.endswith("+noise")]:
            sel = select(done, v.split("+")[0], args)
            for seed in [int(x) for x in args.seeds.split(",")] if sel else []:
                noise.append(
                    (
                        "aft",
                        f"aft|{t}|{sel[0]}|b{sel[1]:g}|{v}|{seed}",
                        {"variant": v, "seed": seed, "teacher": sel[0], "beta": sel[1]},
                    )
                )
        run_jobs(noise, keys, done, cache, args)
    if args.probe and not args.table_only:
        for r in probe(args, keys):
            if r["key"] not in keys:
                r["tag"] = t
                with cache.open("a") as f:
                    f.write(json.dumps(r) + "\n")
                done.append(r)


def across_pretrain_seeds(results: list[dict], args, pseeds: list[int]) -> str:
    """Main-table methods over every (pretraining seed, fine-tuning seed): mean ± std of all runs, the spread of
    the per-pretraining-seed means, and paired wins against the SLM (same pretraining and fine-tuning seed)."""
    from projdeploy.tasks import get_task

    tags = {}
    for ps in pseeds:
        args.pretrain_seed = ps
        tags[tag(args)] = ps
    args.pretrain_seed = pseeds[0]
    rows = [r for r in results if r["kind"] == "method" and "skipped" not in r and r.get("tag", OLD_TAG) in tags]
    lines = [
        f"## Across pretraining seeds {','.join(map(str, pseeds))} (fine-tuning seeds {args.seeds})",
        "",
        "All runs: mean ± std over every (pretraining seed, fine-tuning seed) run; per-pretraining-seed means; "
        "wins: runs better than the SLM of the same pretraining and fine-tuning seed; paired vs slm: the "
        "method minus the SLM of the same seeds, averaged over fine-tuning seeds within each pretraining seed, "
        "then mean and 95% t-interval over the pretraining seeds (the independent units: runs of one "
        "pretraining seed share their pretrained model). A negative difference is better when lower is better.",
        "",
    ]
    for task_name in dict.fromkeys(r["task"] for r in rows):
        task = get_task(task_name)
        sign = 1 if task.higher_is_better else -1
        lines += [f"### {task_name} ({task.metric}, {'higher' if sign > 0 else 'lower'} is better)", ""]
        lines += [
            "| method | runs | all runs | per pretraining seed | wins vs slm | paired vs slm (95% CI) |",
            "|---|---|---|---|---|---|",
        ]
        slm = {(r["tag"], r["seed"]): r["finetuned"] for r in rows if r["task"] == task_name and r["method"] == "slm"}
        for m in dict.fromkeys(r["method"] for r in rows if r["task"] == task_name):
            rs = [r for r in rows if r["task"] == task_name and r["method"] == m]
            per = [fmt([r["finetuned"] for r in rs if r["tag"] == t]) for t in tags]
            pairs = [(r["finetuned"], slm[(r["tag"], r["seed"])]) for r in rs if (r["tag"], r["seed"]) in slm]
            wins = "-" if m == "slm" else f"{sum(sign * (a - b) > 0 for a, b in pairs)}/{len(pairs)}"
            per_seed_diff = [
                np.mean([r["finetuned"] - slm[(t, r["seed"])] for r in rs if r["tag"] == t and (t, r["seed"]) in slm])
                for t in tags
                if any(r["tag"] == t and (t, r["seed"]) in slm for r in rs)
            ]
            paired = "-" if m == "slm" else paired_ci(per_seed_diff)
            lines.append(
                f"| {m} | {len(rs)} | {fmt([r['finetuned'] for r in rs])} | {' / '.join(per)} | {wins} | {paired} |"
            )
        lines.append("")
    return "\n".join(lines)


FINDINGS = "<!-- hand-written below this line; bench/methods.py keeps it -->"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="digits:7,digits:0-4,digits-cls")
    ap.add_argument("--methods", default=",".join(ALL_METHODS))
    ap.add_argument("--aft", default=",".join(AFT_VARIANTS), help="AFT variants ('' to skip)")
    ap.add_argument(
        "--teachers",
        default="dense,dense-x4",
        help="AFT/KD teachers: dense (equal FLOPs) and/or dense-x<N> (N times the budget)",
    )
    ap.add_argument("--betas", default="1,3,10", help="AFT/KD weights (10 is the official AFT default)")
    ap.add_argument("--no-probe", dest="probe", action="store_false", help="skip the linear feature probes")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument(
        "--pretrain-seeds", default="0", help="pretraining seeds (each pretrains its own models; 0 = the original)"
    )
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--runs", default="runs/methods")
    ap.add_argument("--train-rows", type=int, default=64)
    ap.add_argument("--cls-task", default="digits-cls")
    ap.add_argument("--cls-rows", type=int, default=200)
    ap.add_argument("--ft-steps", type=int, default=120)
    ap.add_argument("--cls-steps", type=int, default=120)
    ap.add_argument("--noise-dims", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3, help="fine-tuning learning rate (all methods)")
    ap.add_argument("--gate-lr", type=float, default=1e-2, help="lr of the AFT gates / KD map (official: 1e-2)")
    ap.add_argument(
        "--noise-grid",
        action="store_true",
        help="run +noise variants at every teacher/beta (default: only at the val-selected ones)",
    )
    ap.add_argument("--out", default="bench/results/methods.md")
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args(argv)
    argv_ = argv if argv is not None else __import__("sys").argv[1:]
    args.command = " ".join(["python bench/methods.py", *[a for a in argv_ if a != "--table-only"]]).strip()
    torch.set_num_threads(1)
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    cache = runs / "results.jsonl"
    done = [json.loads(x) for x in cache.read_text().splitlines()] if cache.is_file() else []
    done = [
        r for r in done if "val" in r or r["kind"] == "probe" or "skipped" in r
    ]  # lines from before "val" was recorded: rerun
    for r in done:  # lines cached before keys carried settings / teacher / beta
        if "tag" not in r:
            r["tag"] = OLD_TAG
            r["key"] = r["key"].replace("|", f"|{OLD_TAG}|", 1)
            if r["kind"] == "aft":
                r["key"] = r["key"].replace(f"|{OLD_TAG}|", f"|{OLD_TAG}|dense|b10|", 1)
    keys = {r["key"] for r in done}
    pseeds = [int(x) for x in args.pretrain_seeds.split(",")]
    for ps in pseeds:  # every pretraining seed: its own pretrained models and its own settings tag
        args.pretrain_seed = ps
        run_all(args, done, keys, cache)
    args.pretrain_seed = pseeds[0]
    table = write_table(done, args)
    if len(pseeds) > 1:
        table += "\n" + across_pretrain_seeds(done, args, pseeds)
    out = Path(args.out)
    notes = ""
    if out.is_file() and FINDINGS in out.read_text():
        notes = out.read_text().split(FINDINGS, 1)[1]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n" + FINDINGS + notes.rstrip() + "\n")
    print(table)


if __name__ == "__main__":
    main()
