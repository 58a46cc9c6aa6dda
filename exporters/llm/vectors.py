"""Small binary test vectors for LM programs: a few positions, top-k logits, a checksum of the rest.

    python -c "from exporters.llm.vectors import read_vectors; print(read_vectors('out/lm-et/test_vectors.npz'))"

``test_vectors.npz`` (a few kB, whatever the vocabulary) holds a prompt, the greedy tokens the
artifact produced after it, and for each of those positions the ``k`` largest logits with their
token ids plus the sum and the sum of squares of all logits (float64). An app's self-test or
``replay_vectors`` runs the same prompt and compares: the top-k logits within ``atol + rtol * scale``
and the two sums within the same tolerance times the vocabulary size.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

VECTORS_FILE = "test_vectors.npz"
SCHEMA = "projdeploy.lm_vectors/1"


def _summarise(logits: np.ndarray, k: int) -> tuple:
    logits = np.asarray(logits, np.float32).reshape(-1)
    top = np.argsort(-logits, kind="stable")[:k]
    return (
        top.astype(np.int32),
        logits[top],
        float(np.sum(logits, dtype=np.float64)),
        float(np.sum(np.square(logits, dtype=np.float64))),
    )


def make_vectors(runner, prompt, steps: int = 4, k: int = 8, rtol: float = 1e-4, atol: float = 1e-4) -> dict:
    """Prefill ``prompt``, take ``steps`` greedy tokens; the arrays of ``test_vectors.npz``."""
    rows = []
    logits = runner.prefill(list(prompt))
    tokens = []
    for i in range(steps):
        rows.append(_summarise(logits, k))
        tokens.append(int(rows[-1][0][0]))
        if i + 1 < steps:
            logits = runner.forward([tokens[-1]])
    ids, vals, sums, sq = zip(*rows)
    return {
        "schema": np.array(SCHEMA),
        "prompt": np.asarray(prompt, np.int64),
        "tokens": np.asarray(tokens, np.int64),
        "topk_ids": np.stack(ids),
        "topk_logits": np.stack(vals).astype(np.float32),
        "logit_sum": np.asarray(sums, np.float64),
        "logit_sq_sum": np.asarray(sq, np.float64),
        "vocab_size": np.array(int(np.asarray(logits).size), np.int64),
        "rtol": np.array(rtol, np.float32),
        "atol": np.array(atol, np.float32),
    }


def write_vectors(directory: str | Path, arrays: dict) -> Path:
    """Into an artifact's temporary directory (the directory itself appears atomically)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    path = Path(directory) / VECTORS_FILE
    path.write_bytes(buf.getvalue())
    return path


def read_vectors(path: str | Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    if str(out.get("schema")) != SCHEMA:
        from .. import base

        raise base.ManifestError(f"{path}: schema {out.get('schema')!r}; supported: {SCHEMA}")
    return out


def replay_vectors(runner, path: str | Path) -> dict:
    """Run the vectors' prompt through ``runner``; figures, with ``passed``."""
    v = read_vectors(path)
    steps, k = v["topk_ids"].shape
    got = make_vectors(runner, v["prompt"].tolist(), steps=steps, k=k)
    scale = float(np.max(np.abs(v["topk_logits"])))
    tol = float(v["atol"]) + float(v["rtol"]) * scale
    diff_top = float(np.max(np.abs(got["topk_logits"] - v["topk_logits"])))
    n = float(v["vocab_size"])
    diff_sum = float(np.max(np.abs(got["logit_sum"] - v["logit_sum"])))
    same_tokens = bool(np.array_equal(got["tokens"], v["tokens"]))
    passed = same_tokens and diff_top <= tol and diff_sum <= tol * n
    return {
        "steps": int(steps),
        "k": int(k),
        "same_tokens": same_tokens,
        "max_abs_diff_topk": diff_top,
        "max_abs_diff_sum": diff_sum,
        "tolerance": tol,
        "passed": passed,
    }
