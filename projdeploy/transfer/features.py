"""Teacher features for AFT / KD: pooled penultimate features of frozen big models, computed once.

    python -c "from projdeploy.transfer.features import teacher_features; ..."

Teachers are dense checkpoints (small/dense kinds, loaded with ``load_model``)
or projector checkpoints (their big source model M1). The features of several
teachers are concatenated. Results are cached as ``.npy`` files (no pickle)
keyed by the teacher's weights hash and the exact input rows.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError

DENSE_KINDS = ("small", "dense", "big", "slm")


def load_feature_model(directory: str | Path) -> torch.nn.Module:
    """A frozen module with ``.features(ids) -> (B, d)`` and ``.config``."""
    from ..foundation import is_foundation_source
    from ..models.checkpoint import load_model, read_meta

    if is_foundation_source(directory):
        from ..foundation import load_big

        return load_big(str(directory)).module
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"teacher checkpoint {str(directory)!r} does not exist")
    kind = read_meta(directory).get("kind", "small")
    if kind == "projector":
        from ..project.projector import load_projector

        return load_projector(directory).big.eval().requires_grad_(False)
    if kind not in DENSE_KINDS:
        raise CheckpointError(
            f"{directory}: checkpoint kind {kind!r} cannot serve as a feature teacher; "
            f"use a dense model (kinds {', '.join(DENSE_KINDS)}) or a projector checkpoint"
        )
    return load_model(directory).requires_grad_(False)


def teacher_inputs(model, task, tokens: np.ndarray) -> np.ndarray:
    """The rows a teacher reads: LM rows drop the last token; an LM teacher reading cls rows gets BOS."""
    if task.kind == "lm":
        return tokens[:, :-1]
    bos = task.tokenizer.bos_id
    if not model.config.is_classifier and bos is not None and task.tokenizer.kind != "hf":  # hf rows carry their own
        return np.concatenate([np.full((len(tokens), 1), bos, tokens.dtype), tokens], axis=1)
    return tokens


@torch.no_grad()
def features_of(model, inputs: np.ndarray, batch: int = 128) -> np.ndarray:
    outs = [
        model.features(torch.as_tensor(inputs[i : i + batch])).float().numpy() for i in range(0, len(inputs), batch)
    ]
    return np.concatenate(outs) if outs else np.zeros((0, model.config.hidden_size), np.float32)


def teacher_features(teachers, task, tokens: np.ndarray, cache_dir: str | Path | None = None) -> np.ndarray:
    """(N, sum of teacher widths) features of ``tokens`` (rows of ``task``'s split), concatenated."""
    from ..fsutil import sha256_file

    if not teachers:
        raise CheckpointError("feature transfer needs at least one --teacher checkpoint")
    feats = []
    for t in teachers:
        model = load_feature_model(t)
        if model.config.vocab_size != task.tokenizer.vocab_size:
            raise CheckpointError(
                f"teacher {t}: vocab size {model.config.vocab_size} does not match task "
                f"{task.name!r} tokenizer ({task.tokenizer.vocab_size})"
            )
        inputs = teacher_inputs(model, task, tokens)
        path = None
        if cache_dir is not None:
            key = hashlib.sha256(
                (
                    (sha256_file(Path(t, "model.safetensors")) if Path(t, "model.safetensors").is_file() else str(t))
                    + task.kind
                ).encode()
                + np.ascontiguousarray(inputs).tobytes()
            ).hexdigest()[:24]
            path = Path(cache_dir, f"{key}.npy")
            if path.is_file():
                feats.append(np.load(path, allow_pickle=False))
                continue
        f = features_of(model, inputs)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, f, allow_pickle=False)
            tmp.replace(path)
        feats.append(f)
    return np.concatenate(feats, axis=1).astype(np.float32)


def append_noise(psi: np.ndarray, noise_dims: int, seed: int = 0) -> np.ndarray:
    """Append ``noise_dims`` standard-normal columns (fixed per row and seed): the AFT robustness probe."""
    if noise_dims <= 0:
        return psi
    noise = np.random.default_rng([seed, 7919]).standard_normal((len(psi), noise_dims)).astype(np.float32)
    return np.concatenate([psi, noise], axis=1)
