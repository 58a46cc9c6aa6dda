"""The Task contract every built-in and user task fulfils.

A task is data plus how to judge a model on it: train/eval splits of
fixed-length token sequences, a tokenizer, a metric, example inputs for
export, and a default budget for the check stage.

Language/image modelling (``kind="lm"``): ``Split.tokens`` is (N, T+1); the
model reads ``tokens[:, :-1]`` and predicts ``tokens[:, 1:]``.
Classification (``kind="cls"``): ``Split.tokens`` is (N, T), ``Split.labels`` (N,).
``Split.doc_index[i]`` is the document a row came from and ``Split.docs`` the
raw documents (text or flattened pixels), used by clustering.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

# Placeholder budgets; the check stage (profiles + estimator) reads them.
DEFAULT_BUDGET = {
    "max_size_mb": 50.0,
    "max_memory_mb": 500.0,
    "max_metric_drop": 0.02,
    # estimated single-forward latency per profile name ("default" = any other profile); see docs/check.md
    "max_latency_ms": {"default": 100.0},
}

METRICS = {  # name -> True if higher is better
    "bits_per_dim": False,
    "bits_per_byte": False,
    "accuracy": True,
}


@dataclass
class Split:
    tokens: np.ndarray  # int64 (N, T+1) for lm, (N, T) for cls
    labels: np.ndarray | None = None  # int64 (N,) for cls
    doc_index: np.ndarray | None = None  # int64 (N,)
    docs: list = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def subset(self, idx) -> Split:
        idx = np.asarray(idx)
        return Split(
            self.tokens[idx],
            None if self.labels is None else self.labels[idx],
            None if self.doc_index is None else self.doc_index[idx],
            self.docs,
        )


@dataclass
class Task:
    name: str
    kind: str  # "lm" | "cls"
    modality: str  # "image" | "text"
    description: str
    tokenizer: object
    train: Split
    eval: Split
    metric: str
    labels: list[str] = field(default_factory=list)
    budget: dict = field(default_factory=lambda: dict(DEFAULT_BUDGET))
    image_shape: tuple[int, int] | None = None
    source: str = "built-in"
    # user tasks: {"data.train": {"path": resolved path, "sha256": digest}, ...} (what was trained on)
    data_files: dict = field(default_factory=dict)

    def __post_init__(self):
        from ..errors import ConfigError

        if self.kind not in ("lm", "cls"):
            raise ConfigError(f"task {self.name}", "kind", f"{self.kind!r} is not one of lm, cls")
        if self.metric not in METRICS:
            raise ConfigError(f"task {self.name}", "metric", f"{self.metric!r} is not one of {', '.join(METRICS)}")

    @property
    def seq_len(self) -> int:
        """Length of the model's input sequence."""
        return self.train.tokens.shape[1] - (1 if self.kind == "lm" else 0)

    @property
    def num_labels(self) -> int:
        return len(self.labels) if self.kind == "cls" else 0

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric]

    def example_inputs(self, batch: int = 1, split: str = "eval") -> np.ndarray:
        """Deterministic example model inputs (batch, seq_len) from a split."""
        s = self.eval if split == "eval" else self.train
        return self.model_inputs(s.tokens[:batch])

    def metric_drop(self, reference: float, value: float) -> float:
        """How much worse ``value`` is than ``reference`` on this task's metric (positive = worse)."""
        return (reference - value) if self.higher_is_better else (value - reference)

    def model_inputs(self, rows):
        """What the model reads from token rows (numpy or torch): an LM row's last token is only a target."""
        return rows[:, :-1] if self.kind == "lm" else rows

    def with_train_limit(self, n: int | None, seed: int = 0) -> Task:
        """The same task with a deterministic random subset of ``n`` training rows."""
        if n is None or n >= len(self.train):
            return self
        idx = np.sort(np.random.default_rng(seed).permutation(len(self.train))[:n])
        return dataclasses.replace(self, train=self.train.subset(idx))

    def summary(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "modality": self.modality,
            "description": self.description,
            "metric": self.metric,
            "tokenizer": self.tokenizer.kind,
            "vocab_size": self.tokenizer.vocab_size,
            "seq_len": self.seq_len,
            "train_rows": len(self.train),
            "eval_rows": len(self.eval),
            "labels": self.labels,
            "budget": self.budget,
            "source": self.source,
            "data_files": self.data_files,
        }


def stable_hash(text: str) -> int:
    """A hash that does not change between processes or machines (unlike ``hash``)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def is_eval_key(key: str, eval_fraction: float = 0.1) -> bool:
    return (stable_hash(key) % 10_000) < eval_fraction * 10_000


def pack_documents(docs_ids: list[list[int]], seq_len: int, eos_id: int | None, bos_id: int | None):
    """Concatenate documents (EOS-separated) and cut into (N, seq_len+1) windows.

    Windows do not overlap except for the one token shared at each boundary,
    so every token is predicted exactly once. Returns (tokens, doc_index).
    """
    stream, owner = [], []
    for i, ids in enumerate(docs_ids):
        piece = ([bos_id] if bos_id is not None else []) + list(ids) + ([eos_id] if eos_id is not None else [])
        stream.extend(piece)
        owner.extend([i] * len(piece))
    stream, owner = np.asarray(stream, dtype=np.int64), np.asarray(owner, dtype=np.int64)
    n = (len(stream) - 1) // seq_len
    if n <= 0:
        return np.zeros((0, seq_len + 1), np.int64), np.zeros(0, np.int64)
    starts = np.arange(n) * seq_len
    tokens = np.stack([stream[s : s + seq_len + 1] for s in starts])
    doc_index = owner[starts + seq_len // 2]
    return tokens, doc_index
