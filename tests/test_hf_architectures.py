"""Hugging Face classifier architectures, built tiny by transformers with random weights: load, export and
validate in every format (Core ML converts; its figures are simulated), plus error localisation on ONNX.

    .venv/bin/python -m pytest tests/test_hf_architectures.py -q            # fast part
    .venv/bin/python -m pytest tests/test_hf_architectures.py -q -m slow    # exports

The text classifiers keep transformers' default label config (``save_pretrained`` writes no ``id2label``
for two labels), as a checkpoint fine-tuned with the defaults has it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

VOCAB = 300  # covers the byte tokenizer of the text task


def _config(arch: str):
    import transformers as tf

    small = dict(vocab_size=VOCAB, max_position_embeddings=64)
    if arch == "BertForSequenceClassification":  # BERT and MiniLM (a BERT config)
        return tf.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, **small)
    if arch == "DistilBertForSequenceClassification":
        return tf.DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, **small)
    if arch == "MobileBertForSequenceClassification":
        return tf.MobileBertConfig(
            hidden_size=32,
            embedding_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            intra_bottleneck_size=16,
            num_feedforward_networks=2,
            **small,
        )
    if arch == "ViTForImageClassification":  # the digits task's 8x8 images, 10 labels
        return tf.ViTConfig(
            image_size=8,
            patch_size=2,
            num_channels=1,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=10,
        )
    raise AssertionError(arch)


TEXT = ["BertForSequenceClassification", "DistilBertForSequenceClassification", "MobileBertForSequenceClassification"]
ARCHS = [*TEXT, "ViTForImageClassification"]


def _checkpoint(path, arch):
    import torch
    import transformers as tf

    torch.manual_seed(0)
    getattr(tf, arch)(_config(arch)).save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="module")
def text_task(tmp_path_factory):
    """A two-label text task (byte tokens): is a line of Python source a ``def``/``class`` line."""
    import sysconfig
    from pathlib import Path

    d = tmp_path_factory.mktemp("task")
    lines = [
        ln.strip()
        for p in sorted((Path(sysconfig.get_paths()["stdlib"]) / "json").glob("*.py"))
        for ln in p.read_text().splitlines()
        if len(ln.strip()) > 10
    ][:400]
    rows = [{"text": ln, "label": int(ln.startswith(("def ", "class ")))} for ln in lines]
    (d / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (d / "task.yaml").write_text(
        "name: pydef\ntype: text-cls\ndata: {train: train.jsonl, eval_fraction: 0.3}\nseq_len: 32\n"
    )
    return str(d / "task.yaml")


def _task_for(arch, text_task):
    return "digits-cls" if arch.startswith("ViT") else text_task


def test_default_label_config_is_two_labels(tmp_path):
    from exporters.hf_models import num_labels

    ckpt = _checkpoint(tmp_path / "b", "BertForSequenceClassification")
    cfg = json.loads((ckpt / "config.json").read_text())
    assert "id2label" not in cfg and num_labels(cfg) == 2  # what transformers writes, and reads back
    assert num_labels({"id2label": {"0": "a", "1": "b", "2": "c"}}) == 3 and num_labels({"num_labels": 5}) == 5


@pytest.mark.parametrize("arch", ARCHS)
def test_loads_and_matches_transformers(tmp_path, arch, text_task):
    import torch
    import transformers as tf

    from exporters.programs import programs_for
    from exporters.sources import load_source
    from projdeploy.tasks import get_task

    task = get_task(_task_for(arch, text_task))
    ckpt = _checkpoint(tmp_path / arch, arch)
    src = load_source(ckpt, task)
    assert src.architecture == arch and src.kind == "cls" and not src.native
    (prog,) = programs_for(src, task)
    assert prog.outputs[0].shape == (1, task.num_labels)
    x = torch.as_tensor(task.example_inputs(2))
    hf = getattr(tf, arch).from_pretrained(ckpt, attn_implementation="eager").eval()
    with torch.no_grad():
        if arch.startswith("ViT"):
            want = hf(pixel_values=x.float().view(2, 1, 8, 8) / 16.0).logits
        else:
            want = hf(input_ids=x, attention_mask=torch.ones_like(x)).logits
        np.testing.assert_allclose(src.model(x).numpy(), want.numpy(), atol=1e-6)


def test_label_mismatch_and_image_size_are_typed(tmp_path, text_task):
    import transformers as tf

    from exporters.sources import load_source
    from projdeploy.errors import CheckpointError
    from projdeploy.tasks import get_task

    bert = _checkpoint(tmp_path / "b", "BertForSequenceClassification")
    with pytest.raises(CheckpointError, match="2 labels, task 'digits-cls' has 10"):
        load_source(bert, get_task("digits-cls"))
    cfg = _config("ViTForImageClassification")
    cfg.image_size = 16
    tf.ViTForImageClassification(cfg).save_pretrained(tmp_path / "v")
    with pytest.raises(CheckpointError, match="image_size 16"):
        load_source(tmp_path / "v", get_task("digits-cls"))


FORMATS = [("onnx", "fp32"), ("executorch", "xnnpack-fp32"), ("coreml", "fp16")]


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_exports_and_validates_in_every_format(tmp_path, arch, text_task):
    from exporters.api import export_checkpoint
    from exporters.base import UnavailableError, verify_manifest

    ckpt = _checkpoint(tmp_path / "ckpt", arch)
    for fmt, recipe in FORMATS:
        try:
            art = export_checkpoint(ckpt, fmt, recipe, _task_for(arch, text_task), tmp_path / fmt, max_rows=32)
        except UnavailableError as e:  # pragma: no cover - toolchain missing
            pytest.skip(str(e))
        m = verify_manifest(art.path)
        v = m["validation"]
        assert v["passed"] is True and m["model"]["architecture"] == arch
        assert v["outputs"]["logits"]["passed"] and v["outputs"]["logits"]["rel_err"] < (
            2e-2 if fmt == "coreml" else 1e-4
        )
        assert v["simulated"] is (fmt == "coreml")


@pytest.mark.slow
def test_onnx_failure_names_the_corrupted_module(tmp_path, text_task):
    """Corrupt one layer's weight inside the exported ONNX file: validation fails and names that layer."""
    import onnx
    from onnx import numpy_helper

    from exporters.api import export_checkpoint
    from exporters.base import ParityError
    from exporters.registry import get_format, get_recipe
    from exporters.sources import load_source
    from exporters.validate import validate
    from projdeploy.tasks import get_task

    ckpt = _checkpoint(tmp_path / "ckpt", "BertForSequenceClassification")
    art = export_checkpoint(ckpt, "onnx", "fp32", text_task, tmp_path / "art", max_rows=16)
    model = onnx.load(str(art.main_path))
    src = load_source(ckpt)
    target = src.model.hf.bert.encoder.layer[1].intermediate.dense.weight.detach().numpy()
    for init in model.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.shape in (target.shape, target.T.shape) and np.allclose(w.reshape(-1)[:8], target.T.reshape(-1)[:8]):
            init.CopyFrom(numpy_helper.from_array(w * 3.0, init.name))  # one layer wrong (random logits are ~1e-2)
            break
    else:
        raise AssertionError("the layer-1 intermediate weight is not an initializer")
    onnx.save(model, str(art.main_path))
    from exporters.onnx_export import ONNXRunner

    task = get_task(text_task)
    recipe = get_recipe("onnx", "fp32")
    localize = get_format("onnx").localizer(art, src.model)
    with pytest.raises(ParityError) as e:
        validate(ONNXRunner(art.main_path).run, ["forward"], src.model, task, recipe, 16, localize=localize)
    loc = e.value.figures["localization"]
    assert loc["module"] == "hf.bert.encoder.layer.1.intermediate.dense", loc
    assert "hf.bert.encoder.layer.1.intermediate.dense" in str(e.value)
