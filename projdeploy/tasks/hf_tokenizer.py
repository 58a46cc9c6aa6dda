"""A pretrained model's own Hugging Face tokenizer (``tokenizer.json``: byte-level BPE, SentencePiece BPE, WordPiece).

    python -c "from projdeploy.tasks.hf_tokenizer import tokenizer_from_hf_dir; t = tokenizer_from_hf_dir('hf_dir', 0)"

When a small model is projected from a pretrained big model, the task's raw
documents are re-tokenized with the big model's tokenizer (:func:`fit_task`);
the small checkpoint stores it as ``tokenizer.json`` + ``tokenizer_config.json``
(so ``AutoTokenizer`` loads it) and in ``projdeploy_tokenizer.json``.
Bits per byte count every token's UTF-8 bytes exactly for byte-level BPE and
byte-fallback vocabularies (WordPiece: the piece's characters, no spaces).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from ..errors import CheckpointError

SEPARATORS = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "[SEP]")


class HFTokenizer:
    kind = "hf"

    def __init__(self, tok, vocab_size: int, bos_id=None, eos_id=None, pad_id=None):
        self.tok = tok
        self.vocab_size = max(int(vocab_size), tok.get_vocab_size(with_added_tokens=True))
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id if pad_id is not None else eos_id
        self._nbytes = None

    def encode(self, text: str) -> list[int]:
        """Token ids of raw text, no special tokens (LM packing adds the separator)."""
        return self.tok.encode(text, add_special_tokens=False).ids

    def encode_cls(self, text: str) -> list[int]:
        """Ids with the tokenizer's own special tokens ([CLS] ... [SEP] for BERT)."""
        return self.tok.encode(text).ids

    def decode(self, ids) -> str:
        return self.tok.decode(list(ids))

    def token_bytes(self, ids: np.ndarray) -> np.ndarray:
        if self._nbytes is None:
            self._nbytes = _byte_table(self.tok, self.vocab_size)
        return self._nbytes[np.asarray(ids)]

    def to_dict(self) -> dict:
        return {
            "type": self.kind,
            "vocab_size": self.vocab_size,
            "bos_id": self.bos_id,
            "eos_id": self.eos_id,
            "pad_id": self.pad_id,
            "hf_tokenizer": json.loads(self.tok.to_str()),
        }

    @classmethod
    def from_dict(cls, d: dict) -> HFTokenizer:
        from tokenizers import Tokenizer

        return cls(
            Tokenizer.from_str(json.dumps(d["hf_tokenizer"])), d["vocab_size"], d["bos_id"], d["eos_id"], d["pad_id"]
        )

    def save_hf(self, directory: str | Path) -> None:
        """tokenizer.json + tokenizer_config.json + special_tokens_map.json (AutoTokenizer loads them)."""
        from transformers import PreTrainedTokenizerFast

        name = lambda i: None if i is None else self.tok.id_to_token(i)  # noqa: E731
        fast = PreTrainedTokenizerFast(
            tokenizer_object=self.tok,
            bos_token=name(self.bos_id),
            eos_token=name(self.eos_id),
            pad_token=name(self.pad_id),
        )
        fast.save_pretrained(str(directory))


def _byte_table(tok, vocab_size: int) -> np.ndarray:
    from .tokenizers import _bytelevel_inverse

    spec = json.loads(tok.to_str())
    model_type = (spec.get("model") or {}).get("type")
    byte_level = "ByteLevel" in json.dumps(spec.get("pre_tokenizer")) or "ByteLevel" in json.dumps(spec.get("decoder"))
    specials = {t["id"] for t in spec.get("added_tokens", []) if t.get("special")}
    inv = _bytelevel_inverse()
    table = np.zeros(vocab_size, dtype=np.int64)
    for token, i in tok.get_vocab(with_added_tokens=True).items():
        if i in specials or i >= vocab_size:
            continue
        if byte_level:
            table[i] = sum(1 if ch in inv else len(ch.encode("utf-8")) for ch in token)
        elif len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
            table[i] = 1  # SentencePiece byte fallback
        elif model_type == "WordPiece":
            table[i] = len(token.removeprefix("##").encode("utf-8"))
        else:
            table[i] = len(token.replace("\u2581", " ").encode("utf-8"))
    return table


def _special(cfg: dict, key: str):
    v = cfg.get(key)
    return v.get("content") if isinstance(v, dict) else v


def tokenizer_from_hf_dir(path: str | Path, vocab_size: int) -> HFTokenizer:
    """The tokenizer of an HF checkpoint directory (needs ``tokenizer.json``)."""
    from tokenizers import Tokenizer

    path = Path(path)
    tj = path / "tokenizer.json"
    if not tj.is_file():
        raise CheckpointError(f"{path}: no tokenizer.json (a fast Hugging Face tokenizer is required)")
    tok = Tokenizer.from_file(str(tj))
    tc = json.loads((path / "tokenizer_config.json").read_text()) if (path / "tokenizer_config.json").is_file() else {}
    mc = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
    ids = lambda name: None if name is None else tok.token_to_id(name)  # noqa: E731
    sep = next((tok.token_to_id(s) for s in SEPARATORS if tok.token_to_id(s) is not None), None)
    eos = sep if sep is not None else ids(_special(tc, "eos_token")) or mc.get("eos_token_id")
    bos = ids(_special(tc, "cls_token")) or ids(_special(tc, "bos_token")) or mc.get("bos_token_id")
    pad = ids(_special(tc, "pad_token"))
    if pad is None:
        pad = mc.get("pad_token_id") if isinstance(mc.get("pad_token_id"), int) else eos
    return HFTokenizer(tok, vocab_size, bos, eos, pad)


def fit_task(task, tokenizer):
    """``task`` re-tokenized with ``tokenizer`` (same documents, splits, seq_len, labels)."""
    from .base import Split, pack_documents

    if task.tokenizer is tokenizer or (
        getattr(task.tokenizer, "kind", None) == "hf" and task.tokenizer.to_dict() == tokenizer.to_dict()
    ):
        return task
    if task.modality != "text" or not all(isinstance(d, str) for d in task.train.docs[:50]):
        raise CheckpointError(
            f"the big model's text tokenizer does not fit task {task.name!r} ({task.modality} data, "
            f"{task.tokenizer.kind} tokens); use a big model trained on this kind of data"
        )

    def lm(split):
        toks, idx = pack_documents([tokenizer.encode(d) for d in split.docs], task.seq_len, tokenizer.eos_id, None)
        if len(toks) == 0:
            raise CheckpointError(f"task {task.name!r}: a split has fewer than {task.seq_len} tokens")
        return Split(toks, None, idx, split.docs)

    def cls(split):
        toks = np.full((len(split), task.seq_len), tokenizer.pad_id, np.int64)
        for i, j in enumerate(split.doc_index):
            ids = tokenizer.encode_cls(split.docs[j])[: task.seq_len]
            toks[i, : len(ids)] = ids
        return Split(toks, split.labels, split.doc_index, split.docs)

    f = lm if task.kind == "lm" else cls
    return dataclasses.replace(
        task,
        tokenizer=tokenizer,
        train=f(task.train),
        eval=f(task.eval),
        description=task.description + " [big model's tokenizer]",
    )


def task_for_checkpoint(task, directory: str | Path):
    """The task as a checkpoint reads it: re-tokenized when the checkpoint carries a pretrained model's tokenizer."""
    from .tokenizers import TOKENIZER_FILE, load_tokenizer

    if not Path(directory, TOKENIZER_FILE).is_file():
        return task
    tok = load_tokenizer(directory)
    return fit_task(task, tok) if tok.kind == "hf" else task
