"""Scale-aware parity tolerances for float recipes, per output and per backend.

    python -c "from exporters.tolerance import FP32, compare; import numpy as np; print(compare('logits', np.ones(4) * 30, np.ones(4) * 30.0003, FP32))"

A float artifact passes an output when ``max|artifact - reference| <= atol + rtol * max|reference|``.
The ``rtol`` term is what makes the check scale-aware: float round-off is relative to the magnitude
of the values being summed, and it grows with depth (each layer's matmuls add round-off of order
``eps * sqrt(K)`` relative to their output, and the residual stream carries it forward), so a fixed
``atol`` that fits a 2-layer toy with logits near 1 rejects a 30-layer model whose logits reach 30.
``atol`` only covers outputs whose reference is (near) zero. The values, and the measurements they
come from, are in docs/exporters.md ("Validation tolerances").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """``|out - ref| <= atol + rtol * max|ref|`` over one output tensor."""

    atol: float
    rtol: float = 0.0

    def __post_init__(self):
        if not (self.atol >= 0 and self.rtol >= 0):
            from projdeploy.errors import ConfigError

            raise ConfigError("tolerance", "atol/rtol", f"must be >= 0, got atol={self.atol}, rtol={self.rtol}")

    def as_fields(self) -> dict:
        """Recipe keyword arguments: ``ExportRecipe(..., **FP32.as_fields())``."""
        return {"atol": self.atol, "rtol": self.rtol}

    def bound(self, scale: float) -> float:
        return self.atol + self.rtol * scale


# Float32 runtimes (XNNPACK, ExecuTorch portable kernels, onnxruntime MLAS) sum in a different order
# than PyTorch, use FMA and polynomial exp/tanh. rtol 5e-5 is ~420 float32 ulps (eps = 1.19e-7) of the
# output's magnitude: SmolLM2-135M's 2.9e-4 (ExecuTorch) and 1.1e-4 (ONNX) pass once its logits reach
# 5.6 and 2, and a functional bug (a wrong mask, position or weight moves logits by 1e-2 relative or
# more) stays 200x above the bound.
FP32 = Tolerance(atol=1e-5, rtol=5e-5)
# Float16 compute (Core ML, Core ML / QNN delegates): unit round-off 4.9e-4 at every layer's inputs,
# weights and outputs; 2e-2 is ~40 units of round-off of the output's magnitude.
FP16 = Tolerance(atol=1e-3, rtol=2e-2)


@dataclass(frozen=True)
class Comparison:
    """One output of an artifact against the float reference."""

    output: str
    max_abs_diff: float
    scale: float  # max |reference|
    bound: float  # atol + rtol * scale
    tolerance: Tolerance

    @property
    def rel_err(self) -> float:
        return self.max_abs_diff / self.scale if self.scale > 0 else float(self.max_abs_diff > 0)

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.bound

    def to_dict(self) -> dict:
        return {
            "max_abs_diff": self.max_abs_diff,
            "max_abs_ref": self.scale,
            "rel_err": self.rel_err,
            "atol": self.tolerance.atol,
            "rtol": self.tolerance.rtol,
            "bound": self.bound,
            "passed": self.passed,
        }

    def failure(self) -> str:
        return (
            f"{self.output}: max|diff| {self.max_abs_diff:.3g} > {self.bound:.3g} "
            f"(atol {self.tolerance.atol:g} + rtol {self.tolerance.rtol:g} x max|ref| {self.scale:.3g})"
        )


def compare(output: str, ref, out, tol: Tolerance) -> Comparison:
    """Compare one output; NaN or inf in the artifact's output always fails."""
    ref = np.asarray(ref, np.float64)
    out = np.asarray(out, np.float64)
    if ref.shape != out.shape:
        from .base import ParityError

        raise ParityError(f"{output}: shape {out.shape} differs from the reference's {ref.shape}", {})
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    diff = float(np.max(np.abs(out - ref))) if ref.size else 0.0
    if not np.isfinite(diff):
        diff = float("inf")
    return Comparison(output, diff, scale, tol.bound(scale), tol)
