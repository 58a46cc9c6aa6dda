"""Project a Projected Network (or hard mixture) checkpoint into one small task model (methods.md section 1).

    python -c "from projdeploy.project.pn import project_pn; m, info = project_pn('runs/pn', 'digits:7'); print(info)"

1. assign the task's training documents to the saved clusters (same embedding + centroids);
2. choose the expert: ``most-frequent`` cluster (default) or ``lowest-loss`` on the task's training rows;
3. optionally (beyond the paper) tune only the per-layer coefficient vectors ``c[l]`` (h numbers per
   layer) for a few steps on task data, everything else frozen;
4. materialise the expert's MLP matrices in closed form -> an ordinary small ``CausalLM``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import CheckpointError, UnknownNameError

RULES = ("most-frequent", "lowest-loss")
SCORE_ROWS = 256  # rows of the task's training split used by the lowest-loss rule
MAX_UNITS = 256  # clustering units (~2 KB of text / one image) embedded to count clusters


def _task(task):
    if isinstance(task, str):
        from ..tasks import get_task

        return get_task(task)
    return task


def _rows(task, split):
    """Token rows for next-token losses (a cls row is a token sequence too: the loss runs within it)."""
    return torch.as_tensor(split.tokens)


def _nll(logits, toks):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), toks[:, 1:].reshape(-1))


def load_big(big_dir: str | Path):
    """(ProjectedLM, Clustering, tokenizer dict) of a ``pretrain --model pn|hard-moe`` checkpoint."""
    import json

    from ..models.projected import load_pn
    from ..tasks.clustering import Clustering

    big_dir = Path(big_dir)
    if not big_dir.is_dir():
        raise CheckpointError(f"big model directory {str(big_dir)!r} does not exist")
    tok_path = big_dir / "projdeploy_tokenizer.json"
    tok = json.loads(tok_path.read_text()) if tok_path.is_file() else None
    return load_pn(big_dir), Clustering.load(big_dir), tok


@torch.no_grad()
def expert_losses(pn, task, rows: int = SCORE_ROWS, batch_size: int = 64) -> np.ndarray:
    """Mean next-token loss of every expert on the first ``rows`` training rows of ``task``."""
    toks = _rows(task, task.train)[:rows]
    out = []
    for i in range(pn.config.num_experts):
        total, n = 0.0, 0
        for s in range(0, len(toks), batch_size):
            x = toks[s : s + batch_size]
            total += float(_nll(pn(x[:, :-1], i), x)) * len(x)
            n += len(x)
        out.append(total / max(n, 1))
    return np.asarray(out)


def cluster_counts(clustering, task, k: int, max_units: int | None = MAX_UNITS) -> np.ndarray:
    """Training rows per cluster; documents beyond ``max_units`` units are sampled evenly (one-shot stays fast)."""
    from ..tasks.clustering import clustering_units

    docs, row_unit = clustering_units(task, task.train)
    pick = np.arange(len(docs))
    if max_units and len(docs) > max_units:
        pick = np.unique(np.linspace(0, len(docs) - 1, max_units).round().astype(np.int64))
    labels = np.full(len(docs), -1, np.int64)
    labels[pick] = clustering.assign([docs[i] for i in pick])
    rows = labels[row_unit]
    return np.bincount(rows[rows >= 0], minlength=k)


def project_pn(
    big_dir,
    task,
    rule: str = "most-frequent",
    tune_coefficients_steps: int = 0,
    seed: int = 0,
    lr: float = 0.05,
    batch_size: int = 32,
    max_units: int | None = MAX_UNITS,
):
    """-> (small ``CausalLM`` in eval mode, info dict). ``task``: a Task or a task name.

    ``max_units``: at most this many clustering units are embedded to count clusters (evenly spaced over the
    training split; None = all).
    """
    if rule not in RULES:
        raise UnknownNameError("expert rule", rule, RULES)
    t0 = time.perf_counter()
    task = _task(task)
    pn, clustering, tok = load_big(big_dir)
    small = pn.config.small
    if tok is not None and tok != task.tokenizer.to_dict():
        raise CheckpointError(
            f"{big_dir}: the big model was pretrained with a different tokenizer "
            f"({tok.get('kind')}, vocab {small.vocab_size}) than task {task.name} "
            f"({task.tokenizer.kind}, vocab {task.tokenizer.vocab_size})"
        )
    expert, info = choose_expert(pn, clustering, task, rule, max_units)
    coefs = [c[0].detach() for c in pn.coefficients(torch.tensor([expert]))]
    if tune_coefficients_steps > 0:
        coefs, before, after = tune_coefficients(pn, task, coefs, tune_coefficients_steps, seed, lr, batch_size)
        info.update(tuned_steps=tune_coefficients_steps, tune_loss_before=before, tune_loss_after=after)
    model = pn.materialize(coefs=coefs)
    info["seconds"] = time.perf_counter() - t0
    info["small_config"] = small.to_hf_dict()
    return model, info


def choose_expert(pn, clustering, task, rule: str = "most-frequent", max_units: int | None = MAX_UNITS):
    """(expert, info): the task's most frequent cluster, or the expert with the lowest loss on its rows."""
    if rule not in RULES:
        raise UnknownNameError("expert rule", rule, RULES)
    counts = cluster_counts(clustering, task, pn.config.num_experts, max_units)
    info = {
        "method": f"pn/{pn.config.kind}",
        "rule": rule,
        "cluster_counts": counts.tolist(),
        "num_experts": pn.config.num_experts,
        "basis_size": pn.config.basis_size,
    }
    if rule == "most-frequent":
        expert = int(counts.argmax())
    else:
        losses = expert_losses(pn, task)
        expert = int(losses.argmin())
        info["expert_losses"] = losses.tolist()
    info["expert"] = expert
    info["cluster_share"] = float(counts[expert] / max(counts.sum(), 1))
    return expert, info


def tune_coefficients(pn, task, coefs, steps: int, seed: int = 0, lr: float = 0.05, batch_size: int = 32):
    """A few Adam steps on only the per-layer coefficient vectors -> (coefs, first loss, last loss)."""
    for p in pn.parameters():
        p.requires_grad_(False)
    params = [torch.nn.Parameter(c.clone()) for c in coefs]
    opt = torch.optim.Adam(params, lr=lr)
    toks = _rows(task, task.train)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    pn.train()
    for _ in range(steps):
        idx = torch.randperm(len(toks), generator=gen)[:batch_size]
        x = toks[idx]
        loss = _nll(pn(x[:, :-1], coefs=params), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    pn.eval()
    return [p.detach() for p in params], losses[0], losses[-1]


def save_projected(model, task, out: str | Path, info: dict) -> Path:
    """Write the projected small model as an ordinary (transformers-loadable) checkpoint, atomically."""
    from ..fsutil import atomic_dir
    from ..models.checkpoint import write_model_files
    from ..tasks.tokenizers import save_tokenizer

    task = _task(task)
    meta = {k: v for k, v in info.items() if k != "small_config"}
    with atomic_dir(out) as tmp:
        write_model_files(
            tmp, model, {"task": task.name, "task_kind": task.kind, "metric": task.metric, "projection": meta}
        )
        save_tokenizer(task.tokenizer, tmp)
    return Path(out)
