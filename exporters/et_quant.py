"""ExecuTorch quantization handlers, keyed by config type: PT2E XNNPACK int8 and torchao 8da4w.

    python -c "from exporters.et_quant import QUANTIZERS; print(QUANTIZERS.handlers)"

- ``PT2EInt8Dynamic``: PT2E with ``XNNPACKQuantizer`` (symmetric, per-channel
  int8 weights, dynamic per-token int8 activations), calibrated on the
  program's example and the task's train rows.
- ``Torchao8da4w``: torchao ``Int8DynamicActivationIntxWeightConfig`` (int4 weights
  in groups of ``group_size`` along the input dimension, int8 dynamic
  activations) on every ``nn.Linear`` whose input width the group divides.
"""

from __future__ import annotations

import copy

from .config import HandlerTable
from .recipes import PT2EInt8Dynamic, Torchao8da4w

QUANTIZERS = HandlerTable("ExecuTorch quantization config")


def _calibration_inputs(program, calibration):
    yield program.example
    if program.name == "forward" and calibration:
        import torch

        for ids in calibration:
            ids = torch.as_tensor(ids, dtype=torch.int64)
            for i in range(ids.shape[0]):
                yield (ids[i : i + 1],)


def kept_float(module, patterns: tuple) -> set[str]:
    """Paths of ``module``'s submodules matching one of ``patterns`` (fnmatch), and everything under them."""
    from fnmatch import fnmatch

    if not patterns:
        return set()
    hits = {n for n, _ in module.named_modules() if n and any(fnmatch(n, p) for p in patterns)}
    return {n for n, _ in module.named_modules() if any(n == h or n.startswith(h + ".") for h in hits)}


@QUANTIZERS.register(PT2EInt8Dynamic)
def pt2e_int8(config, program, calibration=None):
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    qconfig = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True)
    keep = kept_float(program.module, config.keep_float)
    if not keep:
        quantizer = XNNPACKQuantizer().set_global(qconfig)
    else:  # the dynamic config only annotates linears: name every linear that is not kept float
        quantizer = XNNPACKQuantizer()
        for name, mod in program.module.named_modules():
            if isinstance(mod, torch.nn.Linear) and name not in keep:
                quantizer.set_module_name(name, qconfig)
    gm = torch.export.export(program.module, program.example, strict=False).module()
    prepared = prepare_pt2e(gm, quantizer)
    with torch.no_grad():
        for args in _calibration_inputs(program, calibration):
            prepared(*args)
    return convert_pt2e(prepared)


@QUANTIZERS.register(Torchao8da4w)
def torchao_8da4w(config, program, calibration=None):
    import torch
    from torchao.quantization import quantize_
    from torchao.quantization.granularity import PerGroup
    from torchao.quantization.quant_api import Int8DynamicActivationIntxWeightConfig
    from torchao.utils import unwrap_tensor_subclass

    group_size = config.group_size
    module = copy.deepcopy(program.module)
    ao_config = Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4, weight_granularity=PerGroup(group_size))

    keep = kept_float(module, config.keep_float)

    def fits(mod, fqn):
        return isinstance(mod, torch.nn.Linear) and mod.in_features % group_size == 0 and fqn not in keep

    quantize_(module, ao_config, filter_fn=fits)
    unwrap_tensor_subclass(module)
    return module


def quantized_module(program, recipe, calibration=None):
    """The module to export for ``program`` under ``recipe`` (the float module when unquantized)."""
    if recipe.quantization is None:
        return program.module
    return QUANTIZERS(recipe.quantization, program, calibration)
