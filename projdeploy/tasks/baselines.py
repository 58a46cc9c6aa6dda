"""Count-based baselines a trained model must beat on the same eval split.

Images: a per-pixel-position histogram (each position's own intensity
distribution, Laplace-smoothed). Text: a byte bigram (Laplace-smoothed).
"""

from __future__ import annotations

import math

import numpy as np


def pixel_histogram_bits_per_dim(task, alpha: float = 1.0) -> float:
    tr, ev = task.train.tokens[:, 1:], task.eval.tokens[:, 1:]
    V = task.tokenizer.levels
    counts = np.full((tr.shape[1], V), alpha)
    for pos in range(tr.shape[1]):
        counts[pos] += np.bincount(tr[:, pos], minlength=V)[:V]
    probs = counts / counts.sum(1, keepdims=True)
    ll = np.log2(probs[np.arange(ev.shape[1])[None, :], ev])
    return float(-ll.mean())


def byte_bigram_bits_per_byte(task, alpha: float = 0.1) -> float:
    V = task.tokenizer.vocab_size
    counts = np.full((V, V), alpha)
    tr = task.train.tokens
    np.add.at(counts, (tr[:, :-1].reshape(-1), tr[:, 1:].reshape(-1)), 1.0)
    logp = np.log(counts / counts.sum(1, keepdims=True))
    ev = task.eval.tokens
    nats = -logp[ev[:, :-1].reshape(-1), ev[:, 1:].reshape(-1)].sum()
    n_bytes = int(task.tokenizer.token_bytes(ev[:, 1:]).sum())
    return float(nats / math.log(2) / n_bytes)


def majority_class_accuracy(task) -> float:
    major = np.bincount(task.train.labels).argmax()
    return float((task.eval.labels == major).mean())


def baseline(task) -> tuple[str, float]:
    """(name, value) of the task's count-based baseline in the task's metric."""
    if task.kind == "cls":
        return "majority class", majority_class_accuracy(task)
    if task.modality == "image":
        return "per-position pixel histogram", pixel_histogram_bits_per_dim(task)
    return "byte bigram" if task.tokenizer.kind == "byte" else "token bigram", byte_bigram_bits_per_byte(task)
