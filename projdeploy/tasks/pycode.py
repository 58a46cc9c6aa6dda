"""Built-in text tasks from the Python standard library's own source files.

``pycode`` is the generic corpus (all packages, capped in size);
``pycode:<package>`` is one domain (``pycode:email``, ``pycode:asyncio``...).
Files go to the eval split by a stable hash of their relative path, the same
rule for the generic corpus and every domain, so a domain's eval files are
never in the generic training data. Metric: bits per byte (and perplexity).
"""

from __future__ import annotations

import functools
import os
import sysconfig
from pathlib import Path

from ..errors import UnknownNameError
from .base import Split, Task, is_eval_key, pack_documents, stable_hash
from .tokenizers import BPETokenizer, ByteTokenizer

EXCLUDED = {"test", "idlelib", "encodings", "pydoc_data", "site-packages", "lib2to3", "turtledemo", "__phello__"}
SEQ_LEN = 128
GENERIC_MAX_TRAIN_BYTES = 3_000_000
DOMAIN_MAX_BYTES = 2_000_000


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


@functools.cache
def domains() -> tuple[str, ...]:
    root = stdlib_root()
    return tuple(sorted(d for d in os.listdir(root) if d not in EXCLUDED and (root / d / "__init__.py").is_file()))


def _files(domain: str | None) -> list[tuple[str, Path]]:
    root = stdlib_root()
    dirs = [domain] if domain else list(domains())
    out = []
    for d in dirs:
        for r, subdirs, files in os.walk(root / d):
            subdirs[:] = sorted(s for s in subdirs if s not in ("test", "tests", "__pycache__"))
            for f in sorted(files):
                if f.endswith(".py"):
                    p = Path(r) / f
                    out.append((p.relative_to(root).as_posix(), p))
    if domain is None:  # top-level modules belong to the generic corpus only
        out += [(p.name, p) for p in sorted(root.glob("*.py"))]
    return out


def _held_out(rels: list[str]) -> set[str]:
    """Eval files: by path hash; a package with none holds out its first file in hash order.

    Computed per package, so the generic corpus and every domain agree on it.
    """
    by_pkg: dict[str, list[str]] = {}
    for rel in rels:
        by_pkg.setdefault(rel.split("/")[0] if "/" in rel else "", []).append(rel)
    out = set()
    for pkg, members in by_pkg.items():
        chosen = {r for r in members if is_eval_key(r)}
        if not chosen and pkg and len(members) > 1:
            chosen = {min(members, key=stable_hash)}
        out |= chosen
    return out


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def pycode(
    domain: str | None = None, tokenizer: str = "byte", bpe_vocab_size: int = 512, seq_len: int = SEQ_LEN
) -> Task:
    if domain is not None and domain not in domains():
        raise UnknownNameError("pycode domain", domain, domains())
    files = _files(domain)
    train_docs, eval_docs = [], []
    ordered = sorted(files, key=lambda x: stable_hash(x[0]))  # a capped sample is diverse
    held_out = _held_out([rel for rel, _ in ordered])
    for rel, path in ordered:
        (eval_docs if rel in held_out else train_docs).append(_read(path))
    cap = DOMAIN_MAX_BYTES if domain else GENERIC_MAX_TRAIN_BYTES
    train_docs = _cap(train_docs, cap)
    eval_docs = _cap(eval_docs, max(cap // 8, 200_000))
    if tokenizer == "byte":
        tok = ByteTokenizer()
    elif tokenizer == "bpe":
        tok = BPETokenizer.train(train_docs, bpe_vocab_size)
    else:
        raise UnknownNameError("tokenizer", tokenizer, ["byte", "bpe"])

    def split(docs):
        toks, idx = pack_documents([tok.encode(t) for t in docs], seq_len, tok.eos_id, None)
        return Split(toks, None, idx, docs)

    name = f"pycode:{domain}" if domain else "pycode"
    what = f"the {domain} package" if domain else "all standard-library packages"
    return Task(
        name=name,
        kind="lm",
        modality="text",
        description=f"Python source of {what} ({tokenizer} tokens, {seq_len}-token windows)",
        tokenizer=tok,
        train=split(train_docs),
        eval=split(eval_docs),
        metric="bits_per_byte",
    )


def generic_train_files(exclude: tuple[str, ...] = (), max_bytes: int = GENERIC_MAX_TRAIN_BYTES):
    """(package, text) of the generic corpus's training files outside the ``exclude`` packages, in the corpus's
    order (top-level modules have package ``""``); eval files are never included. For continued pretraining
    of pretrained big models with the evaluated domains held out."""
    files = sorted(_files(None), key=lambda x: stable_hash(x[0]))
    held_out = _held_out([rel for rel, _ in files])
    out, total = [], 0
    for rel, path in files:
        pkg = rel.split("/")[0] if "/" in rel else ""
        if rel in held_out or pkg in exclude:
            continue
        if total >= max_bytes:
            break
        text = _read(path)
        out.append((pkg, text))
        total += len(text)
    return out


def _cap(docs: list[str], max_bytes: int) -> list[str]:
    out, total = [], 0
    for d in docs:
        if total >= max_bytes:
            break
        out.append(d)
        total += len(d)
    return out
