"""projector and upcycled pn on top of a pretrained (transformers-built, random-weight) Llama.

    .venv/bin/python -m pytest tests/test_foundation_methods.py -q

Both start from the ``prune`` selection: with no training they give the pruned model exactly.
"""

from __future__ import annotations

import pytest
import torch
from test_foundation import TEXT, _bpe, _save_tokenizer

SIZE = "hidden=32,layers=2,ffn=64,heads=3,kv=1"


@pytest.fixture(scope="module")
def hf_llama(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    d = tmp_path_factory.mktemp("hf") / "llama"
    tok = _bpe()
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=4,
        num_attention_heads=6,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=True,
        eos_token_id=0,
        pad_token_id=1,
    )
    LlamaForCausalLM(cfg).save_pretrained(d)
    _save_tokenizer(tok, d)
    return d


@pytest.fixture(scope="module")
def code_task(hf_llama, tmp_path_factory):
    """A user text task (not a pycode domain: nothing of the generic corpus is held out but its eval files)."""
    from projdeploy.project.api import task_for_big
    from projdeploy.tasks import get_task

    d = tmp_path_factory.mktemp("task")
    (d / "code.txt").write_text(TEXT)
    (d / "t.yaml").write_text("name: code\ntype: text-lm\nseq_len: 32\ndata:\n  train: code.txt\n  format: text\n")
    return task_for_big(str(hf_llama), get_task(str(d / "t.yaml")))


def _logits(model, task):
    return model(torch.as_tensor(task.eval.tokens[:3, :-1]))


@pytest.mark.parametrize("method", ["projector", "pn"])
def test_untrained_equals_prune(hf_llama, code_task, method):
    """Step 0: the operator's maps / every expert are the prune selection -> the pruned model's logits exactly."""
    from projdeploy.project.api import project_model

    pruned, _ = project_model(str(hf_llama), code_task, "prune", size=SIZE, calibration=8)
    small, info = project_model(str(hf_llama), code_task, method, size=SIZE, calibration=8, train_steps=0)
    assert info["mode"] == "prune-init"
    assert torch.equal(_logits(small, code_task), _logits(pruned, code_task))


def test_operator_at_init_reproduces_prune_for_any_task_embedding(hf_llama, code_task):
    from projdeploy.foundation import load_big
    from projdeploy.project.projector import Operator, ProjectorConfig
    from projdeploy.project.prune import prune_model, pruning_selection
    from projdeploy.project.sizing import parse_spec

    big = load_big(str(hf_llama)).module
    cfg = parse_spec(big.config, SIZE)
    sel = pruning_selection(big, code_task, cfg, calibration=8)
    op = Operator(big.config, cfg, ProjectorConfig(), n_tasks=3, init=sel)
    ref = prune_model(big, cfg, sel).state_dict()
    for t in range(3):
        gen = op.generate(big, op.task_emb[t])
        assert all(torch.equal(gen[k], ref[k]) for k in gen), t


def test_upcycled_experts_all_equal_the_pruned_mlp(hf_llama, code_task):
    from projdeploy.foundation import load_big
    from projdeploy.project.prune import prune_model, pruning_selection
    from projdeploy.project.sizing import parse_spec
    from projdeploy.project.upcycle import UpcycleConfig, upcycle

    big = load_big(str(hf_llama)).module
    cfg = parse_spec(big.config, SIZE)
    pruned = prune_model(big, cfg, pruning_selection(big, code_task, cfg, calibration=8))
    pn = upcycle(pruned, UpcycleConfig(num_experts=4, basis_size=2, code_size=3))
    x = torch.as_tensor(code_task.eval.tokens[:2, :-1])
    ref = pruned(x)
    for i in range(4):
        torch.testing.assert_close(pn(x, i), ref, rtol=0, atol=1e-6)
    c = torch.stack([cl for cl in pn.coefficients(torch.arange(4))])  # (L, k, h)
    assert torch.equal(c[..., 0], torch.ones_like(c[..., 0])) and c[..., 1:].std() > 0.1
    with pytest.raises(Exception, match="h < k"):
        UpcycleConfig(num_experts=4, basis_size=4)


