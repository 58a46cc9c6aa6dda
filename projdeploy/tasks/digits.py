"""Built-in image tasks from scikit-learn's bundled 8x8 handwritten digits.

``digits`` / ``digits:0-4`` / ``digits:7``: image modelling, each image a
64-token sequence over 17 intensity levels (ImageGPT style) after a BOS
token; metric bits per dimension. ``digits-cls``: 10-way classification.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnknownNameError
from .base import Split, Task, is_eval_key
from .tokenizers import PixelTokenizer

LEVELS = 17  # load_digits values are 0..16


def _load():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.float64), d.target.astype(np.int64)


def parse_classes(spec: str) -> list[int]:
    """'0-4' -> [0..4]; '7' -> [7]; '1,3,5' -> [1,3,5]."""
    out = set()
    try:
        for part in spec.split(","):
            if "-" in part:
                a, b = part.split("-")
                out.update(range(int(a), int(b) + 1))
            else:
                out.add(int(part))
    except ValueError:
        out = {-1}
    if not out or not all(0 <= c <= 9 for c in out):
        raise UnknownNameError(
            "digits class spec", spec, ["0-9 ranges like 0-4", "single digits like 7", "lists like 1,3,5"]
        )
    return sorted(out)


def _split_indices(n: int):
    is_eval = np.array([is_eval_key(f"digits/{i}", 0.2) for i in range(n)])
    return np.flatnonzero(~is_eval), np.flatnonzero(is_eval)


def digits_lm(spec: str | None = None) -> Task:
    images, target = _load()
    tok = PixelTokenizer(LEVELS)
    classes = parse_classes(spec) if spec else list(range(10))
    keep = np.isin(target, classes)
    seqs = np.stack([tok.encode_image(im, 16.0) for im in images])
    tokens = np.concatenate([np.full((len(seqs), 1), tok.bos_id), seqs], axis=1)
    tr, ev = _split_indices(len(images))
    tr, ev = tr[keep[tr]], ev[keep[ev]]

    def split(idx):
        return Split(tokens[idx], None, np.arange(len(idx)), [seqs[i] for i in idx])

    name = f"digits:{spec}" if spec else "digits"
    return Task(
        name=name,
        kind="lm",
        modality="image",
        description=f"8x8 digit images of classes {classes} as 64-pixel sequences (17 levels)",
        tokenizer=tok,
        train=split(tr),
        eval=split(ev),
        metric="bits_per_dim",
        image_shape=(8, 8),
    )


def digits_cls() -> Task:
    images, target = _load()
    tok = PixelTokenizer(LEVELS)
    seqs = np.stack([tok.encode_image(im, 16.0) for im in images])
    tr, ev = _split_indices(len(images))

    def split(idx):
        return Split(seqs[idx], target[idx], np.arange(len(idx)), [seqs[i] for i in idx])

    return Task(
        name="digits-cls",
        kind="cls",
        modality="image",
        description="8x8 digit images, 10-way classification",
        tokenizer=tok,
        train=split(tr),
        eval=split(ev),
        metric="accuracy",
        labels=[str(i) for i in range(10)],
        image_shape=(8, 8),
    )
