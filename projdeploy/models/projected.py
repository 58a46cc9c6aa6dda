"""Projected Network (PN): one big model whose MLPs are generated per expert (methods.md section 1).

    python -c "from projdeploy.models.projected import *; from projdeploy.models import config_for; \
m = build_pn(PNConfig(config_for('tiny', 19), 4, 8, 4)); print(m.materialize(0))"

For expert ``i`` and layer ``l`` each MLP matrix of the small architecture is
``W[l,i] = sum_q sum_r E[i,q] M[l][q,r] T[l][r]`` (``c[l,i] = M[l]^T E[i]``).
Attention, embeddings and norms are shared by all experts. ``kind="hard-moe"``
is the special case ``h = k``, one-hot ``E``, ``M = I`` (fixed buffers): every
expert owns its MLP. ``materialize(i)`` gives an ordinary small ``CausalLM``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError
from .config import ModelConfig
from .llama import Backbone, CausalLM

KINDS = ("pn", "hard-moe")
MATS = ("gate", "up", "down")


@dataclass(frozen=True)
class PNConfig:
    small: ModelConfig  # the architecture every expert materialises into
    num_experts: int  # k
    basis_size: int  # h
    code_size: int  # m
    kind: str = "pn"
    version: int = 1

    def __post_init__(self):
        def bad(f, why):
            raise ConfigError("PN config", f, why)

        if self.small.is_classifier:
            bad("small", "must be a causal LM config (num_labels=0)")
        for f in ("num_experts", "basis_size", "code_size"):
            if not isinstance(getattr(self, f), int) or getattr(self, f) <= 0:
                bad(f, f"must be a positive integer, got {getattr(self, f)!r}")
        if self.kind not in KINDS:
            bad("kind", f"must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.kind == "hard-moe" and not (self.basis_size == self.code_size == self.num_experts):
            bad("basis_size", "hard-moe needs h = m = k (one-hot E, M = I)")

    @classmethod
    def hard_moe(cls, small: ModelConfig, k: int) -> PNConfig:
        return cls(small, k, k, k, kind="hard-moe")

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "small"}
        return {"projdeploy_kind": "pn", **d, "small": self.small.to_hf_dict()}

    @classmethod
    def from_dict(cls, d: dict, source: str = "config.json") -> PNConfig:
        if d.get("projdeploy_kind") != "pn":
            raise CheckpointError(
                f"{source}: not a Projected Network config (projdeploy_kind "
                f"{d.get('projdeploy_kind')!r}, expected 'pn')"
            )
        from ..errors import ConfigError
        from .weights import check_size

        small = ModelConfig.from_hf_dict(d.get("small"), source)
        for name in ("num_experts", "basis_size", "code_size"):
            v = d.get(name)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 4096:
                raise ConfigError(source, name, f"got {v!r}; allowed: an integer from 1 to 4096")
        cfg = cls(small, d["num_experts"], d["basis_size"], d["code_size"], d.get("kind", "pn"), d.get("version", 1))
        check_size(cfg.num_parameters(), source)
        return cfg

    def generation_flops(self, n_experts: int) -> int:
        """Forward FLOPs to generate the MLP weights of ``n_experts`` experts (all layers)."""
        s = self.small
        return (
            2
            * s.num_hidden_layers
            * n_experts
            * (self.basis_size * 3 * s.hidden_size * s.intermediate_size + self.code_size * self.basis_size)
        )

    def num_parameters(self) -> int:
        s = self.small
        mlp = 3 * s.hidden_size * s.intermediate_size * s.num_hidden_layers
        learned = (
            0
            if self.kind == "hard-moe"
            else self.num_experts * self.code_size + s.num_hidden_layers * self.code_size * self.basis_size
        )
        return s.num_parameters() - mlp + mlp * self.basis_size + learned


class PNLayer(nn.Module):
    """The basis ``T[l]`` of one layer's three MLP matrices, and its mixing matrix ``M[l]``."""

    def __init__(self, cfg: PNConfig):
        super().__init__()
        d, p, h, m = cfg.small.hidden_size, cfg.small.intermediate_size, cfg.basis_size, cfg.code_size
        self.gate = nn.Parameter(torch.empty(h, p, d))  # torch Linear layout (out, in) per basis matrix
        self.up = nn.Parameter(torch.empty(h, p, d))
        self.down = nn.Parameter(torch.empty(h, d, p))
        if cfg.kind == "hard-moe":
            self.register_buffer("mix", torch.eye(h))
        else:
            self.mix = nn.Parameter(torch.empty(m, h))


