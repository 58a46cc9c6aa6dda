"""Pretrain the server-side models on generic data at a FLOP budget: PN, hard mixture, dense big, SLM.

    projdeploy pretrain --model pn --preset tiny --data digits --out runs/pn-digits
    torchrun --nproc_per_node 2 -m projdeploy.cli pretrain --model dense --preset tiny --data pycode --out runs/big
    torchrun --nproc_per_node 2 -m projdeploy.cli pretrain --strategy fsdp --model dense --data pycode --out runs/big

``pn`` / ``hard-moe``: documents are clustered (k-means, k = experts) and every
example is trained through the expert of its cluster with the plain
next-token loss; centroids + embedding settings are saved with the checkpoint.
``dense``: the wider big source model; ``slm``: the dense small model. All kinds
of one preset spend the same pretraining FLOPs (steps = budget / FLOPs per step).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError, UnknownNameError
from .hooks import Checkpoints, Evaluate, ProgressBar
from .loop import Throughput, TrainConfig, train_loop
from .presets import PretrainPreset, get_preset

MODELS = ("pn", "hard-moe", "dense", "slm", "projector")


def model_configs(task, preset: PretrainPreset) -> dict:
    """The small (shipped) and big dense ModelConfigs of ``preset`` for ``task``'s tokenizer."""
    from .small import model_config_for_task

    return {
        "slm": model_config_for_task(task, preset.small_size),
        "dense": model_config_for_task(task, preset.small_size, **preset.big),
    }


def build(kind: str, task, preset: PretrainPreset, seed: int):
    """(model, config, forward FLOPs per token including amortised PN weight generation)."""
    from ..models import build_model
    from ..models.projected import PNConfig, build_pn

    cfgs, T = model_configs(task, preset), task.seq_len
    if kind in ("slm", "dense"):
        cfg = cfgs[kind]
        return build_model(cfg, seed), cfg, float(cfg.flops_per_token(T))
    small = cfgs["slm"]
    k = preset.num_experts
    cfg = PNConfig.hard_moe(small, k) if kind == "hard-moe" else PNConfig(small, k, preset.basis_size, preset.code_size)
    gen = cfg.generation_flops(min(k, preset.batch_size)) / (preset.batch_size * T)
    return build_pn(cfg, seed), cfg, float(small.flops_per_token(T) + gen)


def flop_budget(task, preset: PretrainPreset) -> float:
    """Training FLOPs (forward + backward = 3x forward) the dense SLM spends in ``preset.small_steps``."""
    slm = model_configs(task, preset)["slm"]
    return 3.0 * slm.flops_per_token(task.seq_len) * preset.batch_size * task.seq_len * preset.small_steps


def _pretrain_projector(**kw) -> dict:
    try:
        from ..project.projector import pretrain_projector
    except ImportError as e:
        raise ConfigError("pretrain", "model", f"'projector' is not available in this build ({e})") from None
    return pretrain_projector(**kw)


def _identity(model: str, task, p, cfg, init) -> dict:
    """What a resumed run must match: model kind, data, preset, model config and init checkpoint."""
    return {
        "kind": model,
        "data": task.name,
        "preset": p.to_dict(),
        "model": cfg.to_dict() if hasattr(cfg, "num_experts") else cfg.to_hf_dict(),
        "init": str(init) if init else None,
    }


