"""``pycode-cls``: which standard-library package a Python source snippet comes from (real text classification).

    projdeploy tasks show pycode-cls

Snippets are 15-line windows of the packages' own ``.py`` files (at least 200
characters). The split is by file, with the same stable path hash as the
``pycode`` tasks, so no eval snippet's file contributes any training snippet.
Each class keeps at most ``MAX_TRAIN`` / ``MAX_EVAL`` snippets (a balanced,
deterministic sample). Byte tokens by default; a pretrained big model's
tokenizer re-tokenizes the snippets (``fit_task``).
"""

from __future__ import annotations

import numpy as np

from .base import Split, Task, stable_hash
from .tokenizers import ByteTokenizer

PACKAGES = ("asyncio", "email", "http", "importlib", "json", "logging", "unittest", "xml")
LINES, MIN_CHARS, SEQ_LEN = 15, 200, 256
MAX_TRAIN, MAX_EVAL = 120, 40


def _snippets(text: str) -> list[str]:
    lines = text.splitlines()
    out = ["\n".join(lines[i : i + LINES]) for i in range(0, len(lines), LINES)]
    return [s for s in out if len(s.strip()) >= MIN_CHARS]


def _collect(pkg: str) -> tuple[list[str], list[str]]:
    from .pycode import _files, _held_out, _read

    files = _files(pkg)
    held = _held_out([rel for rel, _ in files])
    train, ev = [], []
    for rel, path in sorted(files, key=lambda x: stable_hash(x[0])):
        (ev if rel in held else train).extend(_snippets(_read(path)))
    pick = lambda xs, n: [
        xs[i] for i in sorted(np.random.default_rng(stable_hash(pkg) % 2**32).permutation(len(xs))[:n])
    ]  # noqa: E731
    return pick(train, MAX_TRAIN), pick(ev, MAX_EVAL)


def pycode_cls(seq_len: int = SEQ_LEN) -> Task:
    tok = ByteTokenizer()
    parts = {"train": ([], []), "eval": ([], [])}
    for label, pkg in enumerate(PACKAGES):
        tr, ev = _collect(pkg)
        for name, docs in (("train", tr), ("eval", ev)):
            parts[name][0].extend(docs)
            parts[name][1].extend([label] * len(docs))

    def split(docs, labels):
        toks = np.full((len(docs), seq_len), tok.pad_id, np.int64)
        for i, d in enumerate(docs):
            ids = tok.encode(d)[:seq_len]
            toks[i, : len(ids)] = ids
        return Split(toks, np.asarray(labels, np.int64), np.arange(len(docs)), list(docs))

    return Task(
        name="pycode-cls",
        kind="cls",
        modality="text",
        description=f"which of {len(PACKAGES)} standard-library packages a {LINES}-line snippet is from (split by file)",
        tokenizer=tok,
        train=split(*parts["train"]),
        eval=split(*parts["eval"]),
        metric="accuracy",
        labels=list(PACKAGES),
    )
