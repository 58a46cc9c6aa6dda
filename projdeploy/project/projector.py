"""Projectable Models: a learned, task-conditioned operator that generates small models from a big one.

    projdeploy pretrain --model projector --data digits --preset tiny --out runs/projector
    projdeploy project --big runs/projector --task digits:7 --method projector --out runs/digits7-proj

Our interpretation of arXiv 2506.05641 (methods.md section 2; only the abstract
and model figure are public). Every weight matrix ``W`` (out x in) of the big
model M1 becomes ``P_out(t) @ W @ P_in(t)^T`` with maps generated from a
learned task embedding ``e_t``:

    P(t) = Base + U @ diag(G @ e_t) @ V        (low-rank task part plus a shared base)

- ``P_h`` (d_s x d): the residual stream, shared by all layers (embeddings,
  lm_head, every matrix reading or writing the stream); norm gains are
  projected with it (``g_s = (P_h**2 @ g) / rowsum(P_h**2)``).
- per small layer: ``P_v`` (hd_s x hd) on every head's value channels (v_proj rows,
  o_proj columns) and ``P_ff`` (p_s x p) on the MLP units (gate/up rows, down columns).
- query/key channels: the RoPE-compatible channel selection of truncation
  (a general mix would break the rotary pairs), still fed through ``P_h``;
  heads: truncation's head selection when the big model has more heads
  (first key/value heads, first query heads of each group).
- depth: 1:1 when depths match, else a learned softmax mix of each small
  layer's segment of big layers (initialised to favour the segment).
- ``Base`` starts as the truncation slice and ``V`` at zero, so at
  initialisation the operator *is* truncation (tested).

Training (``pretrain_projector``): ``L_orig(M1) + lambda * mean_t L_task(P_s(M1, t))``
with gradients into the operator and M1, tasks = the generic data split by
class (digits: ``digits:0`` ... ``digits:9``) or package (pycode). One-shot
generation for a task seen in training; a new task fits only its embedding.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, DataError, UnknownNameError
from ..models import ModelConfig, build_model, config_for
from .truncate import head_maps, layer_segments, rope_channels, small_config_for

KIND = "projector"
TASKS_FILE = "tasks.json"
EMB_FILE = "task_embeddings.safetensors"


@dataclass(frozen=True)
class ProjectorConfig:
    small_size: str = "tiny"
    emb_dim: int = 16
    rank: int = 8
    lam: float = 1.0
    tasks_per_step: int = 2
    version: int = 1

    def __post_init__(self):
        for f in ("emb_dim", "rank", "tasks_per_step"):
            if getattr(self, f) <= 0:
                raise ConfigError("projector config", f, "must be a positive integer")
        if self.lam < 0:
            raise ConfigError("projector config", "lam", "must be >= 0")

    def to_dict(self) -> dict:
        return {"type": "ProjectorConfig", **dataclasses.asdict(self)}


class MapGen(nn.Module):
    """``P(e) = Base + U diag(G e) V``; Base starts as the (a x b) truncation slice (or ``base``), V at zero."""

    def __init__(self, a: int, b: int, rank: int, emb_dim: int, base: torch.Tensor | None = None):
        super().__init__()
        self.base = nn.Parameter(torch.eye(a, b) if base is None else base.clone())
        self.U = nn.Parameter(torch.randn(a, rank) / rank**0.5)
        self.V = nn.Parameter(torch.zeros(rank, b))
        self.G = nn.Parameter(torch.randn(rank, emb_dim) / emb_dim**0.5)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return self.base + (self.U * (self.G @ e)) @ self.V


def _rows_of(index: torch.Tensor, n: int) -> torch.Tensor:
    """The (len(index) x n) 0/1 matrix selecting ``index``: ``P @ x == x[index]`` exactly."""
    return torch.nn.functional.one_hot(index.long(), n).float()


class Operator(nn.Module):
    """Generates a small model's state dict from the big model's weights and a task embedding.

    ``init``: a ``prune`` :class:`~projdeploy.project.prune.Selection`; the maps then start as that
    selection (channels, per-layer neurons, per-layer heads, a fixed set of layers), so before training
    the operator generates exactly the pruned model. Without it they start as truncation.
    """

    def __init__(self, big_cfg: ModelConfig, small_cfg: ModelConfig, pcfg: ProjectorConfig, n_tasks: int, init=None):
        super().__init__()
        if big_cfg.family.qkv_bias or big_cfg.family.qk_norm:
            raise CheckpointError(
                f"the projector generates Llama attention without q/k/v biases or q/k norms; a {big_cfg.model_type} "
                "big model is projected with prune, truncate or pn"
            )
        self.big_cfg, self.small_cfg, self.pcfg = big_cfg, small_cfg, pcfg
        r, m = pcfg.rank, pcfg.emb_dim
        L, Ls = big_cfg.num_hidden_layers, small_cfg.num_hidden_layers
        ds, d, ps, p = (
            small_cfg.hidden_size,
            big_cfg.hidden_size,
            small_cfg.intermediate_size,
            big_cfg.intermediate_size,
        )
        self.task_emb = nn.Parameter(torch.randn(n_tasks, m))
        self.P_h = MapGen(ds, d, r, m, None if init is None else _rows_of(init.channels, d))
        self.P_v = nn.ModuleList(
            MapGen(small_cfg.resolved_head_dim, big_cfg.resolved_head_dim, r, m) for _ in range(Ls)
        )
        self.P_ff = nn.ModuleList(
            MapGen(ps, p, r, m, None if init is None else _rows_of(init.neurons[j], p)) for j in range(Ls)
        )
        self.depth_logits = None
        self.register_buffer("layer_index", None if init is None else init.layers.clone(), persistent=False)
        if init is None and L != Ls:
            logits = torch.full((Ls, L), -4.0)
            for j, seg in enumerate(layer_segments(L, Ls)):
                logits[j, seg] = 0.0
            self.depth_logits = nn.Parameter(logits)
        self.register_buffer(
            "qk", rope_channels(big_cfg.resolved_head_dim, small_cfg.resolved_head_dim), persistent=False
        )
        qh, kvh = head_maps(big_cfg, small_cfg)
        qh = torch.stack(init.query_heads) if init is not None else qh.expand(Ls, -1)
        kvh = torch.stack(init.kv_heads) if init is not None else kvh.expand(Ls, -1)
        self.register_buffer("qh", qh.clone(), persistent=False)  # (Ls, H_s): big query heads per small layer
        self.register_buffer("kvh", kvh.clone(), persistent=False)  # (Ls, KV_s)
        self._shell = [build_model(small_cfg, seed=0)]  # a list: not a submodule, holds no trained state

    def depth_mix(self) -> torch.Tensor:
        if self.depth_logits is None:
            return torch.eye(self.small_cfg.num_hidden_layers)
        return torch.softmax(self.depth_logits, dim=-1)

    def generate(self, big: nn.Module, e: torch.Tensor) -> dict[str, torch.Tensor]:
        """Small-model state dict (HF names) for task embedding ``e``; differentiable in big and operator."""
        bc, sc = self.big_cfg, self.small_cfg
        H, KV, HD = bc.num_attention_heads, bc.num_key_value_heads, bc.resolved_head_dim
        ph = self.P_h(e)
        w2 = ph.pow(2)
        gain = lambda g: (w2 @ g) / w2.sum(1).clamp_min(1e-6)
        bb = big.model
        sd = {"model.embed_tokens.weight": bb.embed_tokens.weight @ ph.T, "model.norm.weight": gain(bb.norm.weight)}
        if not sc.tie_word_embeddings:
            sd["lm_head.weight"] = big.lm_head.weight @ ph.T
        mix = self._depth(bb.layers, ph)
        ln1, ln2 = mix(lambda b: b.input_layernorm.weight), mix(lambda b: b.post_attention_layernorm.weight)
        q, k = mix(lambda b: b.self_attn.q_proj.weight), mix(lambda b: b.self_attn.k_proj.weight)
        v, o = mix(lambda b: b.self_attn.v_proj.weight), mix(lambda b: b.self_attn.o_proj.weight)
        gt, up, dn = (
            mix(lambda b: b.mlp.gate_proj.weight),
            mix(lambda b: b.mlp.up_proj.weight),
            mix(lambda b: b.mlp.down_proj.weight),
        )
        for j in range(sc.num_hidden_layers):
            pv, pf, pre = self.P_v[j](e), self.P_ff[j](e), f"model.layers.{j}."
            sd[pre + "input_layernorm.weight"] = gain(ln1[j])
            sd[pre + "post_attention_layernorm.weight"] = gain(ln2[j])
            sd[pre + "self_attn.q_proj.weight"] = (q[j].view(H, HD, -1)[self.qh[j]][:, self.qk] @ ph.T).reshape(
                -1, ph.shape[0]
            )
            sd[pre + "self_attn.k_proj.weight"] = (k[j].view(KV, HD, -1)[self.kvh[j]][:, self.qk] @ ph.T).reshape(
                -1, ph.shape[0]
            )
            sd[pre + "self_attn.v_proj.weight"] = torch.einsum(
                "ab,kbc,dc->kad", pv, v[j].view(KV, HD, -1)[self.kvh[j]], ph
            ).reshape(-1, ph.shape[0])
            sd[pre + "self_attn.o_proj.weight"] = torch.einsum(
                "xd,dhb,yb->xhy", ph, o[j].view(-1, H, HD)[:, self.qh[j]], pv
            ).reshape(sc.hidden_size, -1)
            sd[pre + "mlp.gate_proj.weight"] = pf @ gt[j] @ ph.T
            sd[pre + "mlp.up_proj.weight"] = pf @ up[j] @ ph.T
            sd[pre + "mlp.down_proj.weight"] = ph @ dn[j] @ pf.T
        return sd

    def _depth(self, layers, like: torch.Tensor):
        """``mix(f)``: the per-small-layer weights ``f(block)``: the selected big layers, or the learned mix."""
        if self.layer_index is not None:
            return lambda f: torch.stack([f(layers[i]) for i in self.layer_index.tolist()])
        A = self.depth_mix().to(like)
        return lambda f: torch.einsum("jl,l...->j...", A, torch.stack([f(layer) for layer in layers]))

    def small_forward(self, state: dict[str, torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call

        return functional_call(self._shell[0], state, (ids,))

    @torch.no_grad()
    def materialise(self, big: nn.Module, e: torch.Tensor) -> nn.Module:
        """An ordinary small CausalLM holding the generated weights (the operator is dropped)."""
        small = build_model(self.small_cfg, seed=0)
        sd = {k: v.detach().clone() for k, v in self.generate(big, e).items()}
        if self.small_cfg.tie_word_embeddings:
            sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
        small.load_state_dict(sd)
        return small.eval()


class ProjectorModel(nn.Module):
    """What pretraining trains: the big source model M1 and the projection operator, jointly."""

    def __init__(self, big_cfg: ModelConfig, pcfg: ProjectorConfig, tasks: list[str], seed: int = 0):
        super().__init__()
        self.big = build_model(big_cfg, seed=seed)
        small_cfg = small_config_for(big_cfg, pcfg.small_size)
        torch.manual_seed(seed + 1)
        self.op = Operator(big_cfg, small_cfg, pcfg, len(tasks))
        self.tasks = list(tasks)

    @classmethod
    def from_parts(cls, big: nn.Module, op: Operator, tasks: list[str]) -> ProjectorModel:
        """M1 given (a pretrained model) with its operator."""
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self.big, self.op, self.tasks = big, op, list(tasks)
        return self


def projector_loss(lam: float, tasks_per_step: int = 2):
    """``L_orig(M1) + lam * mean_t L_task(P_s(M1, t))``.

    The mean over tasks is estimated per step from the first ``tasks_per_step`` distinct tasks of
    the (randomly ordered) batch, on their rows: every generation costs weight-space FLOPs, so
    sampling a few tasks per step buys more steps at the same budget.
    """
    import torch.nn.functional as F

    def ce(logits, targets):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def loss_fn(model, batch):
        toks, tids = batch["tokens"], batch["task"]
        x, y = toks[:, :-1], toks[:, 1:]
        loss = ce(model.big(x), y)
        if lam > 0:
            per_task = []
            seen = list(dict.fromkeys(tids.tolist()))[:tasks_per_step]
            for t in seen:
                rows = tids == t
                state = model.op.generate(model.big, model.op.task_emb[t])
                per_task.append(ce(model.op.small_forward(state, x[rows]), y[rows]))
            loss = loss + lam * torch.stack(per_task).mean()
        return loss

    return loss_fn


# --- generic data split into tasks --------------------------------------------------------
DATA = ("digits", "pycode")


def generic_tasks(data: str, max_rows_per_task: int = 1500, min_rows: int = 16) -> tuple[list[str], dict]:
    """(task names, {"tokens", "task"}) of the generic corpus ``data`` split by class / package."""
    from ..tasks import get_task

    if data == "digits":
        names = [f"digits:{c}" for c in range(10)]
    elif data == "pycode":
        from ..tasks.pycode import domains

        names = [f"pycode:{d}" for d in domains()]
    else:
        raise UnknownNameError("projector pretraining data", data, DATA)
    kept, toks, tids = [], [], []
    for name in names:
        t = get_task(name).train.tokens[:max_rows_per_task]
        if len(t) < min_rows:
            continue
        toks.append(t)
        tids.append(np.full(len(t), len(kept), np.int64))
        kept.append(name)
    return kept, {"tokens": np.concatenate(toks), "task": np.concatenate(tids)}


def generation_flops(op: Operator) -> int:
    """Forward FLOPs of one ``generate`` call (the weight-space matrix products), for honest budgets."""
    b, s = op.big_cfg, op.small_cfg
    d, ds, p, ps = b.hidden_size, s.hidden_size, b.intermediate_size, s.intermediate_size
    H, KV, hd = s.num_attention_heads, s.num_key_value_heads, s.resolved_head_dim  # the generated heads
    per_layer = (
        (H + KV) * hd * d * ds
        + 2 * KV * hd * b.resolved_head_dim * d
        + H * hd * d * ds
        + 3 * (ps * p * d + ps * d * ds)
    )
    return 2 * (s.num_hidden_layers * per_layer + 2 * b.vocab_size * d * ds)


def _big_config(pre, tok, T: int):
    """M1: the preset's dense big shape over the task's tokenizer and sequence length."""
    return config_for(
        pre.small_size,
        tok.vocab_size,
        **pre.big,
        max_position_embeddings=T,
        bos_token_id=tok.bos_id,
        eos_token_id=tok.eos_id,
        pad_token_id=tok.pad_id,
    )


def pretrain_projector(
    data: str = "digits",
    preset: str = "tiny",
    out: str | Path = "runs/projector",
    resume: bool = False,
    steps: int | None = None,
    seed: int = 0,
    progress: bool = True,
    lam: float = 1.0,
    tasks_per_step: int = 2,
    eval_every: int = 0,
    ckpt_every: int = 100,
    rank: int = 8,
):
    """Train M1 and the operator jointly; write a kind="projector" checkpoint to ``out``; return a summary dict.

    ``preset`` is a pretraining preset (``projdeploy.train.presets``): the big model is its dense
    "big" shape, the generated model its small size. ``steps=None`` spends the preset's FLOP budget
    (what the small dense model spends in ``small_steps`` steps), counting M1's forward, the
    generated models' forward and the weight generation itself.
    """
    from ..tasks import get_task
    from ..train.hooks import Checkpoints, ProgressBar
    from ..train.loop import Throughput, TrainConfig, train_loop
    from ..train.presets import get_preset

    pre = get_preset(preset)
    tasks, arrays = generic_tasks(data)
    tok = get_task(data).tokenizer
    T = arrays["tokens"].shape[1] - 1
    big_cfg = _big_config(pre, tok, T)
    pcfg = ProjectorConfig(small_size=pre.small_size, lam=lam, tasks_per_step=tasks_per_step, rank=rank)
    model = ProjectorModel(big_cfg, pcfg, tasks, seed=seed)
    small_cfg = model.op.small_cfg
    rows = pre.batch_size * T
    k = min(tasks_per_step, len(tasks))
    fpt = (
        big_cfg.flops_per_token(T)
        + small_cfg.flops_per_token(T) * k / len(tasks)
        + generation_flops(model.op) * k / rows
    )
    if steps is None:
        steps = max(1, int(pre.small_steps * small_cfg.flops_per_token(T) / fpt))
    cfg = TrainConfig(
        steps=steps,
        batch_size=pre.batch_size,
        lr=pre.lr,
        seed=seed,
        eval_every=eval_every,
        ckpt_every=ckpt_every,
        warmup_steps=min(pre.warmup_steps, max(1, steps // 10)),
    )

    meta = {
        "kind": KIND,
        "data": data,
        "preset": pre.to_dict(),
        "projector": pcfg.to_dict(),
        "small_config": small_cfg.to_hf_dict(),
        "tasks": tasks,
        "flops_per_token": fpt,
        "seq_len": T,
        "steps": steps,
    }
    save = _projector_saver(model, big_cfg, tasks, meta, tok)
    identity = {"model": big_cfg.to_hf_dict(), "projector": pcfg.to_dict(), "data": data, "tasks": tasks}
    hooks = [Checkpoints(out, save, identity=identity, resume=resume), *([ProgressBar(fpt)] if progress else [])]
    result = train_loop(
        model, arrays, projector_loss(lam, tasks_per_step), cfg, hooks=hooks, throughput=Throughput(T, fpt)
    )
    return {
        "out": str(out),
        "model": "projector",
        "data": data,
        "tasks": tasks,
        "steps": steps,
        "flops": result.flops,
        "seconds": result.seconds,
        "final_loss": result.losses[-1],
        "tokens_per_s": result.tokens / max(result.seconds, 1e-9),
    }


def _projector_saver(model: ProjectorModel, big_cfg, tasks: list[str], meta: dict, tok):
    """``save(directory)``: a kind="projector" checkpoint (M1 + operator weights, task embeddings, tasks, meta)."""
    from ..models.checkpoint import WEIGHTS
    from ..tasks.tokenizers import save_tokenizer

    def save(directory: Path):
        from safetensors.torch import save_file

        big_cfg.save(directory)
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(directory / WEIGHTS))
        save_file({"task_emb": model.op.task_emb.detach().contiguous()}, str(directory / EMB_FILE))
        (directory / TASKS_FILE).write_text(json.dumps(tasks, indent=1))
        (directory / "projdeploy.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        save_tokenizer(tok, directory)

    return save


def load_projector(directory: str | Path) -> ProjectorModel:
    """Load a kind="projector" checkpoint (eval mode, no gradients needed)."""
    from safetensors.torch import load_file

    from ..models.checkpoint import WEIGHTS, read_meta

    directory = Path(directory)
    meta = read_meta(directory)
    if meta.get("kind") != KIND:
        raise CheckpointError(
            f"{directory}: checkpoint kind {meta.get('kind', 'unknown')!r} is not a projector "
            f"(expected kind {KIND!r}; train one with `projdeploy pretrain --model projector`)"
        )
    big_cfg = ModelConfig.load(directory)
    p = {k: v for k, v in meta["projector"].items() if k != "type"}
    model = ProjectorModel(big_cfg, ProjectorConfig(**p), meta["tasks"])
    model.load_state_dict(load_file(str(directory / WEIGHTS)))
    return model.eval().requires_grad_(False)


def fit_task_embedding(
    model: ProjectorModel, tokens: np.ndarray, steps: int = 100, lr: float = 0.05, batch_size: int = 32, seed: int = 0
) -> torch.Tensor:
    """A new task's embedding: start at the mean of the trained ones, fit it alone on the task's LM loss."""
    import torch.nn.functional as F

    e = model.op.task_emb.detach().mean(0).clone().requires_grad_(True)
    opt = torch.optim.Adam([e], lr=lr)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        idx = rng.choice(len(tokens), size=min(batch_size, len(tokens)), replace=False)
        rows = torch.as_tensor(tokens[idx])
        logits = model.op.small_forward(model.op.generate(model.big, e), rows[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), rows[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return e.detach()


def lm_rows(task) -> np.ndarray:
    """The task's training rows as LM rows (classification images get the BOS token prepended)."""
    toks = task.train.tokens
    if task.kind == "cls":
        bos = task.tokenizer.bos_id
        if bos is None:
            return toks
        toks = np.concatenate([np.full((len(toks), 1), bos, toks.dtype), toks], axis=1)
    return toks


def project_projector(big_dir: str | Path, task, fit_steps: int = 100, seed: int = 0):
    """(small CausalLM, info): one-shot for a trained task, else fit only the task embedding first."""
    model = load_projector(big_dir)
    if task.name in model.tasks:
        e = model.op.task_emb[model.tasks.index(task.name)]
        info = {"mode": "one-shot", "task_index": model.tasks.index(task.name)}
    else:
        if len(task.train) == 0:
            raise DataError(f"task {task.name!r} has no training rows to fit a task embedding on")
        with torch.enable_grad():
            e = fit_task_embedding(model, lm_rows(task), steps=fit_steps, seed=seed)
        info = {"mode": "fitted-embedding", "fit_steps": fit_steps}
    return model.op.materialise(model.big, e), info
