"""Pretrained big models -> small task models: SmolLM2-135M on held-out pycode domains, MiniLM-L6 on pycode-cls.

    .venv/bin/python bench/real_models.py > runs/real_models.log 2>&1                    # about 1.5 h on a shared core
    .venv/bin/python bench/real_models.py --part lm --domains email --seeds 2 --steps 4   # a quick look
    .venv/bin/python bench/real_models.py --report-only                                  # tables from results.jsonl

LM part: SmolLM2-135M (``smollm2-135m``) -> a small model with 25% of its
non-embedding parameters (``--params``), per domain: bits/byte of the big model,
and after projection / after fine-tuning for ``scratch`` (random init, same
config), ``truncate``, ``prune``, and ``prune`` / ``projector`` / upcycled ``pn``
each followed by fine-tuning with response distillation from SmolLM2's cached
top-k logits (``<method>+distill``). Projections go through the projection-method
table (``projdeploy.project.methods``), are deterministic (seed 0; prune
calibrates on the domain's training pool; projector and pn first train on
generic pycode with the domain held out) and are cached on disk; seeds vary the
task's training subset (``--train-rows`` windows drawn from the pool), the
batch order and, for scratch, the initialisation. Classification part:
MiniLM-L6 (``minilm-l6``) as the teacher of a small Llama-style classifier
trained from scratch on ``pycode-cls`` with MiniLM's WordPiece tokenizer:
plain, feature KD and AFT (teacher features computed once).

Every result is one line of ``--runs``/results.jsonl keyed by its settings, so
runs resume and never mix settings; the report (mean, 95% t-interval, paired
differences against ``prune+distill`` / ``none``) is written to
``bench/results/real_models.md``. CPU seconds are ``time.process_time()``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

LM_METHODS = (
    "prune+distill",
    "projector+distill",
    "pn+distill",
    "prune-heal+distill",
    "prune",
    "truncate",
    "scratch",
)
CLS_TRANSFERS = ("none", "kd", "aft")
NOTES = "<!-- hand-written below this line; bench/real_models.py keeps it -->"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=("lm", "cls", "all"), default="all")
    p.add_argument("--domains", default="email,xml,http")
    p.add_argument("--methods", default=",".join(LM_METHODS), help="LM: <projection>[+distill] or scratch")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--params", default="25%")
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--pool-rows", type=int, default=64, help="LM: training pool per domain (teacher top-k)")
    p.add_argument("--calibration", type=int, default=32, help="LM: prune's calibration windows (from the pool)")
    p.add_argument("--train-rows", type=int, default=24, help="LM: training windows per seed, drawn from the pool")
    p.add_argument("--eval-rows", type=int, default=8, help="LM: val rows and test rows (each)")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--eval-every", type=int, default=6)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--topk", type=int, default=32)
    p.add_argument("--proj-train-steps", type=int, default=4, help="projector / pn: steps on generic data")
    p.add_argument("--fit-steps", type=int, default=10, help="projector: task-embedding fitting steps")
    p.add_argument("--cls-steps", type=int, default=90)
    p.add_argument("--cls-seq-len", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", default="runs/real_models")
    p.add_argument("--report", default="bench/results/real_models.md")
    p.add_argument("--report-only", action="store_true")
    return p.parse_args(argv)


class Results:
    """results.jsonl: one line per (settings, part, domain, method, seed)."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.rows = [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []

    def get(self, **key):
        return next((r for r in self.rows if all(r.get(k) == v for k, v in key.items())), None)

    def add(self, row: dict) -> dict:
        self.rows.append(row)
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps({k: v for k, v in row.items() if k != "settings"}), flush=True)
        return row


def lm_settings(a) -> str:
    return (
        f"lm-{a.params}-s{a.seq_len}-p{a.pool_rows}-c{a.calibration}-r{a.train_rows}-e{a.eval_rows}"
        f"-st{a.steps}-b{a.batch_size}-ev{a.eval_every}-lr{a.lr}-k{a.topk}-g{a.proj_train_steps}-f{a.fit_steps}"
    )


def cls_settings(a) -> str:
    return f"cls-s{a.cls_seq_len}-st{a.cls_steps}"


def domain_task(domain: str, a, tokenizer):
    """The domain re-tokenized with the big model's tokenizer: a training pool and val+test eval rows."""
    from projdeploy.tasks.hf_tokenizer import fit_task
    from projdeploy.tasks.pycode import pycode

    task = fit_task(pycode(domain, seq_len=a.seq_len), tokenizer)
    pool = np.sort(np.random.default_rng(1234).permutation(len(task.train))[: a.pool_rows])
    n = min(len(task.eval), 2 * a.eval_rows)  # evenly spread over the held-out files, val/test alternate
    ev = np.unique(np.linspace(0, len(task.eval) - 1, n).round().astype(int))
    return dataclasses.replace(task, train=task.train.subset(pool), eval=task.eval.subset(ev))