@pytest.mark.parametrize("method", ["projector", "pn"])
def test_trained_projection_loads_in_transformers(hf_llama, code_task, tmp_path, method):
    """A few steps of training on generic data, then projection -> an ordinary checkpoint transformers loads."""
    from transformers import AutoModelForCausalLM

    from projdeploy.models.checkpoint import load_model, read_meta
    from projdeploy.project.api import project

    opts = {"fit_steps": 2} if method == "projector" else {}
    info = project(str(hf_llama), code_task, method, tmp_path / "p", size=SIZE, calibration=8, train_steps=2, **opts)
    assert info["train_steps"] == 2 and len(info["train_loss"]) == 2 and info["generic_rows"] > 0
    ours, hf = load_model(tmp_path / "p"), AutoModelForCausalLM.from_pretrained(tmp_path / "p").eval()
    x = torch.as_tensor(code_task.eval.tokens[:2, :-1])
    torch.testing.assert_close(ours(x), hf(x).logits, atol=1e-5, rtol=1e-5)
    assert read_meta(tmp_path / "p")["projection"]["mode"] in ("fitted-embedding", "upcycled")


def test_generic_data_holds_out_the_task_domain():
    from projdeploy.project.pretrained import ContinuedTraining, generic_data
    from projdeploy.tasks import get_task

    task = get_task("pycode:json")
    data = generic_data(task, ContinuedTraining(generic_rows=64, exclude=("email",)))
    assert data.held_out == ("email", "json")
    assert "json" not in data.packages and "email" not in data.packages
    assert len(data.package) == 64 and data.task.train.tokens.shape[1] == task.seq_len + 1


def test_hard_moe_refuses_a_pretrained_model(hf_llama, code_task):
    from projdeploy.errors import CheckpointError
    from projdeploy.project.api import project_model

    with pytest.raises(CheckpointError, match="cannot be projected with 'hard-moe'.*'projector', 'truncate'"):
        project_model(str(hf_llama), code_task, "hard-moe")


def test_export_checkpoint_refuses_what_is_no_model(tmp_path):
    from projdeploy.errors import CheckpointError
    from projdeploy.foundation.load import export_checkpoint_source

    (tmp_path / "w.bin").write_bytes(b"x")
    for bad in ("no-such-model", str(tmp_path / "w.bin")):
        with pytest.raises(CheckpointError, match="neither a .gguf file nor a built-in model name.*smollm2-135m"):
            export_checkpoint_source(bad)


@pytest.mark.slow
def test_export_checkpoint_accepts_a_gguf_file(tmp_path, monkeypatch):
    """``export --checkpoint model.gguf``: dequantized once, exported with the task in the GGUF's tokenizer."""
    pytest.importorskip("gguf", reason="the gguf package comes with the models extra")
    import json

    from click.testing import CliRunner
    from test_foundation import _write_tiny_gguf

    from projdeploy.cli import cli

    monkeypatch.setenv("PROJDEPLOY_CACHE", str(tmp_path / "cache"))
    _write_tiny_gguf(tmp_path / "tiny.gguf")
    (tmp_path / "code.txt").write_text(TEXT)
    (tmp_path / "t.yaml").write_text("name: code\ntype: text-lm\nseq_len: 16\ndata:\n  train: code.txt\n")
    args = ["export", "--checkpoint", str(tmp_path / "tiny.gguf"), "--format", "onnx", "--recipe", "fp32"]
    args += ["--task", str(tmp_path / "t.yaml"), "--out", str(tmp_path / "o"), "--max-rows", "4"]
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "o" / "projdeploy_tokenizer.json").read_text())["type"] == "hf"


def _tiny_qwen(d, arch: str):
    import transformers as tf

    tok = _bpe()
    cls, cfg_cls = {"qwen2": (tf.Qwen2ForCausalLM, tf.Qwen2Config), "qwen3": (tf.Qwen3ForCausalLM, tf.Qwen3Config)}[
        arch
    ]
    kw = dict(vocab_size=tok.get_vocab_size(), hidden_size=48, intermediate_size=96, num_hidden_layers=3)
    kw.update(num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=64, eos_token_id=0, pad_token_id=1)
    if arch == "qwen3":
        kw["head_dim"] = 8
    torch.manual_seed(0)
    model = cls(cfg_cls(**kw, tie_word_embeddings=True))
    with torch.no_grad():  # transformers initialises biases to 0 and norms to 1: make them matter
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.normal_(0.5 if "norm" in name else 0.0, 0.3)
    model.save_pretrained(d)
    _save_tokenizer(tok, d)
    return model.eval()


