"""Tokenizers: pixel levels (images), bytes (text, default) and a trainable BPE.

Each tokenizer saves itself as ``projdeploy_tokenizer.json`` in a checkpoint
(BPE also writes Hugging Face's ``tokenizer.json``) and is rebuilt by
:func:`load_tokenizer`. No pickle anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, ConfigError, ProjdeployError, UnknownNameError

TOKENIZER_FILE = "projdeploy_tokenizer.json"


class PixelTokenizer:
    """Image intensities quantised to ``levels`` tokens; then BOS and PAD."""

    kind = "pixel"

    def __init__(self, levels: int = 17):
        self.levels = levels
        self.bos_id, self.pad_id, self.eos_id = levels, levels + 1, None
        self.vocab_size = levels + 2

    def encode_image(self, img: np.ndarray, max_value: float) -> np.ndarray:
        q = np.rint(np.asarray(img, dtype=np.float64) / max_value * (self.levels - 1))
        return np.clip(q, 0, self.levels - 1).astype(np.int64).reshape(-1)

    def to_dict(self) -> dict:
        return {
            "type": self.kind,
            "levels": self.levels,
            "vocab_size": self.vocab_size,
            "bos_id": self.bos_id,
            "pad_id": self.pad_id,
        }

    def token_bytes(self, ids: np.ndarray) -> np.ndarray:
        return np.ones_like(ids)


class ByteTokenizer:
    """UTF-8 bytes 0..255, then BOS, EOS, PAD."""

    kind = "byte"

    def __init__(self):
        self.bos_id, self.eos_id, self.pad_id = 256, 257, 258
        self.vocab_size = 259

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")

    def token_bytes(self, ids: np.ndarray) -> np.ndarray:
        return (np.asarray(ids) < 256).astype(np.int64)

    def to_dict(self) -> dict:
        return {
            "type": self.kind,
            "vocab_size": self.vocab_size,
            "bos_id": self.bos_id,
            "eos_id": self.eos_id,
            "pad_id": self.pad_id,
        }


class BPETokenizer:
    """Byte-level BPE from Hugging Face ``tokenizers``, trained on the task's train split."""

    kind = "bpe"
    SPECIALS = ["<bos>", "<eos>", "<pad>"]

    def __init__(self, tok):
        self.tok = tok
        self.bos_id, self.eos_id, self.pad_id = (tok.token_to_id(s) for s in self.SPECIALS)
        self.vocab_size = tok.get_vocab_size()
        self._nbytes = None

    @classmethod
    def train(cls, texts, vocab_size: int = 512) -> BPETokenizer:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=cls.SPECIALS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer)
        return cls(tok)

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text).ids

    def decode(self, ids) -> str:
        return self.tok.decode(list(ids))

    def token_bytes(self, ids: np.ndarray) -> np.ndarray:
        if self._nbytes is None:
            from tokenizers import pre_tokenizers  # noqa: F401  (byte-level alphabet)

            inv = _bytelevel_inverse()
            table = np.zeros(self.vocab_size, dtype=np.int64)
            for token, i in self.tok.get_vocab().items():
                table[i] = 0 if token in self.SPECIALS else sum(1 for ch in token if ch in inv)
            self._nbytes = table
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


def _bytelevel_inverse() -> dict:
    # GPT-2 byte-to-unicode map: every byte is one printable character.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def save_tokenizer(tokenizer, directory: str | Path) -> None:
    d = tokenizer.to_dict()
    Path(directory, TOKENIZER_FILE).write_text(json.dumps(d, indent=1, sort_keys=True))
    if tokenizer.kind == "bpe":
        tokenizer.tok.save(str(Path(directory, "tokenizer.json")))
    elif tokenizer.kind == "hf":
        tokenizer.save_hf(directory)


def tokenizer_from_dict(d: dict, source: str = TOKENIZER_FILE):
    if not isinstance(d, dict):
        raise ConfigError(source, "<document>", f"must be a JSON object, got {type(d).__name__}")
    kind = d.get("type")
    if kind == "pixel":
        levels = d.get("levels")
        if not isinstance(levels, int) or isinstance(levels, bool) or not 2 <= levels <= 256:
            raise ConfigError(source, "levels", f"got {levels!r:.40}; allowed: an integer from 2 to 256")
        return PixelTokenizer(levels)
    if kind == "byte":
        return ByteTokenizer()
    if kind not in ("bpe", "hf"):
        raise UnknownNameError("tokenizer type", str(kind)[:40], ["pixel", "byte", "bpe", "hf"])
    try:
        if kind == "bpe":
            from tokenizers import Tokenizer

            if not isinstance(d.get("hf_tokenizer"), dict):
                raise ConfigError(source, "hf_tokenizer", "must be a tokenizers JSON object")
            return BPETokenizer(Tokenizer.from_str(json.dumps(d["hf_tokenizer"])))
        from .hf_tokenizer import HFTokenizer

        return HFTokenizer.from_dict(d)
    except ProjdeployError:
        raise
    except Exception as e:  # the tokenizers library rejects malformed JSON with its own exception type
        why = " ".join(str(e).split())[:160]
        raise ConfigError(source, "hf_tokenizer", f"not a usable {kind} tokenizer ({why})") from None


def load_tokenizer(directory: str | Path):
    p = Path(directory, TOKENIZER_FILE)
    if not p.is_file():
        raise CheckpointError(f"{directory}: no {TOKENIZER_FILE}")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(str(p), "<document>", f"not valid UTF-8 JSON ({str(e)[:120]})") from None
    return tokenizer_from_dict(d, str(p))
