"""Operator costs: FLOPs and bytes moved per operator, at a precision.

    python -c "from projdeploy.check.ops import *; print(transformer_ops(TransformerShape(100, 64, 192, 2, 4, 2), 8, 0, PRECISIONS['fp32'])[:3])"

``transformer_ops`` describes one Llama-style forward analytically (used for LM prefill/decode
with a KV cache and for published reference models in bench/estimator.py); ``graph.py`` derives
the same records from a real artifact graph. Both feed ``estimator.py``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Precision:
    """How an artifact stores weights and computes.

    ``weight_bytes``: bytes per weight incl. quantization scales; ``act_bytes``: bytes per stored
    activation element; ``compute``: which profile peak applies (a key of profile precisions).
    """

    name: str
    weight_bytes: float
    act_bytes: float
    compute: str


PRECISIONS = {
    "fp32": Precision("fp32", 4.0, 4.0, "fp32"),
    "fp16": Precision("fp16", 2.0, 2.0, "fp16"),
    "bf16": Precision("bf16", 2.0, 2.0, "bf16"),
    # static int8 (w8a8: QDQ graphs, NPU int8): activations stored as int8 between operators
    "int8": Precision("int8", 1.0, 1.0, "int8"),
    # dynamic int8 (ORT dynamic quantization, XNNPACK dynamic): activations are fp32 between operators,
    # quantized per call inside the matmul
    "int8-dynamic": Precision("int8-dynamic", 1.0, 4.0, "int8"),
    # int8 weights, 16-bit activations (Qualcomm w8a16)
    "w8a16": Precision("w8a16", 1.0, 2.0, "w8a16"),
    # 4-bit weights in groups of 32 with an fp16 scale (+2/32 B), int8 dynamic activations (8da4w)
    "int4": Precision("int4", 0.5 + 2 / 32, 4.0, "int4"),
}


@dataclass(frozen=True)
class OpCost:
    name: str
    op_type: str
    flops: float
    weight_bytes: float  # parameters read
    act_bytes: float  # activations read + written (incl. KV cache reads/writes)
    dispatch: bool = True  # counts toward the per-operator overhead
    op_class: str = ""  # estimator class (opcost.CLASSES); "" = from op_type (class_of)
    weight_elems: float = 0.0  # parameter elements read (0 = unknown: retarget keeps the bytes)
    act_elems: float = 0.0  # activation elements read + written

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.act_bytes

    @property
    def cls(self) -> str:
        return self.op_class or class_of(self.op_type)


# analytic / traced op types -> estimator class (ONNX op types are classified in opcost.py)
_CLASS_OF = {
    **dict.fromkeys(("linear", "mm", "addmm", "matmul", "embedding_bag"), "matmul"),
    **dict.fromkeys(
        ("sdpa", "bmm", "scaled_dot_product_attention", "_scaled_dot_product_flash_attention"), "attention"
    ),
    **dict.fromkeys(("convolution", "conv2d", "conv1d"), "conv"),
    **dict.fromkeys(("gather", "embedding", "cat", "copy", "index", "index_select", "gather"), "data"),
}


def class_of(op_type: str) -> str:
    """Estimator class of an analytic or traced op type; everything else computes elementwise."""
    return _CLASS_OF.get(op_type, "elementwise")


def retarget(ops: list[OpCost], prec: Precision) -> list[OpCost]:
    """The same operators stored at another precision (a planned Core ML / NPU target from the float graph).

    Weight and activation bytes are recomputed from element counts; ops without element counts keep theirs.
    """
    import dataclasses

    return [
        dataclasses.replace(
            o,
            weight_bytes=o.weight_elems * prec.weight_bytes if o.weight_elems else o.weight_bytes,
            act_bytes=o.act_elems * prec.act_bytes if o.act_elems else o.act_bytes,
        )
        for o in ops
    ]


@dataclass(frozen=True)
class TransformerShape:
    """The shape facts of a Llama-style decoder (HF config names)."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int | None = None
    tie_word_embeddings: bool = False
    num_labels: int = 0
    qkv_bias: bool = False

    @property
    def hd(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @classmethod
    def from_hf(cls, d: dict) -> TransformerShape:
        is_cls = any("SequenceClassification" in a for a in d.get("architectures") or [])
        return cls(
            d["vocab_size"],
            d["hidden_size"],
            d["intermediate_size"],
            d["num_hidden_layers"],
            d["num_attention_heads"],
            d.get("num_key_value_heads") or d["num_attention_heads"],
            d.get("head_dim"),
            bool(d.get("tie_word_embeddings", False)),
            len(d.get("id2label") or {}) or int(d.get("num_labels") or 2) if is_cls else 0,
            bool(d.get("attention_bias", False)),
        )

    def num_parameters(self) -> int:
        d, p, L, hd = self.hidden_size, self.intermediate_size, self.num_hidden_layers, self.hd
        H, KV = self.num_attention_heads, self.num_key_value_heads
        block = d * H * hd * 2 + d * KV * hd * 2 + 3 * d * p + 2 * d
        head = d * (self.num_labels or self.vocab_size)
        tied = self.tie_word_embeddings and not self.num_labels
        return self.vocab_size * d + L * block + d + (0 if tied else head)

    def kv_cache_bytes(self, context: int, bytes_per_elem: float) -> float:
        return 2.0 * self.num_hidden_layers * self.num_key_value_heads * self.hd * context * bytes_per_elem


def _linear(name, tokens, k, n, prec: Precision, bias=False) -> OpCost:
    return OpCost(
        name,
        "linear",
        2.0 * tokens * k * n,
        (k * n + (n if bias else 0)) * prec.weight_bytes,
        tokens * (k + n) * prec.act_bytes,
    )


def _elementwise(name, op, elems, prec: Precision, flops_per=1.0, inputs=1) -> OpCost:
    return OpCost(name, op, flops_per * elems, 0.0, (inputs + 1) * elems * prec.act_bytes)


def transformer_ops(
    s: TransformerShape,
    new_tokens: int,
    context: int,
    prec: Precision,
    *,
    logits: str = "all",
    kv_bytes: float | None = None,
    batch: int = 1,
) -> list[OpCost]:
    """One forward of ``new_tokens`` tokens attending to ``context`` cached + the new tokens.

    prefill: ``transformer_ops(s, P, 0, ...)``; decode step at position c: ``(s, 1, c, ...)``.
    ``logits``: "all" (every position through the head), "last" (what LLM runners do) or "pool"
    (classifier: one position). ``kv_bytes``: bytes per cached K/V element (default act bytes).
    """
    T, d, p, hd = new_tokens * batch, s.hidden_size, s.intermediate_size, s.hd
    H, KV = s.num_attention_heads, s.num_key_value_heads
    kvb = prec.act_bytes if kv_bytes is None else kv_bytes
    ops = [OpCost("embed", "gather", 0.0, T * d * prec.weight_bytes, T * (1 + d) * prec.act_bytes)]
    S = context + new_tokens  # keys visible to the last new token
    # average keys per query: causal within the new block
    keys_avg = context + (new_tokens + 1) / 2.0
    for i in range(s.num_hidden_layers):
        L = f"layers.{i}."
        ops += [
            _elementwise(L + "input_layernorm", "rmsnorm", T * d, prec, 4.0),
            _linear(L + "q_proj", T, d, H * hd, prec, s.qkv_bias),
            _linear(L + "k_proj", T, d, KV * hd, prec, s.qkv_bias),
            _linear(L + "v_proj", T, d, KV * hd, prec, s.qkv_bias),
            _elementwise(L + "rope", "rope", T * (H + KV) * hd, prec, 3.0, 3),
            OpCost(
                L + "attention",
                "sdpa",
                batch * H * new_tokens * keys_avg * hd * 4.0 + 5.0 * batch * H * new_tokens * keys_avg,
                0.0,
                batch
                * (
                    2 * H * new_tokens * hd * prec.act_bytes
                    + 2 * KV * hd * (S * kvb if context else new_tokens * prec.act_bytes)
                )
                + (batch * 2 * KV * hd * new_tokens * kvb if context else 0.0),
            ),
            _linear(L + "o_proj", T, H * hd, d, prec),
            _elementwise(L + "attn_residual", "add", T * d, prec, 1.0, 2),
            _elementwise(L + "post_attention_layernorm", "rmsnorm", T * d, prec, 4.0),
            _linear(L + "gate_proj", T, d, p, prec),
            _linear(L + "up_proj", T, d, p, prec),
            _elementwise(L + "silu_mul", "silu_mul", T * p, prec, 5.0, 2),
            _linear(L + "down_proj", T, p, d, prec),
            _elementwise(L + "mlp_residual", "add", T * d, prec, 1.0, 2),
        ]
    rows = T if logits == "all" else batch
    ops.append(_elementwise("norm", "rmsnorm", rows * d, prec, 4.0))
    n_out = s.num_labels or s.vocab_size
    ops.append(_linear("score" if s.num_labels else "lm_head", rows, d, n_out, prec))
    return ops


def totals(ops: list[OpCost]) -> dict:
    return {
        "ops": len(ops),
        "dispatched_ops": sum(o.dispatch for o in ops),
        "flops": sum(o.flops for o in ops),
        "weight_bytes": sum(o.weight_bytes for o in ops),
        "act_bytes": sum(o.act_bytes for o in ops),
    }
