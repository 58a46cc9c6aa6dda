"""Build, quantize and lower an LM program with ExecuTorch's own LLM building blocks.

    python -c "from exporters.llm.et_program import build_pte; help(build_pte)"

1. ``construct_transformer(ModelArgs(use_kv_cache, use_sdpa_with_kv_cache_op, enable_dynamic_shape,
   use_hf_rope))`` from ``executorch.examples.models.llama`` with the checkpoint's weights;
2. ExecuTorch's source transforms ``replace_sdpa_with_custom_op`` (``llama::custom_sdpa``) and
   ``replace_kv_cache_with_custom_kv_cache`` (``llama::update_cache`` into mutable buffers);
3. torchao quantization by config (``quantize_``): embeddings weight-only, linears 8da4w / 8da8w;
4. ``torch.export`` with a dynamic token dimension; ExecuTorch's ``RemoveRedundantTransposes`` and
   reshapes with ``-1`` for the token dimension, so that each layer lowers as one XNNPACK partition
   (exporters/llm/delegable.py); one ``XnnpackPartitioner`` over the whole graph;
   ``LLMEdgeManager.to_executorch`` with the runner's constant methods (see :func:`runner_metadata`).

Stage wall times and the CPU seconds of the whole build are returned so that export cost is visible
(``timings_s``; ``build_cpu_s`` stays meaningful on a shared host).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .recipes import LMRecipe
from .spec import LMSpec


@dataclass
class Lowered:
    """The .pte bytes and what was measured while making them."""

    pte: bytes
    metadata: dict
    delegation: dict
    timings_s: dict = field(default_factory=dict)


def runner_metadata(spec: LMSpec) -> dict:
    """The constant methods ExecuTorch's text runners read (extension/llm/runner/constants.h)."""
    return {
        "get_max_seq_len": spec.max_seq_len,
        "get_max_context_len": spec.max_seq_len,
        "get_vocab_size": spec.vocab_size,
        "get_n_layers": spec.n_layers,
        "get_bos_id": spec.bos_id,
        "get_eos_ids": list(spec.eos_ids),
        "use_kv_cache": True,
        "use_sdpa_with_kv_cache": True,
        "enable_dynamic_shape": True,
    }


def model_args(spec: LMSpec):
    from executorch.examples.models.llama.model_args import ModelArgs

    return ModelArgs(
        dim=spec.dim,
        n_layers=spec.n_layers,
        n_heads=spec.n_heads,
        n_kv_heads=spec.n_kv_heads,
        vocab_size=spec.vocab_size,
        hidden_dim=spec.hidden_dim,
        head_dim=spec.head_dim,
        norm_eps=spec.norm_eps,
        rope_theta=spec.rope_theta,
        use_hf_rope=True,
        attention_qkv_bias=spec.qkv_bias,
        use_qk_norm=spec.qk_norm,
        qk_norm_before_rope=spec.qk_norm,
        max_seq_len=spec.max_seq_len,
        max_context_len=spec.max_seq_len,
        use_kv_cache=True,
        use_sdpa_with_kv_cache_op=True,
        enable_dynamic_shape=True,
        generate_full_logits=False,
        bos_idx=spec.bos_id,
        eos_idx=spec.eos_ids[0],
    )


def eager_program(spec: LMSpec, et_state: dict, delegable: bool = True):
    """The float ExecuTorch Llama module with the in-program cache: ``m(tokens, {"input_pos": p})``."""
    import torch
    from executorch.examples.models.llama.llama_transformer import construct_transformer
    from executorch.examples.models.llama.source_transformation.custom_kv_cache import (
        replace_kv_cache_with_custom_kv_cache,
    )
    from executorch.examples.models.llama.source_transformation.sdpa import replace_sdpa_with_custom_op

    from projdeploy.errors import CheckpointError

    from .delegable import make_delegable

    with torch.device("meta"):
        model = construct_transformer(model_args(spec))
    missing, unexpected = model.load_state_dict(et_state, strict=False, assign=True)
    missing = [k for k in missing if not k.endswith(("k_cache", "v_cache", "mask", "freqs_cos", "freqs_sin"))]
    if missing or unexpected:
        raise CheckpointError(
            f"weights do not fit the {spec.architecture} program: missing {missing}, unexpected {unexpected}"
        )
    _materialise_buffers(model, spec)
    if delegable:
        make_delegable(model, spec.head_dim)
    model = replace_sdpa_with_custom_op(model)
    model = replace_kv_cache_with_custom_kv_cache(model)
    return model.eval()


def _materialise_buffers(model, spec: LMSpec) -> None:
    """Buffers built on the meta device (caches, masks, RoPE tables) are rebuilt for real."""
    import torch
    from executorch.examples.models.llama.rope import Rope

    model.rope = Rope(model.params)
    for layer in model.layers:
        att = layer.attention
        att.rope = model.rope
        n = spec.max_seq_len
        att.register_buffer("mask", torch.tril(torch.ones(n, n, dtype=torch.bool)), persistent=False)
        cache = att.kv_cache
        for name in ("k_cache", "v_cache"):
            buf = getattr(cache, name)
            cache.register_buffer(name, torch.zeros(buf.shape, dtype=torch.float32))