def test_metric(model, task) -> float:
    from projdeploy.tasks.metrics import evaluate
    from projdeploy.train.finetune import split_eval

    return evaluate(model, split_eval(task, "test"))["value"]


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def projection_options(a) -> dict:
    """Every option a projection method may take; each method receives only those it declares."""
    return {
        "params": a.params,
        "calibration": a.calibration,
        "train_steps": a.proj_train_steps,
        "fit_steps": a.fit_steps,
    }


def prune_heal(big, task, *, seed=0, params=None, calibration=32, train_steps=0):
    """Control for projector / pn: ``prune``, then the same continued training on the same generic windows
    (``ContinuedTraining``: steps, batch, lr, the domain held out) with the plain next-token loss. A projection
    method that beats prune only by this healing is not a win of its structure."""
    import torch.nn.functional as F

    from projdeploy.project.api import dense_projection
    from projdeploy.project.pretrained import ContinuedTraining, generic_data
    from projdeploy.train.loop import train_loop

    small, info = dense_projection(big, task, "prune", seed=seed, params=params, calibration=calibration)
    train = ContinuedTraining(steps=train_steps)
    data = generic_data(task, train, seed)

    def loss(model, batch):
        toks = batch["tokens"]
        logits = model(toks[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), toks[:, 1:].reshape(-1))

    small.train().requires_grad_(True)
    res = train_loop(small, {"tokens": data.task.train.tokens}, loss, train.train_config(seed))
    return small.eval(), {**info, "train_steps": train_steps, "train_loss": [res.losses[0], res.losses[-1]]}


BENCH_PROJECTIONS = {"prune-heal": (prune_heal, ("params", "calibration", "train_steps"))}


def lm_projection(name: str, task, a, cache: Path) -> tuple:
    """(small model, after-projection test metric, projection CPU s, info): one projection of the pretrained
    model (deterministic, seed 0), computed once and cached on disk as an ordinary small checkpoint."""
    from projdeploy.fsutil import atomic_dir
    from projdeploy.models.checkpoint import load_model, write_model_files
    from projdeploy.project.methods import get_method

    done = cache / "projection.json"
    if done.is_file():
        meta = json.loads(done.read_text())
        return load_model(cache), meta["after_projection"], meta["projection_cpu_s"], meta["info"]
    if name in BENCH_PROJECTIONS:
        run, names = BENCH_PROJECTIONS[name]
    else:
        method = get_method(name)
        run, names = method.runner("smollm2-135m", pretrained=True), method.options_for(True)
    opts = {k: v for k, v in projection_options(a).items() if k in names}
    (model, info), _, cpu = timed(lambda: run("smollm2-135m", task, seed=0, **opts))
    value = test_metric(model, task)
    meta = {"after_projection": value, "projection_cpu_s": cpu, "info": info, "options": opts}
    with atomic_dir(cache) as tmp:
        write_model_files(tmp, model)
        Path(tmp, "projection.json").write_text(json.dumps(meta, default=str))
    return model, value, cpu, info


def lm_run(task, method, seed, a, proj, topk) -> dict:
    from projdeploy.models import build_model
    from projdeploy.train.finetune import FinetuneConfig, finetune
    from projdeploy.transfer.distill import distill_loss

    if method == "scratch":
        model = build_model(proj("prune")[0].config, seed=seed)
        after_proj, proj_cpu = test_metric(model, task), 0.0
    else:
        model, after_proj, proj_cpu, _ = proj(method.split("+")[0])
    idx = np.sort(np.random.default_rng(seed).permutation(len(task.train))[: a.train_rows])
    sub = dataclasses.replace(task, train=task.train.subset(idx))
    extra = {}
    if method.endswith("+distill"):
        extra = dict(
            extra_loss=distill_loss(1.0, 2.0), extra_data={"distill_idx": topk[0][idx], "distill_val": topk[1][idx]}
        )
    cfg = FinetuneConfig(
        steps=a.steps, batch_size=a.batch_size, lr=a.lr, eval_every=a.eval_every, patience=2, seed=seed
    )
    (_, info), wall, cpu = timed(lambda: finetune(model, sub, "none", (), None, cfg, progress=False, **extra))
    tokens = a.steps * a.batch_size * a.seq_len
    return {
        "after_projection": after_proj,
        "after_finetune": info["test"],
        "val": info["val"],
        "best_step": info["best_step"],
        "train_tokens": tokens,
        "projection_cpu_s": proj_cpu,
        "finetune_cpu_s": cpu,
        "finetune_wall_s": wall,
    }


