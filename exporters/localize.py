"""Where does an artifact's error start? Compare intermediate outputs, module by module, with PyTorch.

    python -c "from exporters.localize import first_divergence; help(first_divergence)"

When validation fails, the float model's module outputs (forward hooks, in execution order) are
compared with the same values taken from the artifact side:

- ONNX: the artifact itself in onnxruntime, with the value each module scope ends on added as a graph
  output (torch.onnx records each node's module scope as ``pkg.torch.onnx.name_scopes``; the exporter
  keeps that one metadata entry for this purpose);
- formats whose runtime cannot run here (Core ML on Linux): the PyTorch simulation of the recipe, hooked
  the same way.

The answer is the first module (in execution order; a leaf such as a ``Linear`` comes before the layer
that contains it) whose own output already fails the recipe's criterion: the float bound
(exporters/tolerance.py) or the SQNR floor. That is where the error grows past what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCOPES_KEY = "pkg.torch.onnx.name_scopes"


@dataclass(frozen=True)
class Divergence:
    module: str  # module path in the exported program, e.g. "hf.bert.encoder.layer.3.output.dense"
    kind: str  # the module's class name
    checked: int  # module outputs compared
    detail: str  # the failing criterion on that module's output

    def message(self) -> str:
        return f"error first exceeds the criterion at module {self.module!r} ({self.kind}): {self.detail}"

    def to_dict(self) -> dict:
        return {"module": self.module, "kind": self.kind, "checked": self.checked, "detail": self.detail}


def _first_tensor(out):
    import torch

    if torch.is_tensor(out):
        return out
    if isinstance(out, (tuple, list)):
        for o in out:
            t = _first_tensor(o)
            if t is not None:
                return t
    if hasattr(out, "to_tuple"):
        return _first_tensor(out.to_tuple())
    return None


def module_outputs(model, inputs: list, names=None) -> tuple[dict, dict]:
    """Run ``model`` on ``inputs`` (numpy) with hooks; returns ({path: output}, {path: class name}) in
    execution order (dicts keep insertion order). ``names`` limits the modules hooked."""
    import torch

    outs, kinds, handles = {}, {}, []

    def hook(path):
        def fn(mod, args, out):
            t = _first_tensor(out)
            if t is not None and t.is_floating_point() and path not in outs:
                outs[path] = t.detach().float().numpy().copy()
                kinds[path] = type(mod).__name__

        return fn

    for path, mod in model.named_modules():
        if path and (names is None or path in names):
            handles.append(mod.register_forward_hook(hook(path)))
    try:
        with torch.no_grad():
            model(*[torch.as_tensor(np.asarray(x)) for x in inputs])
    finally:
        for h in handles:
            h.remove()
    return outs, kinds


def first_divergence(ref: dict, art: dict, kinds: dict, failed) -> Divergence | None:
    """The first module (in ``ref``'s order) whose artifact output fails ``failed(ref, out) -> str | None``."""
    checked = 0
    for path, r in ref.items():
        a = art.get(path)
        if a is None or a.size != r.size:
            continue
        checked += 1
        why = failed(r, a.reshape(r.shape))
        if why:
            return Divergence(path, kinds.get(path, "?"), checked, why)
    return None


def criterion(recipe):
    """``failed(ref, out) -> str | None`` for the recipe: its float bound, or its SQNR floor."""
    from .tolerance import compare
    from .validate import sqnr_db

    if recipe.tolerance is not None:

        def float_failed(r, a):
            c = compare("output", r, a, recipe.tolerance)
            return None if c.passed else c.failure().split(": ", 1)[1]

        return float_failed

    def sqnr_failed(r, a):
        s = sqnr_db(r, a)
        return None if s >= recipe.sqnr_floor_db else f"SQNR {s:.2f} dB < floor {recipe.sqnr_floor_db:g} dB"

    return sqnr_failed


# --- ONNX: intermediate values from the artifact in onnxruntime ---------------------------------
def onnx_scope_values(path) -> dict:
    """{module path: the value its scope ends on} from the nodes' ``name_scopes`` metadata."""
    import ast

    import onnx

    graph = onnx.load(str(path)).graph
    last = {}
    for node in graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        if SCOPES_KEY not in meta or not node.output:
            continue
        try:
            scopes = ast.literal_eval(meta[SCOPES_KEY])
        except (ValueError, SyntaxError):
            continue
        for scope in scopes[:-1]:  # the last entry is the node's own name
            if scope:
                last[scope] = node.output[0]
    return last


def onnx_intermediates(path, inputs: list, values: dict) -> dict:
    """Run the ONNX model with ``values`` ({module: value name}) added as outputs -> {module: array}."""
    import tempfile
    from pathlib import Path

    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    have = {o.name for o in model.graph.output}
    inferred = onnx.shape_inference.infer_shapes(model).graph
    elem = {vi.name: vi.type.tensor_type.elem_type for vi in [*inferred.value_info, *inferred.output]}
    wanted = {m: v for m, v in values.items() if elem.get(v) == TensorProto.FLOAT}  # float module outputs only
    for v in sorted(set(wanted.values()) - have):
        model.graph.output.append(helper.make_tensor_value_info(v, TensorProto.FLOAT, None))
    with tempfile.TemporaryDirectory() as td:
        p = Path(td) / "probe.onnx"
        onnx.save(model, str(p))
        so = ort.SessionOptions()
        so.log_severity_level = 3
        sess = ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        feed = {n: np.asarray(x) for n, x in zip(names, inputs)}
        outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed)))
    return {m: np.asarray(outs[v], np.float32) for m, v in wanted.items() if v in outs}


def localize_onnx(path, module, inputs: list, recipe) -> Divergence | None:
    values = onnx_scope_values(path)
    ref, kinds = module_outputs(module, inputs, set(values))
    return first_divergence(ref, onnx_intermediates(path, inputs, values), kinds, criterion(recipe))


def localize_torch(reference, candidate, inputs: list, recipe) -> Divergence | None:
    """Both sides PyTorch modules of the same structure (e.g. the float model and its simulation)."""
    ref, kinds = module_outputs(reference, inputs)
    art, _ = module_outputs(candidate, inputs)
    return first_divergence(ref, art, kinds, criterion(recipe))