@pytest.mark.parametrize("arch", ["qwen2", "qwen3"])
def test_qwen_loads_exactly_and_projects_to_a_transformers_checkpoint(tmp_path, arch, code_task):
    """Qwen2's q/k/v biases and Qwen3's q/k norms: exact load; prune and truncate keep them (same family out)."""
    import json

    from transformers import AutoModelForCausalLM

    from projdeploy.foundation import load_big
    from projdeploy.models.checkpoint import load_model
    from projdeploy.project.api import project, project_model

    ref = _tiny_qwen(tmp_path / arch, arch)
    big = load_big(str(tmp_path / arch))
    x = torch.as_tensor(code_task.eval.tokens[:2, :-1])
    torch.testing.assert_close(big.module(x), ref(x).logits, atol=1e-5, rtol=1e-5)
    full = big.module.config
    whole = f"hidden={full.hidden_size},layers=3,ffn={full.intermediate_size},heads=6,kv=2"
    same, _ = project_model(str(tmp_path / arch), code_task, "prune", size=whole, calibration=4)
    assert torch.equal(same(x), big.module(x))  # nothing pruned: the same function
    for method in ("prune", "truncate", "pn"):
        out = tmp_path / f"{arch}-{method}"
        opts = {"calibration": 4, "train_steps": 0} if method == "pn" else {}
        project(str(tmp_path / arch), code_task, method, out, size="hidden=32,layers=2,ffn=64,heads=3,kv=1", **opts)
        assert json.loads((out / "config.json").read_text())["model_type"] == arch
        hf = AutoModelForCausalLM.from_pretrained(out).eval()
        torch.testing.assert_close(load_model(out)(x), hf(x).logits, atol=1e-5, rtol=1e-5)
    from exporters.sources import load_source

    src = load_source(out)  # exports read it with projdeploy's own module (KV-cache programs)
    assert src.native and src.architecture == f"Qwen{arch[4]}ForCausalLM"


def test_projector_refuses_qwen_attention(tmp_path, code_task):
    from projdeploy.errors import CheckpointError
    from projdeploy.project.api import project_model

    _tiny_qwen(tmp_path / "q", "qwen2")
    with pytest.raises(CheckpointError, match="a qwen2 big model is projected with prune, truncate or pn"):
        project_model(str(tmp_path / "q"), code_task, "projector", size=SIZE, train_steps=0)


@pytest.fixture(scope="module")
def hf_bert(tmp_path_factory):
    from transformers import BertConfig, BertModel

    d = tmp_path_factory.mktemp("bert")
    tok = _bpe()
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=48,
        num_hidden_layers=3,
        num_attention_heads=6,
        intermediate_size=96,
        max_position_embeddings=64,
        pad_token_id=1,
    )
    BertModel(cfg).save_pretrained(d)
    _save_tokenizer(tok, d)
    return d


@pytest.fixture(scope="module")
def cls_task(tmp_path_factory):
    import json

    from projdeploy.tasks import get_task

    d = tmp_path_factory.mktemp("cls")
    lines = [ln for ln in TEXT.splitlines() if ln.strip()]
    rows = [{"text": ln, "label": int(ln.startswith(("def ", "class ")))} for ln in lines]
    (d / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (d / "t.yaml").write_text(
        "name: pydef\ntype: text-cls\ndata: {train: train.jsonl, eval_fraction: 0.3}\nseq_len: 24\n"
    )
    return get_task(str(d / "t.yaml"))


def test_bert_projection_by_every_method(hf_bert, cls_task, tmp_path):
    """prune / truncate of a BERT -> a smaller transformers BERT classifier; keeping everything is the same encoder;
    the Llama-only methods refuse a BERT source clearly."""
    import json

    from transformers import AutoModelForSequenceClassification, BertModel

    from projdeploy.errors import CheckpointError
    from projdeploy.project.api import project, project_model, task_for_big

    task = task_for_big(str(hf_bert), cls_task)
    ids = torch.as_tensor(task.eval.tokens[:3])
    mask = (ids != 1).long()
    ref = BertModel.from_pretrained(hf_bert).eval()
    whole, _ = project_model(str(hf_bert), task, "prune", size="hidden=48,layers=3,ffn=96,heads=6", calibration=8)
    torch.testing.assert_close(
        whole.bert(ids, attention_mask=mask).last_hidden_state, ref(ids, attention_mask=mask).last_hidden_state
    )
    for method in ("prune", "truncate"):
        info = project(str(hf_bert), task, method, tmp_path / method, params="25%")
        cfg = json.loads((tmp_path / method / "config.json").read_text())
        assert cfg["model_type"] == "bert" and cfg["num_hidden_layers"] == 2 and info["family"] == "bert"
        clf = AutoModelForSequenceClassification.from_pretrained(tmp_path / method).eval()
        assert clf(ids, attention_mask=mask).logits.shape == (3, 2)
    for method in ("projector", "pn"):
        with pytest.raises(CheckpointError, match="cannot be projected"):
            project_model(str(hf_bert), task, method, train_steps=0)
