"""Pretraining presets: data, not code. One name fixes every shape and the FLOP budget.

    python -c "from projdeploy.train.presets import get_preset; print(get_preset('tiny'))"

A preset gives the small (shipped) architecture, the Projected Network's
``k`` experts / ``h`` basis matrices / ``m`` code size, the wider dense "big"
source model, and a pretraining budget in FLOPs. Every preset has fewer basis
matrices than experts (``h = k/2``): the shared-basis regime that is the point of
PN (``h = k`` is a hard mixture with its own MLP per expert). Every model kind trained
from one preset gets the same budget: its step count is the budget divided by
its own FLOPs per step, so SLM, PN, hard mixture and the big dense model are
compared at equal pretraining cost.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..errors import UnknownNameError


@dataclass(frozen=True)
class PretrainPreset:
    name: str
    small_size: str  # a key of projdeploy.models.SIZES: the shipped small architecture
    num_experts: int  # k
    basis_size: int  # h
    code_size: int  # m
    big: dict = field(default_factory=dict, hash=False)  # overrides of the small size for the dense big model
    # The big model keeps the small head size, so growing the SLM into it (hidden, MLP, heads,
    # layers) stays a transformers-loadable checkpoint with standard RoPE.
    small_steps: int = 400  # the FLOP budget is what the dense SLM spends in this many steps
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 20
    eval_rows: int = 256
    version: int = 1

    def to_dict(self) -> dict:
        return {"type": "pretrain-preset", **dataclasses.asdict(self)}


PRESETS: dict[str, PretrainPreset] = {
    p.name: p
    for p in [
        # Default for the built-in data: a few minutes on 2 CPU cores.
        PretrainPreset(
            "tiny",
            "tiny",
            num_experts=8,
            basis_size=4,
            code_size=4,
            big=dict(hidden_size=128, intermediate_size=384, num_attention_heads=8, num_key_value_heads=4),
            small_steps=400,
        ),
        PretrainPreset(
            "small",
            "small",
            num_experts=16,
            basis_size=8,
            code_size=8,
            big=dict(hidden_size=256, intermediate_size=768, num_attention_heads=8, num_key_value_heads=4),
            small_steps=1500,
            lr=2e-3,
        ),
        PretrainPreset(
            "base",
            "base",
            num_experts=32,
            basis_size=16,
            code_size=16,
            big=dict(hidden_size=512, intermediate_size=1536, num_attention_heads=16, num_key_value_heads=8),
            small_steps=4000,
            batch_size=64,
            lr=1.5e-3,
            warmup_steps=100,
        ),
    ]
}


def get_preset(name: str) -> PretrainPreset:
    if name not in PRESETS:
        raise UnknownNameError("pretrain preset", name, PRESETS)
    return PRESETS[name]