def run_lm(a, res: Results, save) -> None:
    """Seed-major: every domain and method for seed 0, then seed 1, ... (a cut-off run leaves whole seeds)."""
    from projdeploy.foundation import load_big

    big = load_big("smollm2-135m")
    settings = lm_settings(a)
    domains = [d for d in a.domains.split(",") if d]
    methods = [m for m in a.methods.split(",") if m]
    state = {}
    for seed in range(a.seeds):
        for domain in domains:
            key = {"settings": settings, "part": "lm", "domain": domain}
            todo = [m for m in methods if res.get(**key, method=m, seed=seed) is None]
            if not todo and res.get(**key, method="big") is not None:
                continue
            if domain not in state:
                state[domain] = domain_state(big, domain, a, res, key)
            task, proj, topk = state[domain]
            for method in todo:
                res.add({**key, "method": method, "seed": seed, **lm_run(task, method, seed, a, proj, topk)})
                save()


def domain_state(big, domain: str, a, res: Results, key: dict):
    """(task, projection getter, teacher top-k) of one domain; records the big model's own row once."""
    import functools

    from projdeploy.transfer.distill import teacher_topk

    task = domain_task(domain, a, big.tokenizer)
    cache = Path(a.runs, "projections", lm_settings(a), domain)
    proj = functools.cache(lambda name: lm_projection(name, task, a, cache / name))
    topk, _, tk_cpu = timed(lambda: teacher_topk(big.module, task.train.tokens[:, :-1], a.topk))
    if res.get(**key, method="big") is None:
        value, _, big_cpu = timed(lambda: test_metric(big.module, task))
        res.add(
            {
                **key,
                "method": "big",
                "seed": None,
                "value": value,
                "eval_cpu_s": big_cpu,
                "teacher_topk_cpu_s": tk_cpu,
                "pool_rows": len(task.train),
                "eval_rows": len(task.eval),
            }
        )
    return task, proj, topk


def run_cls(a, res: Results, save) -> None:
    from projdeploy.foundation import load_big
    from projdeploy.models import ModelConfig, build_model
    from projdeploy.tasks.hf_tokenizer import fit_task
    from projdeploy.tasks.pycode_cls import pycode_cls
    from projdeploy.train.finetune import FinetuneConfig, finetune

    big = load_big("minilm-l6")
    task = fit_task(pycode_cls(seq_len=a.cls_seq_len), big.tokenizer)
    settings = cls_settings(a)
    cfg = ModelConfig(
        vocab_size=big.tokenizer.vocab_size,
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=a.cls_seq_len,
        pad_token_id=big.tokenizer.pad_id,
        num_labels=task.num_labels,
        id2label=dict(enumerate(task.labels)),
    )
    feature_cache = Path(a.runs, "features")
    key = {"settings": settings, "part": "cls", "domain": "pycode-cls"}
    if res.get(**key, method="big") is None:
        res.add({**key, "method": "big", "seed": None, **probe(big, task, feature_cache)})
    for seed in range(a.seeds):
        for transfer in CLS_TRANSFERS:
            if res.get(**key, method=transfer, seed=seed) is not None:
                continue
            teachers = [] if transfer == "none" else ["minilm-l6"]
            fcfg = FinetuneConfig(steps=a.cls_steps, batch_size=32, lr=3e-3, eval_every=10, patience=3, seed=seed)
            model = build_model(cfg, seed=seed)
            (_, info), wall, cpu = timed(
                lambda m=model, t=transfer, te=teachers, c=fcfg: finetune(
                    m, task, t, te, None, c, feature_cache=feature_cache, progress=False
                )
            )
            res.add(
                {
                    **key,
                    "method": transfer,
                    "seed": seed,
                    "after_finetune": info["test"],
                    "val": info["val"],
                    "best_step": info["best_step"],
                    "finetune_cpu_s": cpu,
                    "finetune_wall_s": wall,
                    "train_rows": info["train_rows"],
                }
            )
        save()


def probe(big, task, cache) -> dict:
    """The big model's own metric on the classification task: a logistic-regression probe on its features."""
    from sklearn.linear_model import LogisticRegression

    from projdeploy.train.finetune import split_eval
    from projdeploy.transfer.features import teacher_features

    (tr, te), _, cpu = timed(
        lambda: (
            teacher_features(["minilm-l6"], task, task.train.tokens, cache),
            teacher_features(["minilm-l6"], task, split_eval(task, "test").eval.tokens, cache),
        )
    )
    clf = LogisticRegression(max_iter=2000).fit(tr, task.train.labels)
    acc = float((clf.predict(te) == split_eval(task, "test").eval.labels).mean())
    return {"value": acc, "features_cpu_s": cpu, "train_rows": len(task.train)}


