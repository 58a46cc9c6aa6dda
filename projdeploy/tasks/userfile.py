"""User tasks from a YAML task file.

Schema (paths are relative to the YAML file)::

    name: my-task                 # required; a safe file name (projdeploy.layout.NAME_RULE)
    type: text-lm                 # text-lm | text-cls | image-lm | image-cls
    data:
      train: data/train.jsonl     # required
      eval: data/eval.jsonl       # optional; else a hash split of train
      format: jsonl               # text | jsonl | csv | npz | png-folder | hf-dataset (default: from suffix)
      text_field: text            # jsonl / csv / hf-dataset
      label_field: label          # classification
      eval_fraction: 0.1
    tokenizer: byte               # text: byte | bpe
    bpe_vocab_size: 512
    seq_len: 128                  # text: window (lm) or max length (cls)
    levels: 17                    # images: intensity levels
    budget: {max_size_mb: 20}     # optional overrides of the default budget

Every error names the file, the field and what is allowed.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..config import load_yaml_mapping
from ..errors import ConfigError, DataError
from ..layout import NAME_RULE, safe_component
from .base import DEFAULT_BUDGET, Split, Task, is_eval_key, pack_documents
from .tokenizers import BPETokenizer, ByteTokenizer, PixelTokenizer

TYPES = ("text-lm", "text-cls", "image-lm", "image-cls")
FORMATS = ("text", "jsonl", "csv", "npz", "png-folder", "hf-dataset")
TOP_FIELDS = {"name", "type", "data", "tokenizer", "bpe_vocab_size", "seq_len", "levels", "budget", "description"}
DATA_FIELDS = {"train", "eval", "format", "text_field", "label_field", "eval_fraction"}
SUFFIX_FORMAT = {".txt": "text", ".jsonl": "jsonl", ".csv": "csv", ".npz": "npz"}


def load_task_file(path: str | Path) -> Task:
    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise DataError(f"task file {src!r} does not exist")
    spec = load_yaml_mapping(path, TOP_FIELDS)
    if "name" not in spec:
        raise ConfigError(src, "name", "required; " + NAME_RULE)
    name = safe_component(spec["name"], src, "name")
    ttype = spec.get("type")
    if ttype not in TYPES:
        raise ConfigError(src, "type", f"got {ttype!r}; allowed: {', '.join(TYPES)}")
    data = spec.get("data")
    if not isinstance(data, dict) or "train" not in data:
        raise ConfigError(src, "data.train", "required: path of the training data")
    unknown = set(data) - DATA_FIELDS
    if unknown:
        raise ConfigError(
            src, f"data.{sorted(unknown)[0]}", "unknown field; allowed: " + ", ".join(sorted(DATA_FIELDS))
        )
    fmt = data.get("format") or SUFFIX_FORMAT.get(Path(str(data["train"])).suffix)
    if fmt is None and Path(path.parent, str(data["train"])).is_dir():
        fmt = "png-folder" if ttype.startswith("image") else "hf-dataset"
    if fmt not in FORMATS:
        raise ConfigError(src, "data.format", f"got {fmt!r}; allowed: {', '.join(FORMATS)}")
    frac = data.get("eval_fraction", 0.1)
    if not isinstance(frac, (int, float)) or not 0 < frac < 1:
        raise ConfigError(src, "data.eval_fraction", f"got {frac!r}; allowed: a number between 0 and 1")
    seq_len = _int(spec, "seq_len", 128, src, 4, 4096)
    budget = dict(DEFAULT_BUDGET)
    if "budget" in spec:
        if not isinstance(spec["budget"], dict) or set(spec["budget"]) - set(DEFAULT_BUDGET):
            raise ConfigError(src, "budget", "a mapping with fields " + ", ".join(sorted(DEFAULT_BUDGET)))
        budget.update(spec["budget"])

    def resolve(key):
        p = Path(path.parent, str(data[key]))
        if not p.exists():
            raise DataError(f"{src}: data.{key}: path {str(p)!r} does not exist")
        return p

    train_p = resolve("train")
    eval_p = resolve("eval") if data.get("eval") else None
    is_cls = ttype.endswith("cls")
    ctx = dict(
        src=src,
        fmt=fmt,
        text_field=data.get("text_field", "text"),
        label_field=data.get("label_field", "label"),
        is_cls=is_cls,
    )
    if ttype.startswith("image"):
        if fmt not in ("npz", "png-folder"):
            raise ConfigError(src, "data.format", f"image tasks read npz or png-folder, got {fmt!r}")
        levels = _int(spec, "levels", 17, src, 2, 256)
        return _image_task(name, ttype, train_p, eval_p, frac, levels, budget, ctx)
    if fmt in ("npz", "png-folder"):
        raise ConfigError(src, "data.format", f"text tasks read text, jsonl, csv or hf-dataset, got {fmt!r}")
    tok_name = spec.get("tokenizer", "byte")
    if tok_name not in ("byte", "bpe"):
        raise ConfigError(src, "tokenizer", f"got {tok_name!r}; allowed: byte, bpe")
    return _text_task(
        name,
        ttype,
        train_p,
        eval_p,
        frac,
        seq_len,
        tok_name,
        _int(spec, "bpe_vocab_size", 512, src, 300, 65536),
        budget,
        ctx,
    )


def _int(spec, key, default, src, lo, hi):
    v = spec.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ConfigError(src, key, f"got {v!r}; allowed: an integer from {lo} to {hi}")
    return v


# --- reading records -----------------------------------------------------------------
def _records(p: Path, ctx) -> list[tuple[str, object]]:
    """(text, label) records from a text/jsonl/csv/hf-dataset file."""
    fmt, tf, lf, cls_, src = ctx["fmt"], ctx["text_field"], ctx["label_field"], ctx["is_cls"], ctx["src"]
    if fmt == "text":
        if cls_:
            raise ConfigError(src, "data.format", "classification needs jsonl, csv or hf-dataset (text + label)")
        return [(t, None) for t in p.read_text(encoding="utf-8").split("\n\n") if t.strip()]
    rows = []
    if fmt == "jsonl":
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(f"{p}:{n}: not valid JSON ({e.msg})") from None
    elif fmt == "csv":
        with open(p, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    elif fmt == "hf-dataset":
        try:
            import datasets
        except ImportError:
            raise DataError(f"{src}: data.format hf-dataset needs the 'datasets' package") from None
        ds = datasets.load_from_disk(str(p)) if p.is_dir() else datasets.Dataset.from_parquet(str(p))
        rows = list(ds)
    out = []
    for n, r in enumerate(rows, 1):
        if not isinstance(r, dict) or tf not in r:
            raise ConfigError(src, "data.text_field", f"record {n} of {p.name} has no field {tf!r}")
        if cls_ and lf not in r:
            raise ConfigError(src, "data.label_field", f"record {n} of {p.name} has no field {lf!r}")
        out.append((str(r[tf]), str(r[lf]) if cls_ else None))
    if not out:
        raise DataError(f"{p}: no records")
    return out


def _split_records(recs, eval_recs, frac):
    if eval_recs is not None:
        return recs, eval_recs
    tr = [r for i, r in enumerate(recs) if not is_eval_key(f"{i}:{r[0][:64]}", frac)]
    ev = [r for i, r in enumerate(recs) if is_eval_key(f"{i}:{r[0][:64]}", frac)]
    if not ev or not tr:
        raise DataError(f"too few records ({len(recs)}) for a train/eval split; give data.eval")
    return tr, ev


def _text_task(name, ttype, train_p, eval_p, frac, seq_len, tok_name, bpe_vocab, budget, ctx):
    tr, ev = _split_records(_records(train_p, ctx), _records(eval_p, ctx) if eval_p else None, frac)
    tok = BPETokenizer.train([t for t, _ in tr], bpe_vocab) if tok_name == "bpe" else ByteTokenizer()
    if ttype == "text-lm":

        def split(recs):
            docs = [t for t, _ in recs]
            toks, idx = pack_documents([tok.encode(t) for t in docs], seq_len, tok.eos_id, None)
            if len(toks) == 0:
                raise DataError(f"{ctx['src']}: split has fewer than seq_len={seq_len} tokens")
            return Split(toks, None, idx, docs)

        return Task(
            name,
            "lm",
            "text",
            f"user text LM task from {train_p}",
            tok,
            split(tr),
            split(ev),
            "bits_per_byte",
            budget=budget,
            source=ctx["src"],
        )
    labels = sorted({lab for _, lab in tr})
    lab_id = {lab: i for i, lab in enumerate(labels)}

    def split(recs):
        unknown = {lab for _, lab in recs} - set(lab_id)
        if unknown:
            raise DataError(f"{ctx['src']}: eval labels {sorted(unknown)[:5]} never appear in train")
        toks = np.full((len(recs), seq_len), tok.pad_id, np.int64)
        for i, (t, _) in enumerate(recs):
            ids = tok.encode(t)[:seq_len]
            toks[i, : len(ids)] = ids
        return Split(
            toks, np.array([lab_id[lab] for _, lab in recs], np.int64), np.arange(len(recs)), [t for t, _ in recs]
        )

    return Task(
        name,
        "cls",
        "text",
        f"user text classification task from {train_p}",
        tok,
        split(tr),
        split(ev),
        "accuracy",
        labels=labels,
        budget=budget,
        source=ctx["src"],
    )


def _images(p: Path, fmt: str, src: str):
    if fmt == "npz":
        with np.load(p, allow_pickle=False) as z:
            if "images" not in z:
                raise ConfigError(
                    src, "data.train", f"{p.name} must hold an 'images' array (N,H,W) and optional 'labels'"
                )
            imgs = z["images"].astype(np.float64)
            labels = [str(x) for x in z["labels"]] if "labels" in z else [None] * len(imgs)
        return imgs, labels
    from PIL import Image

    imgs, labels = [], []
    for cls_dir in sorted(d for d in p.iterdir() if d.is_dir()):
        for f in sorted(cls_dir.glob("*.png")):
            imgs.append(np.asarray(Image.open(f).convert("L"), dtype=np.float64))
            labels.append(cls_dir.name)
    if not imgs:
        raise DataError(f"{p}: no PNG files in class subfolders (expected {p}/<class>/*.png)")
    if len({im.shape for im in imgs}) > 1:
        raise DataError(f"{p}: images have different shapes {sorted({im.shape for im in imgs})[:3]}")
    return np.stack(imgs), labels


def _image_task(name, ttype, train_p, eval_p, frac, levels, budget, ctx):
    src = ctx["src"]
    imgs, labels = _images(train_p, ctx["fmt"], src)
    if imgs.ndim != 3:
        raise DataError(f"{train_p}: images must be (N, H, W) grayscale, got shape {imgs.shape}")
    if eval_p is not None:
        e_imgs, e_labels = _images(eval_p, ctx["fmt"], src)
    else:
        mask = np.array([is_eval_key(f"{i}", frac) for i in range(len(imgs))])
        e_imgs, e_labels = imgs[mask], [lab for lab, m in zip(labels, mask) if m]
        imgs, labels = imgs[~mask], [lab for lab, m in zip(labels, mask) if not m]
    tok = PixelTokenizer(levels)
    vmax = max(float(imgs.max()), 1.0)
    seq = lambda ims: np.stack([tok.encode_image(im, vmax) for im in ims])  # noqa: E731
    tr_s, ev_s = seq(imgs), seq(e_imgs)
    if ttype == "image-lm":
        bos = lambda s: np.concatenate([np.full((len(s), 1), tok.bos_id), s], 1)  # noqa: E731
        return Task(
            name,
            "lm",
            "image",
            f"user image-modelling task from {train_p}",
            tok,
            Split(bos(tr_s), None, np.arange(len(tr_s)), list(tr_s)),
            Split(bos(ev_s), None, np.arange(len(ev_s)), list(ev_s)),
            "bits_per_dim",
            budget=budget,
            image_shape=imgs.shape[1:],
            source=src,
        )
    if any(lab is None for lab in labels):
        raise ConfigError(src, "data.train", "image-cls needs labels (npz 'labels' array or class folders)")
    names = sorted(set(labels))
    lab_id = {lab: i for i, lab in enumerate(names)}
    if set(e_labels) - set(names):
        raise DataError(f"{src}: eval labels {sorted(set(e_labels) - set(names))[:5]} never appear in train")
    return Task(
        name,
        "cls",
        "image",
        f"user image classification task from {train_p}",
        tok,
        Split(tr_s, np.array([lab_id[x] for x in labels]), np.arange(len(tr_s)), list(tr_s)),
        Split(ev_s, np.array([lab_id[x] for x in e_labels]), np.arange(len(ev_s)), list(ev_s)),
        "accuracy",
        labels=names,
        budget=budget,
        image_shape=imgs.shape[1:],
        source=src,
    )
