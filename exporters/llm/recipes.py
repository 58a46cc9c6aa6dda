"""LM program recipes: frozen, versioned data (linear and embedding quantization, the window).

    python -c "from exporters.llm.recipes import LM_RECIPES; print(list(LM_RECIPES))"

- ``linear``: ``none`` (fp32) | ``8da8w`` (int8 per-channel weights) | ``8da4w`` (int4 weights in
  groups of ``group_size`` input columns); both with int8 dynamic per-token activations, through
  torchao's ``Int8DynamicActivationIntxWeightConfig``, lowered to XNNPACK.
- ``embedding_bits``: ``None`` (fp32) | 8 | 4, weight-only, through torchao's
  ``IntxWeightOnlyConfig`` (per row when ``embedding_group_size`` is 0, else groups).
- ``max_seq_len``: the window (prompt + generated tokens); ``None`` = the task's sequence length.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

LINEAR = ("none", "8da8w", "8da4w")


def _bad(name: str, field: str, problem: str):
    from projdeploy.errors import ConfigError

    raise ConfigError(f"LM recipe {name!r}", field, problem)


@dataclass(frozen=True)
class LMRecipe:
    name: str
    format: str = "executorch"
    version: int = 1
    description: str = ""
    linear: str = "none"
    group_size: int = 32  # 8da4w: input columns per int4 scale
    embedding_bits: int | None = None
    embedding_group_size: int = 0  # 0 = one scale per row
    max_seq_len: int | None = None
    min_top1_agreement: float = 0.99  # validation: greedy-token agreement with the float model
    max_bpb_drop: float | None = None  # None = the task's budget (bits/byte or bits/dim)

    def __post_init__(self):
        if self.linear not in LINEAR:
            _bad(self.name, "linear", f"{self.linear!r} is not one of {', '.join(LINEAR)}")
        if self.linear == "8da4w" and (self.group_size <= 0 or self.group_size % 16):
            _bad(self.name, "group_size", f"{self.group_size}: must be a positive multiple of 16")
        if self.embedding_bits not in (None, 4, 8):
            _bad(self.name, "embedding_bits", f"{self.embedding_bits!r} is not one of None, 4, 8")
        if self.embedding_group_size < 0:
            _bad(self.name, "embedding_group_size", "must be >= 0 (0 = per row)")
        if self.max_seq_len is not None and self.max_seq_len < 2:
            _bad(self.name, "max_seq_len", "must be >= 2")
        if not 0.0 <= self.min_top1_agreement <= 1.0:
            _bad(self.name, "min_top1_agreement", "must be in [0, 1]")

    @property
    def quantized(self) -> bool:
        return self.linear != "none" or self.embedding_bits is not None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["type"] = type(self).__name__
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LMRecipe:
        d = {k: v for k, v in d.items() if k != "type"}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            _bad(d.get("name", "?"), unknown[0], f"unknown field; known: {', '.join(sorted(known))}")
        return cls(**d)


LM_RECIPES = {
    r.name: r
    for r in [
        LMRecipe("xnnpack-fp32", description="fp32, XNNPACK, KV cache in the program", min_top1_agreement=0.99),
        LMRecipe(
            "xnnpack-int8",
            description="int8 per-channel weights + int8 dynamic activations (torchao 8da8w), 8-bit embeddings",
            linear="8da8w",
            embedding_bits=8,
            min_top1_agreement=0.9,
        ),
        LMRecipe(
            "xnnpack-8da4w",
            description="int4 groupwise weights (group 32) + int8 dynamic activations, 8-bit embeddings",
            linear="8da4w",
            group_size=32,
            embedding_bits=8,
            min_top1_agreement=0.8,
        ),
        LMRecipe(
            "xnnpack-8da4w-emb4",
            description="as xnnpack-8da4w with 4-bit embeddings (groups of 32)",
            linear="8da4w",
            group_size=32,
            embedding_bits=4,
            embedding_group_size=32,
            min_top1_agreement=0.8,
        ),
    ]
}


def get_lm_recipe(name) -> LMRecipe:
    if isinstance(name, LMRecipe):
        return name
    if name not in LM_RECIPES:
        from projdeploy.errors import UnknownNameError

        raise UnknownNameError("LM recipe", name, LM_RECIPES)
    return LM_RECIPES[name]