def ci(values) -> tuple[float, float, int]:
    """(mean, 95% t-interval half-width, n)."""
    from scipy import stats

    v = np.asarray([x for x in values if x is not None], dtype=float)
    if len(v) < 2:
        return (float(v.mean()) if len(v) else float("nan")), float("nan"), len(v)
    return float(v.mean()), float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))), len(v)


def fmt(m, h, digits=3) -> str:
    return f"{m:.{digits}f}" if np.isnan(h) else f"{m:.{digits}f} ± {h:.{digits}f}"


def paired(rows, method, ref, field="after_finetune"):
    by = {r["seed"]: r[field] for r in rows if r["method"] == ref}
    return ci([r[field] - by[r["seed"]] for r in rows if r["method"] == method and r["seed"] in by])


def lm_section(rows, domain) -> list[str]:
    big = next((r for r in rows if r["method"] == "big"), None)
    out = [f"### pycode:{domain} (bits/byte on held-out files, lower is better)", ""]
    if big:
        out.append(
            f"SmolLM2-135M itself: **{big['value']:.3f}** bits/byte ({big['eval_rows'] // 2} test windows); "
            f"its top-k logits over the {big['pool_rows']}-window pool: {big['teacher_topk_cpu_s']:.0f} CPU s "
            "(once per domain, used by every +distill row)."
        )
        out.append("")
    out += [
        "| method | seeds | after projection | after fine-tuning | minus prune+distill (paired; < 0 better) "
        "| projection CPU s (once) | fine-tune CPU s (mean) |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in dict.fromkeys([*LM_METHODS, *(r["method"] for r in rows if r["method"] != "big")]):
        rs = [r for r in rows if r["method"] == m]
        if not rs:
            continue
        p, f = ci([r["after_projection"] for r in rs]), ci([r["after_finetune"] for r in rs])
        d = paired(rows, m, "prune+distill") if m != "prune+distill" else (np.nan, np.nan, 0)
        c = ci([r["finetune_cpu_s"] for r in rs])
        diff = "-" if m == "prune+distill" else f"{d[0]:+.3f} ± {d[1]:.3f}"
        proj_cpu = rs[0]["projection_cpu_s"]
        out.append(f"| {m} | {len(rs)} | {fmt(*p[:2])} | {fmt(*f[:2])} | {diff} | {proj_cpu:.0f} | {c[0]:.0f} |")
    return out + [""]


def cls_section(rows) -> list[str]:
    big = next((r for r in rows if r["method"] == "big"), None)
    out = ["### pycode-cls (accuracy on held-out files, higher is better)", ""]
    if big:
        out += [
            f"MiniLM-L6 itself (logistic-regression probe on its mean-pooled features, {big['train_rows']} training "
            f"snippets): **{big['value']:.3f}**; features {big['features_cpu_s']:.0f} CPU s.",
            "",
        ]
    out += ["| transfer | seeds | test accuracy | vs none (paired) | fine-tune CPU s |", "|---|---|---|---|---|"]
    for m in CLS_TRANSFERS:
        rs = [r for r in rows if r["method"] == m]
        if rs:
            f, c = ci([r["after_finetune"] for r in rs]), ci([r["finetune_cpu_s"] for r in rs])
            d = "-" if m == "none" else "{:+.3f} ± {:.3f}".format(*paired(rows, m, "none")[:2])
            out.append(f"| {m} | {len(rs)} | {fmt(*f[:2])} | {d} | {c[0]:.0f} |")
    return out + [""]


SETTING_FLAGS = (
    "params seq_len pool_rows calibration train_rows eval_rows steps batch_size eval_every lr topk "
    "proj_train_steps fit_steps cls_steps cls_seq_len threads"
).split()


def command(a) -> str:
    """The command line that reproduces these settings (flags that differ from the defaults)."""
    d = parse_args([])
    flags = [f"--{k.replace('_', '-')} {getattr(a, k)}" for k in SETTING_FLAGS if getattr(a, k) != getattr(d, k)]
    return " ".join([".venv/bin/python bench/real_models.py", *flags])


def budgets(a) -> list[str]:
    tokens = a.steps * a.batch_size * a.seq_len
    return [
        f"Budgets (every method the same). LM: windows of {a.seq_len} SmolLM2 BPE tokens; per domain a training "
        f"pool of {a.pool_rows} windows (SmolLM2's top-{a.topk} logits computed once over it, for prune+distill), "
        f"prune calibrates on {a.calibration} of them; each seed draws {a.train_rows} windows "
        f"({a.train_rows * a.seq_len} tokens) and fine-tunes {a.steps} steps of batch {a.batch_size} ({tokens} "
        f"tokens), AdamW lr {a.lr}, early stopping on {a.eval_rows} val windows every {a.eval_every} steps (the "
        f"projected model itself is a candidate), bits/byte on {a.eval_rows} test windows (both evenly spread over "
        f"the domain's held-out files). Classification: {a.cls_seq_len}-token snippets, all training snippets, "
        f"{a.cls_steps} steps of batch 32, lr 3e-3. Seeds 0-{a.seeds - 1}; means with 95% t-intervals over seeds; "
        "CPU s are `time.process_time()` with "
        f"{a.threads} torch thread(s).",
    ]


CONTENDERS = ("projector+distill", "pn+distill", "projector", "pn")
CONTROLS = ("prune", "prune-heal")  # the other baselines the contender is also compared with


def aim(lm) -> list[str]:
    """Per domain: the projection method with the best mean val metric, its test metric after fine-tuning
    against prune+distill (paired over seeds)."""
    out = [
        "### Aim: a projection method beats prune+distill (paired 95% interval below zero)",
        "",
        "The contender per domain is chosen on the val windows; the difference is on the test windows.",
        "",
    ]
    hits = 0
    domains = list(dict.fromkeys(r["domain"] for r in lm))
    for d in domains:
        rows = [r for r in lm if r["domain"] == d]
        means = {m: ci([r["val"] for r in rows if r["method"] == m])[0] for m in CONTENDERS}  # chosen on val
        means = {m: v for m, v in means.items() if not np.isnan(v)}
        if not means or not any(r["method"] == "prune+distill" for r in rows):
            continue
        best = min(means, key=means.get)
        diff, half, n = paired(rows, best, "prune+distill")
        hit = bool(n >= 2 and diff + half < 0)
        hits += hit
        others = [
            "{} {:+.3f} ± {:.3f} (n={})".format(ref, *paired(rows, best, ref))
            for ref in CONTROLS
            if any(r["method"] == ref for r in rows)
        ]
        line = f"- pycode:{d}: best `{best}`, {diff:+.3f} ± {half:.3f} bits/byte (n={n}): {'hit' if hit else 'miss'}"
        out.append(line + (f"; the same against {', '.join(others)}" if others else ""))
    return out + ["", f"Hit on {hits} of {len(domains)} domains (the aim asks for at least 2 of 3).", ""]


def report(a, res: Results) -> str:
    lm = [r for r in res.rows if r.get("settings") == lm_settings(a)]
    cl = [r for r in res.rows if r.get("settings") == cls_settings(a)]
    projections = {(r["domain"], r["method"].split("+")[0]): r["projection_cpu_s"] for r in lm if r["seed"] is not None}
    cpu = sum(projections.values()) + sum(
        (r.get("finetune_cpu_s") or 0)
        + (r.get("eval_cpu_s") or 0)
        + (r.get("teacher_topk_cpu_s") or 0)
        + (r.get("features_cpu_s") or 0)
        for r in lm + cl
    )
    lines = [
        "# Pretrained big models -> small task models (bench/real_models.py)",
        "",
        f"Command: `{command(a)}` (settings: LM `{lm_settings(a)}`, classification `{cls_settings(a)}`); CPU time "
        f"of the recorded work {cpu / 60:.1f} min (loading the big models not counted). Results resume from "
        f"`{a.runs}/results.jsonl`.",
        "",
        *budgets(a),
        "",
    ]
    for d in dict.fromkeys(r["domain"] for r in lm):
        lines += lm_section([r for r in lm if r["domain"] == d], d)
    if lm:
        lines += aim(lm)
    if cl:
        lines += cls_section(cl)
    return "\n".join(lines)


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    res = Results(Path(a.runs, "results.jsonl"))

    def save() -> str:  # the report after every stage, keeping the hand-written notes below NOTES
        out = Path(a.report)
        notes = out.read_text().split(NOTES, 1)[1] if out.is_file() and NOTES in out.read_text() else "\n"
        text = report(a, res)
        out.write_text(text + "\n\n" + NOTES + notes.rstrip() + "\n")
        return text

    if not a.report_only:
        if a.part in ("cls", "all"):  # the cheap part first
            run_cls(a, res, save)
        if a.part in ("lm", "all"):
            run_lm(a, res, save)
    print(save())


if __name__ == "__main__":
    main()
