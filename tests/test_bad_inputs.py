"""Every bad input is one clear error: exit 2, no traceback, the field named, the output location unchanged.

Each case builds its inputs in a fresh folder, snapshots that folder, runs the CLI in-process and checks
the four promises. Checkpoint cases corrupt a tiny valid checkpoint; task cases a small valid task file.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from projdeploy.cli import cli
from tests.test_layout import snapshot


def _ckpt(d: Path) -> Path:
    from projdeploy.models import build_model, config_for
    from projdeploy.models.checkpoint import write_model_files
    from projdeploy.tasks import get_task

    task = get_task("digits-cls")
    cfg = config_for("tiny", task.tokenizer.vocab_size, num_labels=10, id2label={i: str(i) for i in range(10)})
    out = d / "ckpt"
    out.mkdir()
    write_model_files(out, build_model(cfg))
    return out


def _edit_config(**changes):
    def setup(d):
        c = _ckpt(d)
        cfg = json.loads((c / "config.json").read_text())
        cfg.update(changes)
        (c / "config.json").write_text(json.dumps(cfg))
        return c

    return setup


def _replace_file(name, data):
    def setup(d):
        c = _ckpt(d)
        (c / name).write_bytes(data(c) if callable(data) else data)
        return c

    return setup


def _torch_save(c):
    import io

    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)
    return buf.getvalue()


def _rm(name):
    def setup(d):
        c = _ckpt(d)
        (c / name).unlink()
        return c

    return setup


# (id, checkpoint setup, text the message must contain)
CHECKPOINTS = [
    ("pickle named model.safetensors", _replace_file("model.safetensors", pickle.dumps({"a": 1})), "pickle"),
    ("torch.save file", _replace_file("model.safetensors", _torch_save), "pickle"),
    (
        "truncated safetensors",
        _replace_file("model.safetensors", lambda c: (c / "model.safetensors").read_bytes()[:300]),
        "model.safetensors",
    ),
    ("empty safetensors", _replace_file("model.safetensors", b""), "model.safetensors"),
    ("shapes disagree with config", _edit_config(intermediate_size=96), "weights do not match"),
    ("config is a list", _replace_file("config.json", b"[1, 2]"), "'<document>'"),
    ("config not JSON", _replace_file("config.json", b"{hidden"), "config.json"),
    ("string where a number belongs", _edit_config(hidden_size="64"), "'hidden_size'"),
    ("string rope_theta", _edit_config(rope_theta="10000"), "'rope_theta'"),
    ("string rope_scaling", _edit_config(rope_scaling="yarn"), "'rope_scaling'"),
    ("non-integer id2label keys", _edit_config(id2label={"a": "x", "b": "y"}), "'id2label'"),
    ("hidden_size 10^9", _edit_config(hidden_size=10**9), "'hidden_size'"),
    ("10^6 layers", _edit_config(num_hidden_layers=10**6), "'num_hidden_layers'"),
    ("negative vocab", _edit_config(vocab_size=-3), "'vocab_size'"),
    ("token id not an integer", _edit_config(eos_token_id="exit(1)"), "'eos_token_id'"),
    ("boolean as a size", _edit_config(num_attention_heads=True), "'num_attention_heads'"),
    ("weights missing", _rm("model.safetensors"), "model.safetensors"),
    ("config missing", _rm("config.json"), "config.json"),
    ("tokenizer file is a list", _replace_file("projdeploy_tokenizer.json", b"[1]"), "'<document>'"),
    ("tokenizer not JSON", _replace_file("projdeploy_tokenizer.json", b"\xff{"), "projdeploy_tokenizer.json"),
    (
        "tokenizer levels a string",
        _replace_file("projdeploy_tokenizer.json", b'{"type": "pixel", "levels": "17; exit(1)"}'),
        "'levels'",
    ),
    (
        "bpe tokenizer garbage",
        _replace_file("projdeploy_tokenizer.json", b'{"type": "bpe", "hf_tokenizer": {"model": 3}}'),
        "'hf_tokenizer'",
    ),
    ("unknown tokenizer type", _replace_file("projdeploy_tokenizer.json", b'{"type": "sentencepiece"}'), "tokenizer"),
]


def _task(d: Path, spec: dict, files: dict | None = None) -> Path:
    for name, data in (files or {}).items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            p.write_bytes(data)
        elif isinstance(data, dict):
            np.savez(p, **data)
        else:
            p.write_text(data)
    f = d / "task.yaml"
    f.write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return f


IMG = np.random.default_rng(0).integers(0, 16, (20, 8, 8))
LAB = np.arange(20) % 3
JSONL = "".join(json.dumps({"text": f"row {i}", "label": "ab"[i % 2]}) + "\n" for i in range(20))


def _t(spec, files=None):
    return lambda d: _task(d, spec, files)


def _img(**data):
    return {"name": "t", "type": "image-cls", "data": {"train": "x.npz"}}, {"x.npz": data}


def _txt(**over):
    spec = {"name": "t", "type": "text-cls", "data": {"train": "x.jsonl"}}
    spec.update(over)
    return spec


BOMB = "a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
BOMB += "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\nname: t\ntype: text-lm\ndata: {train: x.txt}\nseq_len: *d\n"
TASKS = [
    ("non-UTF-8 text", _t(_txt(), {"x.jsonl": b'{"text": "\xff\xfe", "label": "a"}\n'}), "'data.train'"),
    ("NPZ with NaN", _t(*_img(images=np.full((20, 8, 8), np.nan), labels=LAB)), "'data.train'"),
    ("NPZ with inf", _t(*_img(images=np.full((20, 8, 8), np.inf), labels=LAB)), "'data.train'"),
    ("NPZ object dtype", _t(*_img(images=np.array([{"a": 1}] * 20, dtype=object), labels=LAB)), "'data.train'"),
    ("NPZ string images", _t(*_img(images=np.array(["x"] * 20), labels=LAB)), "'data.train'"),
    ("fewer labels than images", _t(*_img(images=IMG, labels=LAB[:5])), "'data.train'"),
    ("NPZ not a zip", _t({"name": "t", "type": "image-cls", "data": {"train": "x.npz"}}, {"x.npz": b"junk"}), "npz"),
    (
        "corrupt PNG",
        _t(
            {"name": "t", "type": "image-cls", "data": {"train": "imgs", "format": "png-folder"}},
            {"imgs/a/1.png": b"\x89PNG\r\n\x1a\nbroken", "imgs/b/2.png": b"nope"},
        ),
        "'data.train'",
    ),
    (
        "text field is a list",
        _t(_txt(), {"x.jsonl": JSONL.replace('"row 3"', '["exit(1)"]')}),
        "'data.text_field'",
    ),
    ("label is an object", _t(_txt(), {"x.jsonl": JSONL.replace('"label": "a"', '"label": {"x": 1}')}), "label_field"),
    ("train path is a directory", _t(_txt(data={"train": "dir", "format": "jsonl"}), {"dir/x": "a"}), "'data.train'"),
    ("YAML alias bomb in seq_len", _t(BOMB, {"x.txt": "hello"}), "alias"),
    ("task file is a list", _t("- 1\n- 2\n"), "'<document>'"),
    ("task file not UTF-8", lambda d: (d / "task.yaml").write_bytes(b"name: \xff\n") and d / "task.yaml", "UTF-8"),
    ("unknown field", _t({**_txt(), "epochs": 3}, {"x.jsonl": JSONL}), "'epochs'"),
    ("no train path", _t({"name": "t", "type": "text-cls", "data": {}}), "'data.train'"),
    ("bad type", _t(_txt(type="video"), {"x.jsonl": JSONL}), "'type'"),
    ("seq_len huge", _t(_txt(seq_len=10**9), {"x.jsonl": JSONL}), "'seq_len'"),
    ("eval_fraction out of range", _t(_txt(data={"train": "x.jsonl", "eval_fraction": 2}), {"x.jsonl": JSONL}), "eval"),
    ("unknown tokenizer", _t(_txt(tokenizer="wordpiece"), {"x.jsonl": JSONL}), "'tokenizer'"),
    ("budget value a string", _t(_txt(budget={"max_size_mb": "big"}), {"x.jsonl": JSONL}), "'max_size_mb'"),
    ("missing data file", _t(_txt(), {}), "data.train"),
    ("unknown format", _t(_txt(data={"train": "x.jsonl", "format": "xml"}), {"x.jsonl": JSONL}), "'data.format'"),
    ("name is a list", _t(_txt(name=["a"]), {"x.jsonl": JSONL}), "'name'"),
]


def _art(d: Path, manifest) -> Path:
    a = d / "art"
    a.mkdir()
    (a / "model.onnx").write_bytes(b"onnx bytes")
    (a / "manifest.json").write_text(json.dumps(manifest))
    return a


def _tampered(d):
    import hashlib

    rec = {"sha256": hashlib.sha256(b"onnx bytes").hexdigest(), "size": 10}
    m = {"schema": "projdeploy.manifest/1", "format": "onnx", "main_file": "model.onnx"}
    a = _art(d, {**m, "files": {"model.onnx": rec}, "model": {}})
    (a / "model.onnx").write_bytes(b"onnx bytez")
    return a


def _file(name, text):
    def setup(d):
        (d / name).write_text(text)
        return d / name

    return setup


CHECK = ["check", "--task", "digits-cls", "--profile", "pixel-8", "--artifact"]
BUILD = ["build", "--task", "digits-cls", "--target", "web", "--finetune-steps", "1"]
# (id, setup(d) -> value for {} in args, args, text the message must contain)
CLI = [
    ("tampered artifact to check", _tampered, CHECK + ["{}"], "sha256"),
    ("manifest is a list", lambda d: _art(d, [1, 2]), CHECK + ["{}"], "JSON object"),
    ("manifest wrong schema", lambda d: _art(d, {"schema": "x"}), CHECK + ["{}"], "'schema'"),
    ("artifact missing", lambda d: d / "nope", CHECK + ["{}"], "(artifact)"),
    ("unknown --profile (build)", lambda d: "no-such-phone", BUILD + ["--profile", "{}"], "--profile"),
    ("missing --budget file", lambda d: d / "b.yaml", BUILD + ["--budget", "{}"], "'(file)'"),
    ("budget is a list", _file("b.yaml", "- 1\n"), BUILD + ["--budget", "{}"], "(top level)"),
    ("budget unknown field", _file("b.yaml", "max_fun: 3\n"), BUILD + ["--budget", "{}"], "'max_fun'"),
    ("budget negative", _file("b.yaml", "max_size_mb: -1\n"), BUILD + ["--budget", "{}"], "'max_size_mb'"),
    ("unknown target", lambda d: "watchos", ["build", "--task", "digits-cls", "--target", "{}"], "target"),
    (
        "target file not a mapping",
        _file("t.yaml", "[1]\n"),
        ["build", "--task", "digits-cls", "--target", "{}"],
        "<doc",
    ),
    ("--big not a checkpoint", lambda d: d / "nobig", BUILD + ["--big", "{}"], "--big"),
    ("gate report is a list", _file("r.json", "[1]"), ["gate", "--report", "{}", "--baseline", "{}"], "r.json"),
    ("gate report not JSON", _file("r.json", "{x"), ["gate", "--report", "{}", "--baseline", "{}"], "r.json"),
    ("--out under /proc", lambda d: "/proc/projdeploy-out", ["train", "--task", "digits-cls", "--out", "{}"], "/proc"),
    (
        "--out inside a file",
        _file("f.txt", "x"),
        ["train", "--task", "digits-cls", "--out", "{}/sub", "--steps", "1"],
        "f.txt",
    ),
    (
        "--out is .",
        lambda d: ".",
        ["train", "--task", "digits-cls", "--out", "{}", "--steps", "1"],
        "current directory",
    ),
    ("unknown task", lambda d: "nope", ["train", "--task", "{}", "--out", "o"], "known tasks"),
]


def _check(d: Path, args: list, must: str, monkeypatch):
    monkeypatch.chdir(d)
    out = d / "out"
    before = snapshot(d)
    extra = ["--out", str(out)] if "--out" not in args and args[0] in ("build", "check", "train") else []
    r = CliRunner().invoke(cli, [str(a) for a in args] + extra)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "error: unexpected" not in r.output, r.output
    assert must in r.output, r.output
    assert len([ln for ln in r.output.splitlines() if ln.strip()]) <= 3, r.output  # one line (+ click's usage)
    assert snapshot(d) == before
    return r


@pytest.mark.parametrize("setup,must", [c[1:] for c in CHECKPOINTS], ids=[c[0] for c in CHECKPOINTS])
def test_bad_checkpoint(tmp_path, setup, must, monkeypatch):
    c = setup(tmp_path)
    _check(
        tmp_path, ["eval", "--checkpoint", c, "--task", "digits-cls", "--out", tmp_path / "out.json"], must, monkeypatch
    )


@pytest.mark.parametrize("setup,must", [c[1:] for c in TASKS], ids=[c[0] for c in TASKS])
def test_bad_task_file(tmp_path, setup, must, monkeypatch):
    f = setup(tmp_path)
    _check(tmp_path, ["train", "--task", f, "--steps", "1"], must, monkeypatch)


@pytest.mark.parametrize("setup,args,must", [c[1:] for c in CLI], ids=[c[0] for c in CLI])
def test_bad_cli_argument(tmp_path, setup, args, must, monkeypatch):
    v = str(setup(tmp_path))
    args = [a.replace("{}", v) for a in args]
    if "--cache-dir" not in args and args[0] == "build":
        args += ["--cache-dir", str(tmp_path / "cache")]
    _check(tmp_path, args, must, monkeypatch)


def test_at_least_forty_cases():
    assert len(CHECKPOINTS) + len(TASKS) + len(CLI) >= 40


def test_unexpected_errors_print_one_line_and_a_traceback_file(monkeypatch, tmp_path):
    import projdeploy.evaluate as ev

    def boom(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(ev, "evaluate_checkpoint", boom)
    r = CliRunner().invoke(cli, ["eval", "--checkpoint", str(tmp_path), "--task", "digits-cls"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    line = r.output.strip()
    assert line.startswith("error: unexpected ZeroDivisionError: a bug") and len(line.splitlines()) == 1
    path = line.rsplit("full traceback: ", 1)[1].rstrip(")")
    text = Path(path).read_text()
    assert "Traceback" in text and "ZeroDivisionError" in text
    Path(path).unlink()
