"""Task registry, built-in data, user task files and their validation errors, baselines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from projdeploy.errors import ConfigError, DataError, UnknownNameError
from projdeploy.tasks import FAMILIES, builtin_task_names, get_task
from projdeploy.tasks.baselines import baseline
from projdeploy.tasks.pycode import domains


def test_registry_counts_builtin_tasks():
    assert sorted(FAMILIES) == ["digits", "digits-cls", "pycode", "pycode-cls"]
    names = builtin_task_names()
    # 4 families + 3 digits variants + one per stdlib package
    assert len(names) == 4 + 3 + len(domains())
    assert {"digits:0-4", "digits:7", "pycode:email", "pycode:asyncio"} <= set(names)
    assert len(domains()) >= 15


def test_unknown_task_lists_known():
    with pytest.raises(UnknownNameError, match="known tasks: .*digits-cls"):
        get_task("imagenet")
    with pytest.raises(UnknownNameError, match="pycode domain"):
        get_task("pycode:nonexistent_pkg")
    with pytest.raises(UnknownNameError, match="class spec"):
        get_task("digits:12")


def test_digits_tasks():
    t = get_task("digits:0-4")
    assert t.kind == "lm" and t.seq_len == 64 and t.tokenizer.vocab_size == 19
    assert (t.train.tokens[:, 0] == t.tokenizer.bos_id).all() and t.train.tokens[:, 1:].max() <= 16
    one = get_task("digits:7")
    assert 0 < len(one.train) < len(t.train)
    c = get_task("digits-cls")
    assert c.kind == "cls" and c.num_labels == 10 and c.train.tokens.shape[1] == 64
    assert len(c.train) + len(c.eval) == 1797
    # deterministic split: same rows every time, no overlap
    tr = {r.tobytes() for r in c.train.tokens}
    assert len(tr & {r.tobytes() for r in c.eval.tokens}) < 5  # only duplicate images may coincide


def test_pycode_split_is_deterministic_and_disjoint():
    t = get_task("pycode:json")
    assert t.kind == "lm" and t.metric == "bits_per_byte" and t.seq_len == 128
    assert set(t.train.docs).isdisjoint(t.eval.docs)
    from projdeploy.tasks.pycode import pycode

    t2 = pycode("json")
    assert np.array_equal(t.train.tokens, t2.train.tokens)


def test_bpe_tokenizer_roundtrip_and_bytes():
    from projdeploy.tasks.tokenizers import BPETokenizer

    texts = ["def f(x):\n    return x + 1\n"] * 20 + ["import os\nprint(os.getcwd())\n"] * 20
    tok = BPETokenizer.train(texts, 300)
    ids = tok.encode(texts[0])
    assert tok.decode(ids) == texts[0]
    assert tok.token_bytes(np.array(ids)).sum() == len(texts[0].encode())


def test_baselines_are_sane():
    name, v = baseline(get_task("digits:0-4"))
    assert name == "per-position pixel histogram" and 1.5 < v < np.log2(17)
    name, v = baseline(get_task("pycode:json"))
    assert name == "byte bigram" and 2.0 < v < 8.0


# --- user task files --------------------------------------------------------------------
def _write(tmp_path, yaml_text, files=None):
    for name, content in (files or {}).items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content) if isinstance(content, bytes) else p.write_text(content)
    f = tmp_path / "task.yaml"
    f.write_text(yaml_text)
    return str(f)


def test_user_text_classification_jsonl(tmp_path):
    rows = [
        {"text": f"good movie {i}" if i % 2 else f"bad film {i}", "label": "pos" if i % 2 else "neg"} for i in range(60)
    ]
    f = _write(
        tmp_path,
        "name: reviews\ntype: text-cls\nseq_len: 24\ndata:\n  train: d.jsonl\n",
        {"d.jsonl": "\n".join(json.dumps(r) for r in rows)},
    )
    t = get_task(f)
    assert t.kind == "cls" and t.labels == ["neg", "pos"] and t.train.tokens.shape[1] == 24
    assert len(t.train) + len(t.eval) == 60 and len(t.eval) > 0


def test_user_text_lm_and_csv(tmp_path):
    text = "\n\n".join(f"paragraph {i} " + "lorem ipsum " * 20 for i in range(30))
    f = _write(tmp_path, "name: notes\ntype: text-lm\nseq_len: 32\ndata:\n  train: a.txt\n", {"a.txt": text})
    t = get_task(f)
    assert t.kind == "lm" and t.train.tokens.shape[1] == 33
    csv_text = "text,label\n" + "\n".join(f"row {i},{i % 3}" for i in range(40))
    (tmp_path / "sub").mkdir()
    f2 = _write(tmp_path / "sub", "name: c\ntype: text-cls\nseq_len: 8\ndata:\n  train: d.csv\n", {"d.csv": csv_text})
    assert get_task(f2).labels == ["0", "1", "2"]


def test_user_images_npz_and_png(tmp_path):
    rng = np.random.default_rng(0)
    buf = tmp_path / "imgs.npz"
    np.savez(buf, images=rng.integers(0, 255, (50, 6, 6)), labels=np.arange(50) % 2)
    t = get_task(_write(tmp_path, "name: im\ntype: image-cls\nlevels: 8\ndata:\n  train: imgs.npz\n"))
    assert t.kind == "cls" and t.train.tokens.shape[1] == 36 and t.train.tokens.max() < 8
    from PIL import Image

    for c in ("cat", "dog"):
        (tmp_path / "png" / c).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 255, (4, 4)).astype(np.uint8)).save(tmp_path / "png" / c / f"{i}.png")
    sub = tmp_path / "p"
    sub.mkdir()
    t = get_task(_write(sub, "name: pets\ntype: image-lm\ndata:\n  train: ../png\n"))
    assert t.kind == "lm" and t.seq_len == 16 and t.image_shape == (4, 4)


@pytest.mark.parametrize(
    "yaml_text,exc,field",
    [
        ("name: x\ntype: audio\ndata: {train: a.txt}\n", ConfigError, "'type'"),
        ("type: text-lm\ndata: {train: a.txt}\n", ConfigError, "'name'"),
        ("name: x\ntype: text-lm\n", ConfigError, "'data.train'"),
        ("name: x\ntype: text-lm\ncolour: red\ndata: {train: a.txt}\n", ConfigError, "'colour'"),
        ("name: x\ntype: text-lm\nseq_len: -3\ndata: {train: a.txt}\n", ConfigError, "'seq_len'"),
        ("name: x\ntype: text-lm\ndata: {train: a.txt, format: docx}\n", ConfigError, "'data.format'"),
        ("name: x\ntype: text-lm\ntokenizer: wordpiece\ndata: {train: a.txt}\n", ConfigError, "'tokenizer'"),
        ("name: x\ntype: text-cls\ndata: {train: d.jsonl, label_field: y}\n", ConfigError, "'data.label_field'"),
        ("name: x\ntype: text-lm\ndata: {train: missing.txt}\n", DataError, "missing.txt"),
        ("[not, a, mapping]\n", ConfigError, "<document>"),
        ("name: x\ntype: text-lm\n  bad: [indent\n", ConfigError, "YAML"),
    ],
)
def test_task_file_errors_name_file_and_field(tmp_path, yaml_text, exc, field):
    f = _write(tmp_path, yaml_text, {"a.txt": "hello world " * 100, "d.jsonl": json.dumps({"text": "a", "label": 1})})
    with pytest.raises(exc) as e:
        get_task.__wrapped__(f)
    assert field in str(e.value) and "task.yaml" in str(e.value)


def test_user_task_from_local_hf_dataset(tmp_path):
    import datasets

    rows = {
        "text": [f"{'great' if i % 2 else 'awful'} thing number {i}" for i in range(40)],
        "label": ["pos" if i % 2 else "neg" for i in range(40)],
    }
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "ds"))
    datasets.Dataset.from_dict(rows).to_parquet(str(tmp_path / "d.parquet"))
    t = get_task(_write(tmp_path, "name: hf\ntype: text-cls\nseq_len: 16\ndata:\n  train: ds\n"))
    assert t.labels == ["neg", "pos"] and len(t.train) + len(t.eval) == 40
    (tmp_path / "p").mkdir()
    t2 = get_task(
        _write(
            tmp_path / "p",
            "name: hf2\ntype: text-cls\nseq_len: 16\ndata:\n  train: ../d.parquet\n  format: hf-dataset\n",
        )
    )
    assert t2.name == "hf2"
    assert np.array_equal(t2.train.tokens, t.train.tokens)
