"""What an app's self-test needs of an LM program's ``test_vectors.npz``, as a small JSON resource.

    python -c "from projdeploy.sdk.selftest import lm_self_test; print(lm_self_test('out/lm/test_vectors.npz'))"

Swift, Kotlin and TypeScript read JSON, not ``.npz``: the generator writes ``projdeploy_selftest.json``
(``projdeploy.lm_selftest/1``) next to the bundled program. It keeps the prompt, the greedy tokens,
per step the top-k logits with their ids and the sum of all logits, and the tolerance
(``atol + rtol * max |top-k logit|``). The SDK's ``selfTest`` drives the program by the manifest's
protocol (prompt at position 0, then one greedy token per call) and passes when the tokens are equal,
every top-k logit is within the tolerance and every sum within the tolerance times the vocabulary.

The bundle (everything an LM package ships besides its program and its tokenizer) stays within
:func:`exporters.llm.export_lm.bundle_budget`; :func:`check_bundle` enforces it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError

SCHEMA = "projdeploy.lm_selftest/1"


def lm_self_test(npz_path: str | Path) -> dict:
    """The JSON self-test of ``test_vectors.npz`` (a ConfigError names the file when it is not one)."""
    import numpy as np

    from exporters.base import ManifestError
    from exporters.llm.vectors import read_vectors

    try:
        v = read_vectors(npz_path)
    except (ManifestError, OSError, ValueError, KeyError) as e:
        raise ConfigError(str(npz_path), "schema", f"not projdeploy.lm_vectors/1 test vectors ({e})") from None
    try:
        top = np.asarray(v["topk_logits"], np.float64)
        tol = float(v["atol"]) + float(v["rtol"]) * float(np.max(np.abs(top)))
        return {
            "schema": SCHEMA,
            "prompt": [int(x) for x in v["prompt"]],
            "tokens": [int(x) for x in v["tokens"]],
            "topk_ids": np.asarray(v["topk_ids"], np.int64).tolist(),
            "topk_logits": [[float(np.float32(x)) for x in row] for row in top],
            "logit_sum": [float(x) for x in v["logit_sum"]],
            "vocab_size": int(v["vocab_size"]),
            "tolerance": tol,
        }
    except KeyError as e:
        raise ConfigError(str(npz_path), str(e.args[0]), "missing from the test vectors") from None


def write_self_test(npz_path: Path, out: Path) -> None:
    out.write_text(json.dumps(lm_self_test(npz_path), separators=(",", ":")) + "\n")


def bundle_bytes(res: Path, program_files) -> int:
    """Bytes a package bundles besides its program files."""
    skip = {res / f for f in program_files}
    total = 0
    for p in res.rglob("*"):
        if p.is_file() and not any(p == s or s in p.parents for s in skip):
            total += p.stat().st_size
    return total


def check_bundle(res: Path, spec: dict, source: str) -> int:
    """Raise a ConfigError when an LM package bundles more than its budget besides the program and the
    tokenizer (the model's vocabulary, which the app needs to run it: 3.5 MB for SmolLM2's 49152 tokens);
    the budget is for what only checks and self-tests need (manifest, self-test, vectors)."""
    from exporters.llm.export_lm import bundle_budget

    files = set(spec["program_files"].values())
    model = sum(p.stat().st_size for f in files for p in ([res / f] if (res / f).is_file() else (res / f).rglob("*")))
    tokenizer = (spec.get("lm") or {}).get("tokenizer_file")
    used, budget = bundle_bytes(res, files | ({tokenizer} if tokenizer else set())), bundle_budget(model)
    if used > budget:
        raise ConfigError(
            source,
            "files",
            f"the SDK would bundle {used} bytes besides the model and its tokenizer, over the budget of {budget} bytes",
        )
    return used