def quantize(model, recipe: LMRecipe):
    """torchao configs, applied in place: embeddings first (weight-only), then the linears."""
    import torch
    from torchao.quantization import quantize_
    from torchao.quantization.granularity import PerAxis, PerGroup
    from torchao.quantization.quant_api import Int8DynamicActivationIntxWeightConfig, IntxWeightOnlyConfig

    if recipe.embedding_bits is not None:
        gran = PerGroup(recipe.embedding_group_size) if recipe.embedding_group_size else PerAxis(0)
        cfg = IntxWeightOnlyConfig(weight_dtype=getattr(torch, f"int{recipe.embedding_bits}"), granularity=gran)
        quantize_(model, cfg, filter_fn=lambda m, fqn: isinstance(m, torch.nn.Embedding))
    if recipe.int4_offsets:
        from .offset_int4 import quantize_offsets, swap_offset_int4

        swap_offset_int4(model, recipe.group_size)
        quantize_offsets(model)
    elif recipe.linear != "none":
        gs = recipe.group_size if recipe.linear == "8da4w" else 0
        cfg = Int8DynamicActivationIntxWeightConfig(
            weight_dtype=torch.int4 if recipe.linear == "8da4w" else torch.int8,
            weight_granularity=PerGroup(gs) if gs else PerAxis(0),
        )

        def fits(m, fqn):
            return isinstance(m, torch.nn.Linear) and (gs == 0 or m.in_features % gs == 0)

        quantize_(model, cfg, filter_fn=fits)
    return model


def _delegation(edge) -> dict:
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(edge.exported_program().graph_module)
    d, n = info.num_delegated_nodes, info.num_non_delegated_nodes
    rest = {op: b.non_delegated for op, b in info.delegation_by_operator.items() if b.non_delegated}
    return {
        "backend": "xnnpack",
        "delegated_nodes": d,
        "non_delegated_nodes": n,
        "subgraphs": info.num_delegated_subgraphs,
        "fraction": d / max(d + n, 1),
        "non_delegated_ops": dict(sorted(rest.items())),
    }


def export_program(model, spec: LMSpec):
    """``torch.export`` with a dynamic token dimension (as ``LLMEdgeManager``), then the in-place
    rewrites that leave one XNNPACK partition per layer (exporters/llm/delegable.py)."""
    import torch

    from .delegable import one_partition_per_layer

    example = (torch.tensor([[spec.bos_id, spec.bos_id]], dtype=torch.long), {"input_pos": torch.tensor([0])})
    dynamic = ({1: torch.export.Dim("token_dim", max=spec.max_seq_len - 1)}, {"input_pos": {0: 1}})
    with torch.nn.attention.sdpa_kernel([torch.nn.attention.SDPBackend.MATH]), torch.no_grad():
        ep = torch.export.export(model, example, dynamic_shapes=dynamic, strict=True)
    return ep, one_partition_per_layer(ep)


def build_pte(spec: LMSpec, et_state: dict, recipe: LMRecipe) -> Lowered:
    """Export + lower the LM program of ``spec`` with weights ``et_state`` under ``recipe``.

    One ``torch.export``; one ``XnnpackPartitioner`` over the whole graph, as optimum-executorch
    does (a dynamically-quantized-only partitioner first would cut every layer at each linear);
    ``LLMEdgeManager.to_executorch`` for ExecuTorch's LLM backend config (quant fusion, memory plan).
    """
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower
    from executorch.extension.llm.export.builder import DType, LLMEdgeManager
    from executorch.extension.llm.export.partitioner_lib import get_xnnpack_partitioner

    t = {}
    cpu0 = time.process_time()  # on a shared host the CPU seconds say more than the wall time
    t0 = time.perf_counter()
    model = quantize(eager_program(spec, et_state), recipe)
    t["build_and_quantize"] = time.perf_counter() - t0
    meta = runner_metadata(spec)
    t0 = time.perf_counter()
    ep, rewrites = export_program(model, spec)
    t["export"] = time.perf_counter() - t0
    mgr = LLMEdgeManager(
        model=model,
        modelname="lm",
        max_seq_len=spec.max_seq_len,
        use_kv_cache=True,
        example_inputs=(),
        dtype=DType.fp32,
        enable_dynamic_shape=True,
        metadata=dict(meta),
    )
    t0 = time.perf_counter()
    mgr.edge_manager = to_edge_transform_and_lower(
        ep,
        partitioner=[get_xnnpack_partitioner(dynamic_quant_only_partitioner=False)],
        compile_config=EdgeCompileConfig(_check_ir_validity=False, _skip_dim_order=True),  # as LLMEdgeManager
        constant_methods=mgr.metadata,
    )
    t["to_edge_and_lower"] = time.perf_counter() - t0
    deleg = _delegation(mgr.edge_manager) | {"graph_rewrites": rewrites}
    t0 = time.perf_counter()
    mgr.to_executorch()
    pte = mgr.export_program.buffer
    t["to_executorch_and_serialise"] = time.perf_counter() - t0
    t["build_cpu_s"] = time.process_time() - cpu0
    return Lowered(pte=pte, metadata=meta, delegation=deleg, timings_s={k: round(v, 2) for k, v in t.items()})
