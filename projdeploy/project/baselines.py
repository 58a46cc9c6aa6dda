"""Baselines for projection: the universal conditional model and response-based distillation.

    python -c "from projdeploy.project.baselines import train_universal; train_universal('digits', 'tiny', 'runs/univ')"

Universal conditional model (methods.md section 2, our reading): one small
model of the projected size trained on all generic tasks at the same FLOP
budget as the dense small model, with the task ID as an input token: the BOS
token at position 0 is replaced by a task token (10% of rows keep BOS, so the
model also works unconditioned). Specialising it for a task writes that task
token's embedding into the BOS row and drops the task tokens from the head (a
renormalisation over the real vocabulary) -> an ordinary small checkpoint.
A task not seen in training fits only a new task-token embedding, exactly as
the projector fits only a new task embedding.

Response distillation: fine-tune a student on the task with
``CE + alpha * T^2 * KL(teacher || student)`` on next-token distributions, the
teacher's logits computed once over the training rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import CheckpointError, ConfigError

UNIVERSAL = "universal"
UNCOND_FRACTION = 0.1


def _with_task_tokens(tokens: np.ndarray, tids: np.ndarray, vocab: int, bos: int, seed: int) -> np.ndarray:
    out = tokens.copy()
    keep_bos = np.random.default_rng([seed, 11]).random(len(tokens)) < UNCOND_FRACTION
    out[:, 0] = np.where(keep_bos, bos, vocab + tids)
    return out


def train_universal(
    data: str = "digits",
    preset: str = "tiny",
    out: str | Path = "runs/universal",
    steps: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Train the universal conditional model at the preset's small-model FLOP budget."""
    from ..fsutil import atomic_dir
    from ..models import build_model, config_for
    from ..models.checkpoint import write_model_files
    from ..tasks import get_task
    from ..tasks.tokenizers import save_tokenizer
    from ..train.hooks import ProgressBar
    from ..train.loop import Throughput, TrainConfig, train_loop
    from ..train.losses import lm_loss
    from ..train.presets import get_preset
    from .projector import generic_tasks

    pre = get_preset(preset)
    tasks, arrays = generic_tasks(data)
    tok = get_task(data).tokenizer
    if tok.bos_id is None or not np.all(arrays["tokens"][:, 0] == tok.bos_id):
        raise ConfigError(
            "universal model",
            "data",
            f"{data!r} rows do not start with BOS; the task token "
            "replaces BOS, so only BOS-prefixed corpora (digits) are supported",
        )
    V, T = tok.vocab_size, arrays["tokens"].shape[1] - 1
    toks = _with_task_tokens(arrays["tokens"], arrays["task"], V, tok.bos_id, seed)
    cfg = config_for(
        pre.small_size,
        V + len(tasks),
        max_position_embeddings=T,
        bos_token_id=tok.bos_id,
        eos_token_id=tok.eos_id,
        pad_token_id=tok.pad_id,
    )
    model = build_model(cfg, seed=seed)
    steps = steps or pre.small_steps
    tcfg = TrainConfig(
        steps=steps,
        batch_size=pre.batch_size,
        lr=pre.lr,
        seed=seed,
        eval_every=0,
        warmup_steps=min(pre.warmup_steps, max(1, steps // 10)),
    )
    fpt = cfg.flops_per_token(T)
    hooks = [ProgressBar(fpt)] if progress else []
    res = train_loop(model, {"tokens": toks}, lm_loss, tcfg, hooks=hooks, throughput=Throughput(T, fpt))
    with atomic_dir(out) as tmp:
        write_model_files(
            tmp,
            model,
            {
                "kind": UNIVERSAL,
                "data": data,
                "tasks": tasks,
                "real_vocab": V,
                "preset": pre.name,
                "steps": steps,
                "flops": res.flops,
            },
        )
        (tmp / "tasks.json").write_text(json.dumps(tasks, indent=1))
        save_tokenizer(tok, tmp)
    return {"out": str(out), "steps": steps, "flops": res.flops, "seconds": res.seconds}


def specialise_universal(univ_dir: str | Path, task, fit_steps: int = 100, seed: int = 0, lr: float = 0.05):
    """(small CausalLM over the task vocabulary, info) from a universal conditional model."""
    from ..models import build_model
    from ..models.checkpoint import load_model, read_meta
    from .projector import lm_rows

    meta = read_meta(univ_dir)
    if meta.get("kind") != UNIVERSAL:
        raise CheckpointError(f"{univ_dir}: kind {meta.get('kind')!r} is not a universal conditional model")
    model = load_model(univ_dir).requires_grad_(False)
    V, tasks, bos = meta["real_vocab"], meta["tasks"], model.config.bos_token_id
    emb = model.model.embed_tokens.weight
    if task.name in tasks:
        row, info = emb[V + tasks.index(task.name)].clone(), {"mode": "task-token"}
    else:
        row = emb[V:].mean(0).clone().requires_grad_(True)
        opt = torch.optim.Adam([row], lr=lr)
        toks, rng = lm_rows(task), np.random.default_rng(seed)
        base = emb.detach().clone()
        for _ in range(fit_steps):
            idx = rng.choice(len(toks), size=min(32, len(toks)), replace=False)
            rows = torch.as_tensor(toks[idx])
            x = F.embedding(rows[:, :-1], base)
            x = torch.cat([row.expand(len(rows), 1, -1), x[:, 1:]], dim=1)
            logits = model.lm_head(_backbone_from_embeddings(model.model, x))
            loss = F.cross_entropy(logits[..., :V].reshape(-1, V), rows[:, 1:].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
        row, info = row.detach(), {"mode": "fitted-task-token", "fit_steps": fit_steps}
    small = build_model(model.config.replace(vocab_size=V), seed=0)
    sd = {k: v for k, v in model.state_dict().items()}
    sd["model.embed_tokens.weight"] = sd["model.embed_tokens.weight"][:V].clone()
    sd["model.embed_tokens.weight"][bos] = row
    sd["lm_head.weight"] = sd["lm_head.weight"][:V]
    small.load_state_dict(sd)
    return small.eval(), info


def _backbone_from_embeddings(backbone, x: torch.Tensor) -> torch.Tensor:
    cos, sin = backbone.rope(x.shape[1], x.device)
    for layer in backbone.layers:
        x = layer(x, cos, sin)
    return backbone.norm(x)


def response_distill(student, teacher_dir: str | Path, task, cfg, alpha: float = 0.5, temperature: float = 2.0, **kw):
    """Fine-tune ``student`` on ``task`` with next-token CE plus KL to the big teacher's responses."""
    from ..models.checkpoint import load_model
    from ..project.api import load_dense_big
    from ..train.finetune import finetune

    if task.kind != "lm":
        raise ConfigError(
            "response distillation", "task", "needs a language/image modelling task (the big teacher is a causal LM)"
        )
    teacher = load_dense_big(teacher_dir) if Path(teacher_dir).is_dir() else load_model(teacher_dir)
    if teacher.config.vocab_size != task.tokenizer.vocab_size:
        raise CheckpointError(f"teacher {teacher_dir}: vocab does not match task {task.name!r}")
    with torch.no_grad():
        x = torch.as_tensor(task.train.tokens[:, :-1])
        t_logits = torch.cat([teacher(x[i : i + 128]) for i in range(0, len(x), 128)]).numpy()
    T = temperature

    def extra(logits, batch):
        t = batch["teacher_logits"]
        kl = (
            F.kl_div(F.log_softmax(logits / T, -1), F.log_softmax(t / T, -1), log_target=True, reduction="batchmean")
            / logits.shape[1]
        )
        return alpha * T * T * kl

    return finetune(student, task, "none", cfg=cfg, extra_loss=extra, extra_data={"teacher_logits": t_logits}, **kw)
