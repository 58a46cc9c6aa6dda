"""Fine-tuning a BERT-family checkpoint (a pruned MiniLM, say) as it is, through transformers.

    .venv/bin/python -m pytest tests/test_finetune_encoder.py -q

Tiny BERT / DistilBERT built by ``transformers`` with random weights and a BPE tokenizer; a user text-cls
task. The fine-tuned directory loads in transformers with the same logits and exports like any other
Hugging Face classifier.
"""

from __future__ import annotations

import json

import pytest
import torch
from test_foundation import TEXT, _bpe, _save_tokenizer


def _task(tmp_path, labels=2):
    lines = [ln for ln in TEXT.splitlines() if ln.strip()]
    rows = [
        {"text": ln, "label": i % labels if labels > 2 else int(ln.startswith("def "))} for i, ln in enumerate(lines)
    ]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "t.yaml").write_text(
        "name: pydef\ntype: text-cls\ndata: {train: train.jsonl, eval_fraction: 0.3}\nseq_len: 16\n"
    )
    return str(tmp_path / "t.yaml")


def _encoder(d, kind: str):
    import transformers as tf

    tok = _bpe()
    torch.manual_seed(0)
    if kind == "bert":
        cfg = tf.BertConfig(
            vocab_size=tok.get_vocab_size(),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=32,
            pad_token_id=1,
        )
        tf.BertModel(cfg).save_pretrained(d)  # a bare encoder, as MiniLM ships: the classifier head is new
    else:
        cfg = tf.DistilBertConfig(
            vocab_size=tok.get_vocab_size(), dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=32
        )
        tf.DistilBertForSequenceClassification(cfg).save_pretrained(d)  # transformers' default 2-label config
    _save_tokenizer(tok, d)
    return d


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_finetune_cli_trains_an_encoder_that_loads_in_transformers_and_exports(tmp_path, kind):
    from click.testing import CliRunner
    from transformers import AutoModelForSequenceClassification

    from exporters.sources import load_source
    from projdeploy.cli import cli
    from projdeploy.tasks import get_task
    from projdeploy.tasks.hf_tokenizer import task_for_checkpoint

    src = _encoder(tmp_path / "enc", kind)
    task_yaml = _task(tmp_path)
    out = tmp_path / "ft"
    r = CliRunner().invoke(
        cli,
        ["finetune", "--checkpoint", str(src), "--task", task_yaml, "--out", str(out), "--steps", "4",
         "--batch-size", "8", "--eval-every", "2"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "projdeploy.json").read_text())
    assert meta["finetune"]["config"]["lr"] == 1e-4  # the encoder's default, not the small models' 3e-3
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["architectures"][0].endswith("ForSequenceClassification") and len(cfg["id2label"]) == 2
    task = task_for_checkpoint(get_task(task_yaml), out)
    ids = torch.as_tensor(task.eval.tokens[:4])
    hf = AutoModelForSequenceClassification.from_pretrained(out).eval()
    src_model = load_source(out, task).model  # what `projdeploy export` loads
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        torch.testing.assert_close(src_model(ids), want)


def test_an_encoder_learns_a_separable_task_and_is_refused_for_language_modelling(tmp_path):
    from projdeploy.errors import CheckpointError
    from projdeploy.tasks import get_task
    from projdeploy.train.finetune import FinetuneConfig, finetune

    src = _encoder(tmp_path / "enc", "bert")
    task = get_task(_task(tmp_path))
    cfg = FinetuneConfig(steps=30, batch_size=16, eval_every=10, patience=3, lr=1e-3)
    _, info = finetune(str(src), task, "none", (), None, cfg, progress=False)
    assert info["test"] > 0.9, info  # "def" lines vs "class"/"return"/"value" lines: separable by the first token
    (tmp_path / "code.txt").write_text(TEXT)
    (tmp_path / "lm.yaml").write_text(
        "name: code\ntype: text-lm\nseq_len: 16\ndata:\n  train: code.txt\n  format: text\n"
    )
    with pytest.raises(CheckpointError, match="classification tasks only"):
        finetune(str(src), get_task(str(tmp_path / "lm.yaml")), "none", (), None, cfg, progress=False)


@pytest.mark.slow
def test_build_from_a_bert_big_model_runs_every_stage(tmp_path):
    """build --big <BERT dir> --method prune: a smaller BERT classifier is fine-tuned, exported to a .pte,
    checked (its operators traced through transformers) and packaged."""
    from click.testing import CliRunner

    from projdeploy.cli import cli

    src = _encoder(tmp_path / "enc", "bert")
    (tmp_path / "tiny.yaml").write_text(
        "name: tiny\ndescription: one ExecuTorch artifact\nartifacts:\n  - {format: executorch, recipe: xnnpack-fp32}\n"
        "profiles: [pixel-8]\nsdk: android\nsdk_artifact: executorch/xnnpack-fp32\n"
    )
    args = ["build", "--task", _task(tmp_path), "--target", str(tmp_path / "tiny.yaml"), "--big", str(src)]
    args += ["--method", "prune", "--finetune-steps", "2", "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path)]
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert r.exit_code in (0, 1), r.output  # 1: a budget failed; every stage ran
    out = tmp_path / "pydef-tiny"
    m = json.loads((out / "manifest.json").read_text())
    assert [a["key"] for a in m["artifacts"]] == ["executorch/xnnpack-fp32"]
    assert json.loads((out / "model" / "config.json").read_text())["model_type"] == "bert"
    report = json.loads((out / "report.json").read_text())
    assert report and (out / "sdk").is_dir()
