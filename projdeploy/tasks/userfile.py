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
import dataclasses
import hashlib
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
        from ..check.budgets import validate_budget

        validate_budget(spec["budget"], f"{src}: budget")
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
        eval_p=eval_p,
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
        task = _image_task(name, ttype, train_p, eval_p, frac, levels, budget, ctx)
        return dataclasses.replace(task, data_files=data_files(train_p, eval_p))
    if fmt in ("npz", "png-folder"):
        raise ConfigError(src, "data.format", f"text tasks read text, jsonl, csv or hf-dataset, got {fmt!r}")
    tok_name = spec.get("tokenizer", "byte")
    if tok_name not in ("byte", "bpe"):
        raise ConfigError(src, "tokenizer", f"got {tok_name!r}; allowed: byte, bpe")
    task = _text_task(
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
    return dataclasses.replace(task, data_files=data_files(train_p, eval_p))


def data_files(train_p: Path, eval_p: Path | None) -> dict:
    """Resolved path and sha256 of each data file (a folder: sha256 over its files' relative paths and digests)."""
    from ..fsutil import sha256_file

    def digest(p: Path) -> str:
        if p.is_file():
            return sha256_file(p)
        h = hashlib.sha256()
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            h.update(f"{f.relative_to(p).as_posix()}\0{sha256_file(f)}\n".encode())
        return h.hexdigest()

    out = {"data.train": {"path": str(train_p.resolve()), "sha256": digest(train_p)}}
    if eval_p is not None:
        out["data.eval"] = {"path": str(eval_p.resolve()), "sha256": digest(eval_p)}
    return out


def _int(spec, key, default, src, lo, hi):
    v = spec.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ConfigError(src, key, f"got {v!r:.60}; allowed: an integer from {lo} to {hi}")
    return v


# --- reading records -----------------------------------------------------------------
def _records(p: Path, ctx) -> list[tuple[str, object]]:
    """(text, label) records from a text/jsonl/csv/hf-dataset file."""
    fmt, src = ctx["fmt"], ctx["src"]
    field = _field(p, ctx)
    if p.is_dir() and fmt != "hf-dataset":
        raise ConfigError(src, field, f"{p} is a directory; format {fmt} reads a file")
    try:
        return _rows_to_records(_rows(p, ctx), p, ctx)
    except UnicodeDecodeError as e:
        raise ConfigError(src, field, f"{p} is not UTF-8 text (byte {e.start})") from None


def _field(p: Path, ctx) -> str:
    return "data.eval" if ctx.get("eval_p") is not None and p == ctx["eval_p"] else "data.train"


def _rows(p: Path, ctx) -> list:
    fmt, cls_, src = ctx["fmt"], ctx["is_cls"], ctx["src"]
    if fmt == "text":
        if cls_:
            raise ConfigError(src, "data.format", "classification needs jsonl, csv or hf-dataset (text + label)")
        return [{"text": t} for t in p.read_text(encoding="utf-8").split("\n\n") if t.strip()]
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
    return rows


def _rows_to_records(rows: list, p: Path, ctx) -> list[tuple[str, object]]:
    tf, lf, cls_, src = ctx["text_field"], ctx["label_field"], ctx["is_cls"], ctx["src"]
    if ctx["fmt"] == "text":
        tf = "text"
    out = []
    for n, r in enumerate(rows, 1):
        if not isinstance(r, dict) or tf not in r:
            raise ConfigError(src, "data.text_field", f"record {n} of {p.name} has no field {tf!r}")
        if not isinstance(r[tf], str):
            raise ConfigError(
                src, "data.text_field", f"record {n} of {p.name}: {tf!r} is a {type(r[tf]).__name__}; allowed: a string"
            )
        if cls_ and lf not in r:
            raise ConfigError(src, "data.label_field", f"record {n} of {p.name} has no field {lf!r}")
        if cls_ and (isinstance(r[lf], (bool, float)) or not isinstance(r[lf], (str, int))):
            raise ConfigError(
                src, "data.label_field", f"record {n} of {p.name}: label {r[lf]!r:.40}; allowed: a string or integer"
            )
        out.append((r[tf], str(r[lf]) if cls_ else None))
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


def _images(p: Path, fmt: str, src: str, field: str = "data.train"):
    if fmt == "npz":
        imgs, labels = _npz(p, src, field)
    else:
        imgs, labels = _png_folder(p, src, field)
    if not np.isfinite(imgs).all() or (imgs < 0).any():
        raise ConfigError(src, field, f"{p}: pixel values must be finite and >= 0 (found NaN, inf or negatives)")
    return imgs, labels


def _npz(p: Path, src: str, field: str):
    import zipfile

    if p.is_dir():
        raise ConfigError(src, field, f"{p} is a directory; format npz reads a file")
    try:
        with np.load(p, allow_pickle=False) as z:
            if "images" not in z:
                raise ConfigError(src, field, f"{p.name} must hold an 'images' array (N,H,W) and optional 'labels'")
            raw = z["images"]
            lab = z["labels"] if "labels" in z else None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise ConfigError(src, field, f"{p}: not a readable NPZ of numeric arrays ({str(e)[:120]})") from None
    if raw.dtype.kind not in "biuf":
        raise ConfigError(src, field, f"{p.name}: 'images' has dtype {raw.dtype}; allowed: integers or floats")
    if lab is not None and (lab.ndim != 1 or len(lab) != len(raw) or lab.dtype.kind not in "biuU"):
        raise ConfigError(
            src, field, f"{p.name}: 'labels' must be {len(raw)} integers or strings (one per image), got {lab.shape}"
        )
    imgs = raw.astype(np.float64)
    return imgs, ([str(x) for x in lab] if lab is not None else [None] * len(imgs))


def _png_folder(p: Path, src: str, field: str):
    from PIL import Image, UnidentifiedImageError

    if not p.is_dir():
        raise ConfigError(src, field, f"{p} is not a directory; format png-folder reads <dir>/<class>/*.png")
    imgs, labels = [], []
    for cls_dir in sorted(d for d in p.iterdir() if d.is_dir()):
        for f in sorted(cls_dir.glob("*.png")):
            try:
                with Image.open(f) as im:
                    imgs.append(np.asarray(im.convert("L"), dtype=np.float64))
            except (UnidentifiedImageError, OSError, ValueError) as e:
                raise ConfigError(src, field, f"{f}: not a readable PNG ({str(e)[:120]})") from None
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
        e_imgs, e_labels = _images(eval_p, ctx["fmt"], src, "data.eval")
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