class ProjectedLM(nn.Module):
    """``forward(ids, expert)``: every row runs through the small model of its expert."""

    def __init__(self, cfg: PNConfig):
        super().__init__()
        self.config = cfg
        s = cfg.small
        self.model = Backbone(s)
        for layer in self.model.layers:
            layer.mlp = None  # MLPs are generated from the basis below
        self.lm_head = nn.Linear(s.hidden_size, s.vocab_size, bias=False)
        self.pn = nn.ModuleList(PNLayer(cfg) for _ in range(s.num_hidden_layers))
        if cfg.kind == "hard-moe":
            self.register_buffer("codes", torch.eye(cfg.num_experts))
        else:
            self.codes = nn.Parameter(torch.empty(cfg.num_experts, cfg.code_size))
        self.reset_parameters()
        if s.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    @torch.no_grad()
    def reset_parameters(self, std: float = 0.02):
        cfg = self.config
        for mod in self.modules():
            if isinstance(mod, (nn.Linear, nn.Embedding)):
                nn.init.normal_(mod.weight, std=std)
        if cfg.kind == "pn":  # c = M^T E has unit-variance entries; W = sum_r c_r T_r has std ~ std
            nn.init.normal_(self.codes, std=cfg.code_size**-0.5)
            for layer in self.pn:
                nn.init.normal_(layer.mix, std=1.0)
        scale = std / (cfg.basis_size**0.5 if cfg.kind == "pn" else 1.0)
        for layer in self.pn:
            for name in MATS:
                nn.init.normal_(getattr(layer, name), std=scale)

    # --- coefficients and generated weights -------------------------------------------
    def coefficients(self, experts: torch.Tensor) -> list[torch.Tensor]:
        """Per layer: (n, h) coefficient vectors ``c[l, i] = M[l]^T E[i]`` of ``experts`` (n,)."""
        codes = self.codes[experts]
        return [codes @ layer.mix for layer in self.pn]

    def mlp_weights(self, layer: int, coef: torch.Tensor) -> dict[str, torch.Tensor]:
        """Generated MLP matrices of one layer for coefficient rows ``coef`` (n, h) -> (n, out, in) each."""
        base = self.pn[layer]
        return {m: torch.einsum("nh,hoi->noi", coef, getattr(base, m)) for m in MATS}

    def _mixture_mlp(self, layer: int, coef: torch.Tensor, inverse: torch.Tensor):
        ws = self.mlp_weights(layer, coef)

        def mlp(x: torch.Tensor) -> torch.Tensor:
            if coef.shape[0] == 1:
                return _swiglu(x, ws["gate"][0], ws["up"][0], ws["down"][0])
            order = torch.argsort(inverse, stable=True)
            counts = torch.bincount(inverse, minlength=coef.shape[0]).tolist()
            parts, start = [], 0
            for u, c in enumerate(counts):
                rows = order[start : start + c]
                start += c
                if c:
                    parts.append(_swiglu(x[rows], ws["gate"][u], ws["up"][u], ws["down"][u]))
            return torch.cat(parts)[torch.argsort(order)]

        return mlp

    def forward(self, input_ids: torch.Tensor, expert=None, coefs: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Logits (B, T, V). ``expert``: int or (B,) expert ids; or ``coefs``: per layer (h,) shared by all rows."""
        B = input_ids.shape[0]
        if coefs is not None:
            inverse = torch.zeros(B, dtype=torch.long, device=input_ids.device)
            per_layer = [c.reshape(1, -1) for c in coefs]
        else:
            if expert is None:
                raise ValueError("ProjectedLM.forward needs expert ids or coefficient vectors")
            expert = (
                torch.as_tensor(expert, device=input_ids.device).long().reshape(-1).expand(B)
                if torch.as_tensor(expert).dim() == 0
                else torch.as_tensor(expert, device=input_ids.device).long()
            )
            uniq, inverse = torch.unique(expert, return_inverse=True)
            per_layer = self.coefficients(uniq)
        mlps = [self._mixture_mlp(i, per_layer[i], inverse) for i in range(len(self.pn))]
        return self.lm_head(self.model(input_ids, mlps=mlps))

    # --- projection ---------------------------------------------------------------------
    @torch.no_grad()
    def expert_state(self, expert: int | None = None, coefs: list[torch.Tensor] | None = None) -> dict:
        """State dict of the small ``CausalLM`` for one expert (or explicit coefficient vectors)."""
        if coefs is None:
            if not 0 <= int(expert) < self.config.num_experts:
                raise ConfigError("projection", "expert", f"must be in 0..{self.config.num_experts - 1}, got {expert}")
            coefs = [c[0] for c in self.coefficients(torch.tensor([int(expert)]))]
        sd = {k: v.detach().clone() for k, v in self.state_dict().items() if not k.startswith("pn.") and k != "codes"}
        for i, c in enumerate(coefs):
            ws = self.mlp_weights(i, c.detach().reshape(1, -1))
            for m in MATS:
                sd[f"model.layers.{i}.mlp.{m}_proj.weight"] = ws[m][0].contiguous()
        return sd

    def materialize(self, expert: int | None = None, coefs: list[torch.Tensor] | None = None) -> CausalLM:
        small = CausalLM(self.config.small)
        missing, unexpected = small.load_state_dict(self.expert_state(expert, coefs), strict=False)
        if unexpected or any(k != "lm_head.weight" for k in missing):
            raise CheckpointError(
                f"expert weights do not fit the small model: missing {missing}, unexpected {unexpected}"
            )
        return small.eval()


def _swiglu(x, gate, up, down):
    return F.linear(F.silu(F.linear(x, gate)) * F.linear(x, up), down)


def build_pn(cfg: PNConfig, seed: int | None = None) -> ProjectedLM:
    if seed is not None:
        torch.manual_seed(seed)
    return ProjectedLM(cfg)


def pn_state_for_save(model: ProjectedLM) -> dict[str, torch.Tensor]:
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if model.config.small.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    return sd


def write_pn_files(directory: str | Path, model: ProjectedLM) -> None:
    from safetensors.torch import save_file

    directory = Path(directory)
    (directory / "config.json").write_text(json.dumps(model.config.to_dict(), indent=2, sort_keys=True))
    save_file(pn_state_for_save(model), str(directory / "model.safetensors"), metadata={"format": "pt"})


def load_pn(directory: str | Path) -> ProjectedLM:
    from .weights import load_weights, read_safetensors

    directory = Path(directory)
    path = directory / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{directory}: not a checkpoint (no config.json)")
    try:
        d = json.loads(path.read_text())
    except ValueError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise CheckpointError(f"{path}: must be a JSON object")
    cfg = PNConfig.from_dict(d, str(path))
    wpath = directory / "model.safetensors"
    if not wpath.is_file():
        raise CheckpointError(f"{directory}: not a checkpoint (no model.safetensors)")
    sd = read_safetensors(wpath)
    model = ProjectedLM(cfg)
    load_weights(model, sd, str(wpath), allow_missing=("lm_head.weight",) if cfg.small.tie_word_embeddings else ())
    return model.eval()
