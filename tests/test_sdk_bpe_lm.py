"""SDKs for a BPE language model: a tiny transformers Llama with a tiny BPE tokenizer trained here.

    .venv/bin/python -m pytest tests/test_sdk_bpe_lm.py -q

A user task file (``tokenizer: bpe``) makes the task train a 300-token byte-level BPE with the
``tokenizers`` library; a tiny ``LlamaForCausalLM`` built by ``transformers`` with that vocabulary is
saved with ``save_pretrained`` and exported to ONNX (web) and ExecuTorch (Android, iOS: prefill +
decode with the KV cache). The three SDKs are generated and must: record the BPE tokenizer, equal a
fresh rendering of their spec, type-check (tsc strict NodeNext), compile (kotlinc -Werror) and pass
the Swift conformance check. The Python reference generates through the BPE prompt on both artifacts.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

LINES = [f"def f{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(120)]


@pytest.fixture(scope="module")
def bpe_lm(tmp_path_factory):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from exporters.api import export_checkpoint
    from projdeploy.tasks import get_task

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("bpe-lm")
    (d / "train.txt").write_text("\n\n".join(LINES))
    task_file = d / "task.yaml"
    task_file.write_text(
        "name: tiny-bpe-lm\ntype: text-lm\ndata:\n  train: train.txt\n  format: text\n"
        "tokenizer: bpe\nbpe_vocab_size: 300\nseq_len: 32\n"
    )
    tok = get_task(str(task_file)).tokenizer
    assert tok.kind == "bpe"
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
        bos_token_id=tok.bos_id,
        eos_token_id=tok.eos_id,
        pad_token_id=tok.pad_id,
    )
    LlamaForCausalLM(config).save_pretrained(d / "ckpt", safe_serialization=True)
    arts = {
        "onnx": export_checkpoint(d / "ckpt", "onnx", "fp32", str(task_file), d / "onnx", max_rows=4).path,
        "executorch": export_checkpoint(
            d / "ckpt", "executorch", "xnnpack-fp32", str(task_file), d / "et", max_rows=4
        ).path,
    }
    return d, arts, tok


@pytest.fixture(scope="module")
def sdks(bpe_lm):
    from projdeploy.sdk import generate

    d, arts, _ = bpe_lm
    return {
        "web": generate(arts["onnx"], "web", d / "sdk-web"),
        "android": generate(arts["executorch"], "android", d / "sdk-android"),
        "ios": generate(arts["executorch"], "ios", d / "sdk-ios"),
    }


def test_the_three_sdks_record_the_bpe_tokenizer_and_regenerate_identically(sdks):
    from projdeploy.sdk import check_generated
    from projdeploy.sdk.spec import SPEC_FILE

    for target, out in sdks.items():
        spec = json.loads((out / SPEC_FILE).read_text())
        assert spec["tokenizer"]["type"] == "bpe" and spec["kind"] == "lm", target
        assert spec["prompt_prefix"] == [spec["tokenizer"]["eos_id"]]
        assert check_generated(out) == [], target
    ios = json.loads((sdks["ios"] / SPEC_FILE).read_text())
    assert ios["lm_mode"] == "kv_in_program"  # an LM task exports the LM program: the KV cache inside


def test_the_web_sdk_type_checks_and_the_swift_conforms(sdks, tmp_path):
    import shutil

    from test_sdk_compile import WEB, tsc_check
    from test_sdk_swift import problems

    from projdeploy.sdk import generated_files
    from projdeploy.sdk.spec import SPEC_FILE

    # tsc resolves onnxruntime-web upwards from the files: a copy next to a node_modules link
    shutil.copytree(sdks["web"], tmp_path / "pkg", ignore=shutil.ignore_patterns("assets"))  # package.json: ESM
    (tmp_path / "node_modules").symlink_to(WEB / "node_modules")
    (tmp_path / "cfg").mkdir()
    res = tsc_check(sorted((tmp_path / "pkg" / "src").glob("*.ts")), tmp_path / "cfg")
    assert res.returncode == 0, res.stdout + res.stderr
    spec = json.loads((sdks["ios"] / SPEC_FILE).read_text())
    assert problems(generated_files(spec)) == []


def test_the_android_sdk_compiles_with_werror(sdks, tmp_path):
    from test_sdk_compile import compile_kotlin

    res = compile_kotlin([sdks["android"] / "src"], tmp_path / "out.jar")
    assert res.returncode == 0, res.stdout + res.stderr


def test_reference_generation_through_the_bpe_prompt(bpe_lm):
    from projdeploy.sdk.reference import Reference

    _, arts, tok = bpe_lm
    outs = []
    for fmt, target in (("onnx", "web"), ("executorch", "android")):
        ref = Reference(arts[fmt], target)
        prompt = ref.prompt_tokens("def f3(x):\n")
        assert prompt == [tok.eos_id, *tok.encode("def f3(x):\n")]
        out = ref.complete("def f3(x):\n", max_new_tokens=6, stop_at_eos=False)
        assert len(out["tokens"]) == 6 and out["text"] == tok.decode(out["tokens"])
        outs.append(out["tokens"])
    assert outs[0] == outs[1]  # ONNX decoder with past and ExecuTorch cache-inside generation agree (greedy)
