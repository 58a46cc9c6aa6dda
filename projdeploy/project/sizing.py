"""The small model's shape: a preset name, an explicit spec, or a parameter budget.

    projdeploy project --big smollm2-135m --task pycode:email --method prune --size hidden=384,layers=16,ffn=1024,heads=6,kv=2
    projdeploy project --big smollm2-135m --task pycode:email --method prune --params 25%

``--params`` is either a fraction of the big model's non-embedding parameters
(``25%``) or a total parameter count (``30M``, ``3e7``). The rule for a budget:
depth scales by ``sqrt(fraction)`` (at least half the layers), the width
(hidden, MLP, heads in whole key/value groups) takes the rest, as large as fits.
Head size and vocabulary stay the big model's.
"""

from __future__ import annotations

import math

from ..errors import ConfigError
from ..models.config import SIZES, ModelConfig

SPEC_KEYS = {
    "hidden": "hidden_size",
    "layers": "num_hidden_layers",
    "ffn": "intermediate_size",
    "heads": "num_attention_heads",
    "kv": "num_key_value_heads",
}


def non_embedding_params(cfg: ModelConfig) -> int:
    d, tied = cfg.hidden_size, cfg.tie_word_embeddings and not cfg.is_classifier
    return cfg.num_parameters() - cfg.vocab_size * d - (0 if tied else d * cfg.vocab_size) - d


def parse_spec(big: ModelConfig, spec: str) -> ModelConfig:
    kw = {}
    for part in spec.split(","):
        key, _, val = part.strip().partition("=")
        if key not in SPEC_KEYS or not val.strip().isdigit():
            raise ConfigError(
                "--size",
                spec,
                f"expected a preset ({', '.join(SIZES)}) or key=int pairs with keys {', '.join(SPEC_KEYS)}",
            )
        kw[SPEC_KEYS[key]] = int(val)
    return big.replace(**kw, head_dim=big.resolved_head_dim)


def _scaled(big: ModelConfig, layers: int, w: float) -> ModelConfig:
    KV, g = big.num_key_value_heads, big.num_attention_heads // big.num_key_value_heads
    kv = max(1, min(KV, round(KV * w)))
    heads = kv * max(1, min(g, round(big.num_attention_heads * w / kv)))
    return big.replace(
        hidden_size=max(32, int(big.hidden_size * w) // 32 * 32),
        intermediate_size=max(32, int(big.intermediate_size * w) // 32 * 32),
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        head_dim=big.resolved_head_dim,
    )


def config_for_budget(big: ModelConfig, params: str) -> ModelConfig:
    s = params.strip()
    try:
        if s.endswith("%"):
            frac = float(s[:-1]) / 100
        else:
            mult = {"K": 1e3, "M": 1e6, "B": 1e9}.get(s[-1:].upper(), 1.0)
            total = float(s[:-1] if mult != 1.0 else s) * mult
            frac = (total - (big.num_parameters() - non_embedding_params(big))) / max(non_embedding_params(big), 1)
    except ValueError:
        raise ConfigError("--params", params, "expected a percentage (25%) or a parameter count (30M, 3e7)") from None
    if not 0 < frac <= 1:
        raise ConfigError(
            "--params", params, "must leave between 0 and 100% of the big model's non-embedding parameters"
        )
    budget = frac * non_embedding_params(big)
    layers = max(1, math.ceil(big.num_hidden_layers / 2), round(big.num_hidden_layers * math.sqrt(frac)))
    layers = min(layers, big.num_hidden_layers)
    best = _scaled(big, layers, 0.0)
    for i in range(1, 101):
        cand = _scaled(big, layers, i / 100)
        if non_embedding_params(cand) <= budget:
            best = cand
    return best


def small_config(
    big: ModelConfig, size: str | None = None, params: str | None = None, default: str = "tiny"
) -> ModelConfig:
    """The small config for ``big`` from ``--size`` (preset or spec) or ``--params``."""
    if size and params:
        raise ConfigError("project", "--size/--params", "give one of them, not both")
    if params:
        return config_for_budget(big, params)
    size = size or default
    if size in SIZES:
        from .truncate import small_config_for

        return small_config_for(big, size)
    return parse_spec(big, size)
