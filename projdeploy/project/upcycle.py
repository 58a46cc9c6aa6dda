"""Upcycle a pretrained dense model into a Projected Network, train it on clustered generic data, project.

    projdeploy project --big smollm2-135m --task pycode:email --method pn --train-steps 20 --out runs/email-pn

1. ``prune`` the big model to the small shape (the task's calibration rows, ``prune.py``);
2. a Projected Network (methods.md section 1, ``h < k``) whose attention, embeddings and norms are the pruned
   model's, and whose every expert is the pruned MLP: basis matrix 0 holds it, the other ``h - 1`` are zero;
   every code has ``E[i, 0] = 1``, every mixing matrix ``M[l][0] = e_0`` and ``M[l][q, 0] = 0`` for ``q > 0``,
   so ``c[l, i][0] = 1`` for all experts while the other coefficients are random and differ per expert (the
   experts diverge as the zero basis matrices learn);
3. continued pretraining on generic data (``pretrained.generic_data``: the task's domain held out), every row
   through the expert of its k-means cluster (tf-idf + SVD embedding), plain next-token loss;
4. the usual projection: the task's most frequent cluster (or lowest loss) -> its expert, materialised.
With ``steps = 0`` every expert is the pruned MLP, so the result is exactly the pruned model (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import CheckpointError, ConfigError
from .pretrained import ContinuedTraining


@dataclass(frozen=True)
class UpcycleConfig:
    num_experts: int = 8  # k
    basis_size: int = 4  # h < k: the shared-basis regime
    code_size: int = 4  # m
    version: int = 1

    def __post_init__(self):
        if not 2 <= self.basis_size < self.num_experts:
            raise ConfigError("upcycled PN", "basis_size", f"needs 2 <= h < k = {self.num_experts}")
        if self.code_size < 2:
            raise ConfigError("upcycled PN", "code_size", "needs m >= 2")


@torch.no_grad()
def upcycle(small: torch.nn.Module, ucfg: UpcycleConfig = UpcycleConfig(), seed: int = 0):
    """A ProjectedLM whose shared weights are ``small``'s and whose every expert is ``small``'s MLP."""
    from ..models.projected import MATS, PNConfig, build_pn

    cfg = PNConfig(small.config, ucfg.num_experts, ucfg.basis_size, ucfg.code_size)
    pn = build_pn(cfg, seed=seed)
    sd = small.state_dict()
    missing, unexpected = pn.load_state_dict({k: v for k, v in sd.items() if ".mlp." not in k}, strict=False)
    if unexpected or any(not (k.startswith("pn.") or k == "codes") for k in missing):
        raise CheckpointError(f"cannot upcycle: missing {missing[:5]}, unexpected {unexpected[:5]}")
    k, h, m = ucfg.num_experts, ucfg.basis_size, ucfg.code_size
    gen = torch.Generator().manual_seed(seed)
    for i, layer in enumerate(pn.pn):
        for name in MATS:
            basis = getattr(layer, name)
            basis.zero_()
            basis[0] = sd[f"model.layers.{i}.mlp.{name}_proj.weight"]
        layer.mix.zero_()
        layer.mix[0, 0] = 1.0
        layer.mix[1:, 1:] = torch.randn(m - 1, h - 1, generator=gen)
    pn.codes[:, 0] = 1.0
    pn.codes[:, 1:] = torch.randn(k, m - 1, generator=gen) / (m - 1) ** 0.5
    return pn


def _pn_loss(model, batch):
    import torch.nn.functional as F

    toks = batch["tokens"]
    logits = model(toks[:, :-1], batch["expert"])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), toks[:, 1:].reshape(-1))


def project_pn_pretrained(
    big_dir,
    task,
    *,
    seed=0,
    size=None,
    params=None,
    calibration=32,
    rule="most-frequent",
    train: ContinuedTraining | None = None,
    ucfg: UpcycleConfig | None = None,
):
    """(small CausalLM, info): prune -> upcycle -> continued pretraining on clustered generic data -> expert."""
    from .api import dense_small
    from .prune import dropped_layers, prune_model, pruning_selection

    train, ucfg = train or ContinuedTraining(), ucfg or UpcycleConfig()
    big, task, cfg = dense_small(big_dir, task, "pn", size, params)
    sel = pruning_selection(big, task, cfg, calibration, seed)
    pn = upcycle(prune_model(big, cfg, sel), ucfg, seed)
    info = {
        "calibration_rows": min(calibration, len(task.train)),
        "dropped_layers": dropped_layers(big, sel),
        "num_experts": ucfg.num_experts,
        "basis_size": ucfg.basis_size,
        "train_steps": train.steps,
    }
    if train.steps == 0:
        return pn.materialize(0), {**info, "mode": "prune-init", "expert": 0}
    from ..tasks.clustering import EmbeddingSpec, clustering_units, fit_clusters, row_clusters
    from ..train.loop import train_loop
    from .pn import choose_expert
    from .pretrained import generic_data

    data = generic_data(task, train, seed)
    units, _ = clustering_units(data.task, data.task.train)
    clustering = fit_clusters(units, ucfg.num_experts, EmbeddingSpec(seed=seed))
    experts = row_clusters(clustering, data.task, data.task.train)
    res = train_loop(pn, {"tokens": data.task.train.tokens, "expert": experts}, _pn_loss, train.train_config(seed))
    pn.eval()
    expert, chosen = choose_expert(pn, clustering, task, rule)
    return pn.materialize(expert), {
        **info,
        **chosen,
        "mode": "upcycled",
        "train_loss": [res.losses[0], res.losses[-1]],
        "held_out": list(data.held_out),
        "generic_rows": len(experts),
    }
