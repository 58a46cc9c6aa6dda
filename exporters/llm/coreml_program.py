"""Core ML LM program: a stateful KV cache (``ct.StateType``, iOS 18), prefill + decode functions.

    python -m exporters.llm.coreml_program --checkpoint runs/lm --out out/lm.mlpackage --max-seq-len 256

One multifunction ``.mlpackage`` (weights stored once) with two functions over the same states:

- ``decode`` (default): ``tokens`` int32 (1, 1), ``input_pos`` int32 (1,) -> ``logits`` (1, vocab);
- ``prefill``: ``tokens`` int32 (1, P), ``input_pos`` int32 (P,) = 0..P-1 -> ``logits`` (1, P, vocab);
  a prompt of n <= P tokens is left-aligned and padded; read row n-1. Padding writes cache rows
  n..P-1, which decode overwrites before any query can attend to them (causal mask).

States: ``k_cache_<i>``/``v_cache_<i>`` fp16 (1, kv_heads, max_seq_len, head_dim) per layer, written
in place with ``slice_update`` (ExecuTorch's ``KVCacheCoreML``: ``index_put_`` on the buffer).
The module is ExecuTorch's Llama transformer with ``replace_kv_cache_with_coreml_kv_cache``; shapes
are static (coremltools cannot convert ``index_put`` on a dynamic token count). Core ML cannot run
on Linux: the package is converted and its spec checked here; the same module runs in PyTorch.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

from .spec import LMSpec


def _prefix_cache_cls():
    import torch

    class PrefixKVCache(torch.nn.Module):
        """Prefill writes positions 0..T-1: a static slice (``slice_update``), which coremltools
        converts, where ``index_put`` with T > 1 positions does not."""

        def __init__(self, shape):
            super().__init__()
            self.register_buffer("k_cache", torch.zeros(shape))
            self.register_buffer("v_cache", torch.zeros(shape))

        def update(self, input_pos, k_val, v_val):
            T = k_val.shape[2]
            self.k_cache[:, :, :T] = k_val
            self.v_cache[:, :, :T] = v_val
            return self.k_cache, self.v_cache

    return PrefixKVCache


def coreml_module(spec: LMSpec, et_state: dict, full_logits: bool):
    from executorch.examples.models.llama.llama_transformer import construct_transformer
    from executorch.examples.models.llama.source_transformation.sdpa import replace_kv_cache_with_coreml_kv_cache

    from .et_program import model_args

    args = dataclasses.replace(
        model_args(spec), use_sdpa_with_kv_cache_op=False, enable_dynamic_shape=False, generate_full_logits=full_logits
    )
    model = construct_transformer(args)
    missing, unexpected = model.load_state_dict(et_state, strict=False)
    if unexpected or [k for k in missing if not k.endswith(("k_cache", "v_cache"))]:
        from projdeploy.errors import CheckpointError

        raise CheckpointError(f"weights do not fit the {spec.architecture} program: {missing} {unexpected}")
    model = replace_kv_cache_with_coreml_kv_cache(model)
    if full_logits:  # the prefill function
        cls = _prefix_cache_cls()
        for layer in model.layers:
            layer.attention.kv_cache = cls(layer.attention.kv_cache.k_cache.shape)
    return model.eval()


def _strip_aliases(ep):
    """coremltools has no converter for ``aten.alias`` (left by functionalising ``index_put_``)."""
    g = ep.graph_module.graph
    for n in list(g.nodes):
        if n.op == "call_function" and str(n.target).startswith("aten.alias"):
            n.replace_all_uses_with(n.args[0])
            g.erase_node(n)
    ep.graph_module.recompile()
    return ep


def _named(module):
    import torch

    class Named(torch.nn.Module):
        """Flat ``forward(tokens, input_pos)`` so the package's inputs carry those names."""

        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, tokens, input_pos):
            return self.m(tokens, {"input_pos": input_pos})

    return Named(module).eval()


def convert_function(module, T: int, out: Path):
    import coremltools as ct
    import torch

    tokens = torch.zeros((1, T), dtype=torch.long)
    ep = torch.export.export(_named(module), (tokens, torch.arange(T)), strict=False)
    ep = _strip_aliases(ep.run_decompositions({}))
    ml = ct.convert(
        ep, outputs=[ct.TensorType(name="logits")], minimum_deployment_target=ct.target.iOS18, skip_model_load=True
    )
    ml.save(str(out))
    return ml


def export_coreml_lm(spec: LMSpec, et_state: dict, out: str | Path, prefill_len: int = 32) -> dict:
    """Write the multifunction package to ``out``; returns its I/O and state description."""
    import coremltools as ct

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        parts = {}
        for name, T, full in (("decode", 1, False), ("prefill", prefill_len, True)):
            parts[name] = Path(tmp) / f"{name}.mlpackage"
            ml = convert_function(coreml_module(spec, et_state, full), T, parts[name])
            if name == "decode":
                desc = ml.get_spec().description
        mf = ct.utils.MultiFunctionDescriptor()
        for name, path in parts.items():
            mf.add_function(str(path), src_function_name="main", target_function_name=name)
        mf.default_function_name = "decode"
        staged = Path(tmp) / "lm.mlpackage"
        ct.utils.save_multifunction(mf, str(staged))
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(staged), out)
    return {
        "functions": {"decode": 1, "prefill": prefill_len},
        "inputs": [i.name for i in desc.input],
        "outputs": [o.name for o in desc.output],
        "states": [s.name for s in desc.state],
        "minimum_deployment_target": "iOS18",
    }


def main(argv=None) -> int:
    import argparse
    import json

    from .spec import lm_spec_from_dir
    from .weights import hf_to_et, read_safetensors

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--max-seq-len", type=int, default=256)
    p.add_argument("--prefill-len", type=int, default=32)
    a = p.parse_args(argv)
    spec = lm_spec_from_dir(a.checkpoint, a.max_seq_len)
    info = export_coreml_lm(spec, hf_to_et(read_safetensors(a.checkpoint), spec.tied_embeddings), a.out, a.prefill_len)
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def simulate(spec: LMSpec, et_state: dict, prompt: list[int], steps: int, prefill_len: int):
    """The two functions in PyTorch with one shared cache, as the package runs them on a device:
    prefill (padded to ``prefill_len``), then ``steps`` teacher-forced decode calls on ``prompt``'s
    continuation. Returns the logits rows (first: after the prompt)."""
    import torch

    pre, dec = coreml_module(spec, et_state, True), coreml_module(spec, et_state, False)
    n = len(prompt) - steps
    ids = torch.zeros((1, prefill_len), dtype=torch.long)
    ids[0, :n] = torch.as_tensor(prompt[:n])
    with torch.no_grad():
        out = [pre(ids, {"input_pos": torch.arange(prefill_len)})[0, n - 1]]
        for a, b in zip(pre.layers, dec.layers):
            b.attention.kv_cache.k_cache.copy_(a.attention.kv_cache.k_cache)
            b.attention.kv_cache.v_cache.copy_(a.attention.kv_cache.v_cache)
        for p in range(n, len(prompt)):
            out.append(dec(torch.tensor([[prompt[p]]]), {"input_pos": torch.tensor([p])})[0])
    return torch.stack(out).numpy()