def pretrain(
    model: str,
    data: str,
    preset: str = "tiny",
    out: str | Path = "runs/pretrain",
    *,
    resume: bool = False,
    steps: int | None = None,
    seed: int = 0,
    progress: bool = True,
    embedding: str = "auto",
    strategy: str = "ddp",
    ckpt_every: int | None = None,
    flops: float | None = None,
    lr: float | None = None,
    eval_every: int | None = None,
    init: str | Path | None = None,
) -> dict:
    """Pretrain one model kind; returns a summary dict (also written to the checkpoint's projdeploy.json)."""
    if model not in MODELS:
        raise UnknownNameError("pretrain model", model, MODELS)
    if model == "projector":
        return _pretrain_projector(
            data=data, preset=preset, out=out, resume=resume, steps=steps, seed=seed, progress=progress
        )
    from ..tasks import get_task
    from .distributed import init_distributed, measure_peak_flops, wrap_model

    rank, world, device = init_distributed()
    p = get_preset(preset)
    task = get_task(data)
    if task.kind != "lm":
        raise DataError(f"pretraining needs a language/image modelling task (kind lm); {task.name} is {task.kind}")
    out = Path(out)
    net, cfg, fpt = build(model, task, p, seed)
    if init is not None:
        net, cfg = _load_init(net, cfg, Path(init))
    T, B = task.seq_len, p.batch_size
    budget = float(flops) if flops else flop_budget(task, p)
    n_steps = steps or max(1, int(budget // (3.0 * fpt * B * T)))
    tcfg = _train_config(p, n_steps, seed, lr, eval_every, ckpt_every)
    train_data = {"tokens": task.train.tokens}
    ev_rows = task.eval.subset(np.arange(min(len(task.eval), p.eval_rows)))
    identity = _identity(model, task, p, cfg, init)
    clustering, experts, loss_fn = _routing(model, task, p, embedding, seed, out if resume else None, ev_rows)
    ev_expert = experts and experts[1]
    if clustering is not None:
        train_data["expert"] = experts[0]
        identity["embedding"] = dataclasses.asdict(clustering.spec)
    net.to(device)
    ddp = wrap_model(net, strategy, device)

    def eval_fn():
        return generic_eval(net, task, ev_rows, ev_expert)

    meta = {
        "kind": model,
        "preset": p.name,
        "data": task.name,
        "budget_flops": budget,
        "steps": n_steps,
        "seed": seed,
        "world_size": world,
        "flops_per_token": fpt,
    }

    save = _saver(net, cfg, clustering, meta, task)
    peak = measure_peak_flops() * world if progress and rank == 0 else 0.0
    carried = init if init and Path(init, "optimizer.safetensors").is_file() else None
    hooks = [
        Evaluate(eval_fn),
        Checkpoints(out, save, identity=identity, resume=resume, init_optimizer_from=carried),
        *([ProgressBar(fpt, peak)] if progress else []),
    ]
    res = train_loop(net, train_data, loss_fn, tcfg, hooks=hooks, throughput=Throughput(T, fpt), ddp_model=ddp)
    final = res.evals[-1] if res.evals else eval_fn()
    return {**meta, "out": str(out), **_summary(res, final), "params": _count(net, cfg)}


def _train_config(p: PretrainPreset, n_steps: int, seed: int, lr, eval_every, ckpt_every) -> TrainConfig:
    """The loop's config: the preset's batch and schedule; eval and checkpoints 4 times a run unless given."""
    every = max(1, n_steps // 4)
    return TrainConfig(
        steps=n_steps,
        batch_size=p.batch_size,
        lr=lr or p.lr,
        warmup_steps=min(p.warmup_steps, n_steps // 10),
        seed=seed,
        eval_every=eval_every if eval_every is not None else every,
        ckpt_every=ckpt_every if ckpt_every is not None else every,
    )


def _summary(res, final: dict) -> dict:
    return {
        "train_loss": res.losses[-1] if res.losses else None,
        "eval": final,
        "tokens": res.tokens,
        "flops": res.flops,
        "seconds": res.seconds,
        "tokens_per_s": res.tokens / max(res.seconds, 1e-9),
        "losses": res.losses,
        "evals": res.evals,
    }


def _routing(model: str, task, p: PretrainPreset, embedding: str, seed: int, resume_dir, ev_rows):
    """(clustering, (train rows' experts, eval rows' experts), loss) of a model kind: PN kinds route each row to
    its cluster's expert; dense kinds have neither."""
    if model not in ("pn", "hard-moe"):
        from .losses import lm_loss

        return None, None, lm_loss
    from ..tasks.clustering import row_clusters

    clustering = _clusters(task, p, embedding, seed, resume_dir)
    experts = row_clusters(clustering, task, task.train), row_clusters(clustering, task, ev_rows)
    return clustering, experts, _pn_loss


def _saver(net, cfg, clustering, meta: dict, task):
    """``save(directory, full_state=None)``: the checkpoint files of a pretrained model (PN or dense)."""
    from ..models.checkpoint import write_model_files
    from ..tasks.tokenizers import save_tokenizer

    def save(directory: Path, full_state: dict | None = None):
        src = net if full_state is None else _plain(cfg, full_state)  # FSDP: the gathered full tensors
        if clustering is not None:
            import json

            from ..models.projected import write_pn_files

            write_pn_files(directory, src)
            clustering.save(directory)
            (directory / "projdeploy.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        else:
            write_model_files(directory, src, {**meta, "task": task.name, "task_kind": "lm", "metric": task.metric})
        save_tokenizer(task.tokenizer, directory)

    return save


def _pn_loss(model, batch):
    import torch.nn.functional as F

    toks = batch["tokens"]
    logits = model(toks[:, :-1], batch["expert"])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), toks[:, 1:].reshape(-1))


@torch.no_grad()
def generic_eval(model, task, split, experts=None, batch_size: int = 64) -> dict:
    """Task metric + loss on held-out generic rows; PN rows go through their cluster's expert."""
    from ..tasks.metrics import metric_from_outputs

    was = model.training
    model.eval()
    outs = []
    dev = next(model.parameters()).device
    for i in range(0, len(split), batch_size):
        x = torch.as_tensor(split.tokens[i : i + batch_size, :-1]).to(dev)
        y = model(x) if experts is None else model(x, torch.as_tensor(experts[i : i + batch_size]).to(dev))
        outs.append(y.float().cpu().numpy())
    model.train(was)
    return metric_from_outputs(task, outs, split)


def _clusters(task, p: PretrainPreset, embedding: str, seed: int, resume_dir: Path | None):
    from ..tasks.clustering import (
        Clustering,
        clustering_units,
        fit_clusters,
        parse_embedding,
    )

    spec = parse_embedding(embedding, task, seed)
    if resume_dir is not None and Path(resume_dir, "clusters.json").is_file():
        saved = Clustering.load(resume_dir)
        if saved.spec == spec and saved.k == p.num_experts:
            return saved  # the exact centroids of the interrupted run
    docs, _ = clustering_units(task, task.train)
    return fit_clusters(docs, p.num_experts, spec)


def _load_init(net, cfg, directory: Path):
    """Weights (and the config: a grown model's RMSNorm eps differs) of ``directory``; shapes must match ``cfg``."""
    from safetensors.torch import load_file

    from ..errors import CheckpointError
    from ..models import ModelConfig, build_model

    if isinstance(cfg, ModelConfig):
        icfg = ModelConfig.load(directory)
        shape = (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "resolved_head_dim",
        )
        diff = [
            f"{f}: {getattr(icfg, f)} vs preset {getattr(cfg, f)}" for f in shape if getattr(icfg, f) != getattr(cfg, f)
        ]
        if diff:
            raise CheckpointError(
                f"{directory}: --init checkpoint does not have the preset's architecture ({'; '.join(diff)})"
            )
        cfg, net = icfg, build_model(icfg)
    sd = load_file(str(directory / "model.safetensors"))
    missing, unexpected = net.load_state_dict(sd, strict=False)
    if unexpected or [k for k in missing if k != "lm_head.weight"]:
        raise CheckpointError(
            f"{directory}: --init weights do not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return net, cfg


def _plain(cfg, state: dict) -> torch.nn.Module:
    """An unsharded model of ``cfg`` holding ``state`` (built on the meta device: no extra copy of the weights)."""
    from ..models import ModelConfig, build_model
    from ..models.projected import build_pn

    with torch.device("meta"):
        net = build_model(cfg) if isinstance(cfg, ModelConfig) else build_pn(cfg)
    net.load_state_dict(state, strict=False, assign=True)
    if getattr(net.config, "small", net.config).tie_word_embeddings:
        net.lm_head.weight = net.model.embed_tokens.weight
    left = [n for n, t in net.state_dict().items() if t.is_meta]
    if left:
        raise RuntimeError(f"gathered FSDP state lacks {left[:3]}")
    return net


def _count(net, cfg) -> int:
    return (
        int(sum(t.numel() for t in net.state_dict().values()))
        if not hasattr(cfg, "num_experts")
        else cfg.num_parameters()
    )
