"""SDK generator: regenerate-and-diff, identifiers, pinned versions, syntax of Swift/Kotlin, spec checks.

    .venv/bin/python -m pytest tests/test_sdk.py -x -q

Fast tests work on the committed generated packages and on specs built from
manifests; tests/test_sdk_artifacts.py runs the generator on real exported
artifacts (iOS/Android consistency, bad input); tests/test_web_e2e.py runs the
web package in Chromium.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from projdeploy.errors import ConfigError
from projdeploy.sdk import check_generated, generated_files, versions
from projdeploy.sdk.render import MARKER
from projdeploy.sdk.spec import SPEC_FILE, build_spec, identifier

ROOT = Path(__file__).resolve().parents[1]
APPS = ROOT / "sample_apps"
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def committed_sdks() -> list[Path]:
    return sorted(p.parent for p in APPS.rglob(SPEC_FILE) if "node_modules" not in p.parts)


def parse_errors(lang: str, text: str) -> bool:
    from tree_sitter import Language, Parser

    mod = __import__({"swift": "tree_sitter_swift", "kotlin": "tree_sitter_kotlin"}[lang])
    return Parser(Language(mod.language())).parse(text.encode()).root_node.has_error


def test_committed_sdks_cover_every_target_and_task():
    found = {
        (json.loads((d / SPEC_FILE).read_text())["target"], json.loads((d / SPEC_FILE).read_text())["task"])
        for d in committed_sdks()
    }
    assert found == {(t, task) for t in ("web", "ios", "android") for task in ("digits-cls", "pycode")}


@pytest.mark.parametrize("sdk", committed_sdks(), ids=lambda p: p.relative_to(APPS).as_posix())
def test_committed_generated_files_are_up_to_date(sdk):
    assert check_generated(sdk) == [], "regenerate with projdeploy sdk (see docs/sdk.md)"
    for rel in generated_files(json.loads((sdk / SPEC_FILE).read_text())):
        if rel != SPEC_FILE:
            assert MARKER in (sdk / rel).read_text()[:400], rel


def test_check_generated_catches_an_edit_and_a_stale_file(tmp_path):
    from click.testing import CliRunner

    from projdeploy.cli import cli

    sdk = tmp_path / "sdk"
    shutil.copytree(APPS / "web" / "src" / "sdk" / "digits_cls", sdk, ignore=shutil.ignore_patterns("assets"))
    assert check_generated(sdk) == []
    idx = sdk / "src" / "engine.ts"
    idx.write_text(idx.read_text().replace("SEQ_LEN = 64", "SEQ_LEN = 65"))
    (sdk / "src" / "old.ts").write_text(f"// {MARKER}\n")
    problems = check_generated(sdk)
    assert problems == [
        "src/engine.ts: differs from the generator's output",
        "src/old.ts: generated file no longer produced by the generator",
    ]
    res = CliRunner().invoke(cli, ["sdk", "--check", "--out", str(sdk)])
    assert res.exit_code == 1 and "src/engine.ts" in res.output


def test_identifiers_are_sanitised():
    assert identifier("digits-cls")["type"] == "DigitsCls"
    assert identifier("pycode:email")["snake"] == "pycode_email"
    assert identifier("7up")["type"] == "Task7up"
    assert identifier("class")["type"] == "ClassModel"
    assert identifier("")["type"] == "Model"
    evil = identifier('x"); rm -rf / ; //\n}\nimport Evil')
    for v in evil.values():
        assert re.match(r"^[A-Za-z0-9_.-]+$", v), v
    assert IDENT.match(evil["type"]) and IDENT.match(evil["snake"])


def _fake_artifact(tmp_path: Path, spec_path: Path, fmt: str, task: str, labels=None) -> tuple[Path, dict]:
    """A manifest dict rebuilt from a committed spec (build_spec reads only the tokenizer file)."""
    spec = json.loads(spec_path.read_text())
    d = tmp_path / "art"
    d.mkdir(exist_ok=True)
    (d / "projdeploy_tokenizer.json").write_text(json.dumps(spec["tokenizer"]))
    progs = {
        k: {
            io: [{**t, "shape": [x if x >= 0 else "dyn" for x in t["shape"]]} for t in v[io]]
            for io in ("inputs", "outputs")
        }
        for k, v in spec["programs"].items()
    }
    main = "model.pte" if fmt == "executorch" else "model.onnx"
    (d / main).write_bytes(b"x")
    manifest = {
        "format": fmt,
        "main_file": main,
        "files": {main: {}},
        "programs": progs,
        "model": {
            "task": task,
            "task_kind": spec["kind"],
            "modality": spec["modality"],
            "labels": labels if labels is not None else [str(i) for i in range(spec["num_labels"])],
            "image_shape": spec["image_shape"],
            "config": {"max_position_embeddings": spec["context"], "vocab_size": spec.get("vocab_size", 0)},
        },
    }
    if spec.get("lm"):  # an LM program: how to drive it (exporters/llm's model.lm)
        lm = spec["lm"]
        manifest["model"]["lm"] = {
            **{k: lm[k] for k in ("kv_cache", "program", "max_seq_len", "bos_id", "eos_ids")},
            "prompt_len": {"min": 1, "max": lm["prompt_len_max"]},
            **({"kv_io": lm["kv_io"]} if lm["kv_io"] else {}),
        }
    return d, manifest


@pytest.mark.parametrize("target", ["ios", "android", "web"])
def test_hostile_task_name_and_labels_cannot_inject_code(tmp_path, target):
    src = APPS / "web" / "src" / "sdk" / "digits_cls" / SPEC_FILE
    fmt = "onnx" if target == "web" else "executorch"
    evil = 'digits"); } import Evil; /* */ \n exit(1) // ${x} \\u{41}'
    d, manifest = _fake_artifact(tmp_path, src, fmt, evil, labels=['"; evil()', "${x}", "*/"])
    files = generated_files(build_spec(d, target, manifest))
    code = "\n".join(v for k, v in files.items() if not k.endswith((".json", ".md")))
    if target == "web":  # TypeScript embeds the spec as a JSON literal, where strings stay data
        code = "\n".join(v for k, v in files.items() if k.endswith(".ts") and k != "src/spec.ts")
    for bad in ("import Evil", "exit(1)", "${x}", "evil()"):
        assert bad not in code, bad
    if target != "web":
        lang = "swift" if target == "ios" else "kotlin"
        for k, v in files.items():
            if k.endswith((".swift", ".kt", ".kts")):
                assert not parse_errors(lang, v), k
    else:
        spec_literal = files["src/spec.ts"].split("export const SPEC = ", 1)[1].split(" as const;", 1)[0]
        assert json.loads(spec_literal)["task"] == evil  # the name survives only as a JSON string


@pytest.mark.parametrize(
    "sdk",
    [d for d in committed_sdks() if json.loads((d / SPEC_FILE).read_text())["target"] in ("ios", "android")],
    ids=lambda p: p.relative_to(APPS).as_posix(),
)
def test_generated_swift_and_kotlin_parse(sdk):
    lang = "swift" if json.loads((sdk / SPEC_FILE).read_text())["target"] == "ios" else "kotlin"
    files = [p for p in sdk.rglob("*") if p.suffix in (".swift", ".kt", ".kts")]
    assert files
    for p in files:
        assert not parse_errors(lang, p.read_text()), p
    broken = files[0].read_text() + "\nfun func ((( {\n"
    assert parse_errors(lang, broken)  # the checker does catch errors


def test_versions_are_pinned_in_one_place():
    v = versions()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"executorch=={v["executorch"]}"' in pyproject
    assert v["executorch-android"] == v["executorch"]
    # the Swift runtime: a release branch of the exporter's major.minor (swiftpm-1.5.0 runs 1.5.1's program format)
    major_minor = re.escape(".".join(v["executorch"].split(".")[:2]))
    assert re.fullmatch(rf"swiftpm-{major_minor}\.\d+", v["executorch-swiftpm-branch"]), v["executorch-swiftpm-branch"]
    web = json.loads((APPS / "web" / "package.json").read_text())
    deps = {**web["dependencies"], **web["devDependencies"]}
    for name in ("onnxruntime-web", "vite", "typescript", "playwright-core"):
        assert deps[name] == v[name], name
    lock = json.loads((APPS / "web" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/onnxruntime-web"]["version"] == v["onnxruntime-web"]
    android = (APPS / "android" / "build.gradle.kts").read_text()
    assert f'version "{v["android-gradle-plugin"]}"' in android and f'version "{v["kotlin"]}"' in android
    wrapper = (APPS / "android" / "gradle" / "wrapper" / "gradle-wrapper.properties").read_text()
    assert f"gradle-{v['gradle']}-bin.zip" in wrapper


def test_spec_refuses_unfit_or_unsupported_artifacts(tmp_path):
    src = APPS / "web" / "src" / "sdk" / "pycode" / SPEC_FILE
    d, manifest = _fake_artifact(tmp_path, src, "onnx", "pycode")
    with pytest.raises(ConfigError, match="does not fit target 'android'"):
        build_spec(d, "android", manifest)
    with pytest.raises(ConfigError, match="known targets"):
        build_spec(d, "windows", manifest)
    bad = json.loads(json.dumps(manifest))
    bad["programs"]["forward"]["inputs"][0]["name"] = 'ids"+evil'
    with pytest.raises(ConfigError, match="tensor name"):
        build_spec(d, "web", bad)
    bad = json.loads(json.dumps(manifest))
    bad["main_file"] = "../model.onnx"
    with pytest.raises(ConfigError, match="main_file"):
        build_spec(d, "web", bad)
    (d / "projdeploy_tokenizer.json").write_text(json.dumps({"type": "wordpiece", "vocab_size": 512}))
    with pytest.raises(ConfigError, match="'wordpiece' tokenizers are not supported"):
        build_spec(d, "web", manifest)


def _bpe_tokenizer_file(d: Path, **change) -> None:
    from projdeploy.tasks.tokenizers import BPETokenizer

    tok = BPETokenizer.train(["def f(x):\n    return x + 1\n"] * 20, 300).to_dict()
    for k, v in change.items():
        node = tok["hf_tokenizer"]
        *path, last = k.split(".")
        for p in path:
            node = node[p]
        node[last] = v
    (d / "projdeploy_tokenizer.json").write_text(json.dumps(tok))


@pytest.mark.parametrize(
    "change,field",
    [
        ({"normalizer": {"type": "NFC"}}, "hf_tokenizer.normalizer"),
        ({"pre_tokenizer": {"type": "Whitespace"}}, "hf_tokenizer.pre_tokenizer"),
        ({"model.type": "WordPiece"}, "hf_tokenizer.model.type"),
        ({"model.dropout": 0.1}, "hf_tokenizer.model.dropout"),
        ({"model.merges": [["a", 1]]}, "hf_tokenizer.model.merges"),
        ({"model.vocab": {"a": "0); exit(1)"}}, "hf_tokenizer.model.vocab"),
    ],
)
def test_bpe_tokenizers_the_sdks_cannot_reproduce_are_refused(tmp_path, change, field):
    src = APPS / "web" / "src" / "sdk" / "pycode" / SPEC_FILE
    d, manifest = _fake_artifact(tmp_path, src, "onnx", "pycode")
    _bpe_tokenizer_file(d)
    assert build_spec(d, "web", manifest)["tokenizer"]["type"] == "bpe"  # the trained one is accepted
    _bpe_tokenizer_file(d, **change)
    with pytest.raises(ConfigError) as e:
        build_spec(d, "web", manifest)
    assert e.value.field == field


HOSTILE_TOKENIZER_FIELDS = [
    ("bos_id", "0); exit(1); //"),
    ("eos_id", "process.exit(1)"),
    ("pad_id", 1.5),
    ("pad_id", True),
    ("eos_id", -1),
    ("bos_id", 10**12),
    ("vocab_size", "259"),
    ("type", "process.exit"),
    ("type", ["byte"]),
]


def _write_manifest(d: Path, manifest: dict) -> None:
    from exporters.base import SCHEMA
    from projdeploy.fsutil import sha256_file

    (d / "test_vectors.json").write_text(json.dumps({"program": "forward", "cases": [], "atol": 0.001}))
    files = {p.name: {"sha256": sha256_file(p), "size": p.stat().st_size} for p in d.iterdir() if p.is_file()}
    files.pop("manifest.json", None)
    (d / "manifest.json").write_text(json.dumps({**manifest, "schema": SCHEMA, "files": files}))


@pytest.mark.parametrize("target", ["ios", "android", "web"])
@pytest.mark.parametrize("field,value", HOSTILE_TOKENIZER_FIELDS, ids=lambda v: repr(v)[:20])
def test_hostile_tokenizer_fields_are_refused_by_every_generator(tmp_path, target, field, value):
    from click.testing import CliRunner

    from projdeploy.cli import cli

    fmt = "onnx" if target == "web" else "executorch"
    src = (
        APPS / "web" / "src" / "sdk" / "pycode" if target == "web" else APPS / "ios" / "Packages" / "Pycode"
    ) / SPEC_FILE
    d, manifest = _fake_artifact(tmp_path, src, fmt, "pycode")
    tok = json.loads((d / "projdeploy_tokenizer.json").read_text())
    tok[field] = value
    (d / "projdeploy_tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(ConfigError) as e:
        build_spec(d, target, manifest)
    assert e.value.field == field and "projdeploy_tokenizer.json" in e.value.source
    # the same through the CLI on a real (hashed) artifact: exit 2, one line naming the field, nothing written
    _write_manifest(d, manifest)
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["sdk", "--artifact", str(d), "--target", target, "--out", str(out)])
    assert res.exit_code == 2 and field in res.output and "Traceback" not in res.output, res.output
    assert not out.exists()


@pytest.mark.parametrize("target", ["ios", "android", "web"])
def test_a_hand_edited_spec_cannot_put_text_into_code(tmp_path, target):
    src = {"web": APPS / "web" / "src" / "sdk" / "pycode", "ios": APPS / "ios" / "Packages" / "Pycode"}
    sdk = src.get(target, APPS / "android" / "pycode")
    spec = json.loads((sdk / SPEC_FILE).read_text())
    for path, value in [
        (("tokenizer", "eos_id"), "257); process.exit(1); //"),
        (("seq_len",), "64; exit(1)"),
        (("ids", "type"), "Pycode{ exit(1) }"),
        (("programs", "forward" if "forward" in spec["programs"] else "prefill", "inputs", 0, "name"), 'x")exit(1)'),
        (("model_file",), "../../etc/passwd"),
    ]:
        bad = json.loads(json.dumps(spec))
        node = bad
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
        with pytest.raises(ConfigError):
            generated_files(bad)


def wordpiece_text_classifier(tmp_path: Path, fmt: str) -> tuple[Path, dict]:
    """A text-classifier artifact (manifest + BERT WordPiece tokenizer file) for generating SDKs from."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    tok.train_from_iterator(["a good film", "a bad film"] * 10, trainers.WordPieceTrainer(special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    d = tmp_path / f"wp-{fmt}"
    d.mkdir()
    hf = json.loads(tok.to_str())
    (d / "projdeploy_tokenizer.json").write_text(
        json.dumps(
            {
                "type": "hf",
                "vocab_size": tok.get_vocab_size(),
                "bos_id": 2,
                "eos_id": 3,
                "pad_id": 0,
                "hf_tokenizer": hf,
            }
        )
    )
    main = "model.pte" if fmt == "executorch" else "model.onnx"
    (d / main).write_bytes(b"x")
    manifest = {
        "format": fmt,
        "main_file": main,
        "files": {main: {}},
        "programs": {
            "forward": {
                "inputs": [{"name": "input_ids", "shape": [1, 16], "dtype": "int64"}],
                "outputs": [{"name": "logits", "shape": [1, 2], "dtype": "float32"}],
            }
        },
        "model": {"task": "review-cls", "task_kind": "cls", "modality": "text", "labels": ["bad", "good"]},
    }
    return d, manifest


@pytest.mark.parametrize("target", ["ios", "android", "web"])
def test_a_wordpiece_text_classifier_generates_on_every_target(tmp_path, target):
    d, manifest = wordpiece_text_classifier(tmp_path, "onnx" if target == "web" else "executorch")
    spec = build_spec(d, target, manifest)
    assert spec["text_engine"] == "wordpiece" and spec["kind"] == "cls"
    files = generated_files(spec)
    code = "\n".join(files.values())
    assert "WordPieceTokenizer" in code and "encodeForClassification" in code
    lang = {"ios": "swift", "android": "kotlin"}.get(target)
    for k, v in files.items():
        if lang and k.endswith((".swift", ".kt")):
            assert not parse_errors(lang, v), k
    if target == "ios":
        from tests.test_sdk_swift import problems

        assert problems(files) == []
    bad = json.loads((d / "projdeploy_tokenizer.json").read_text())
    bad["hf_tokenizer"]["pre_tokenizer"] = {"type": "Whitespace"}
    (d / "projdeploy_tokenizer.json").write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="BertPreTokenizer"):
        build_spec(d, target, manifest)


def lm_program_artifact(tmp_path: Path, fmt: str, protocol: str = "in_program", hf: bool = False) -> tuple[Path, dict]:
    """An artifact shaped like exporters/llm's: a BPE tokenizer (``hf``: a pretrained model's tokenizer.json),
    binary test vectors, and ``model.lm`` with the program of ``protocol``: ``in_program`` (forward(tokens,
    input_pos), the cache inside), ``io`` (a decoder with past, the cache as inputs/outputs) or ``state``
    (Core ML prefill + decode functions over MLState)."""
    d = tmp_path / f"lmprog-{fmt}-{protocol}{'-hf' if hf else ''}"
    d.mkdir()
    _bpe_tokenizer_file(d)
    tok = json.loads((d / "projdeploy_tokenizer.json").read_text())
    vocab = tok["vocab_size"]
    if hf:
        (d / "projdeploy_tokenizer.json").unlink()
        (d / "tokenizer.json").write_text(json.dumps(tok["hf_tokenizer"]))
    main = {"executorch": "model.pte", "onnx": "model.onnx", "coreml": "model.mlpackage"}[fmt]
    (d / main).write_bytes(b"x")
    if protocol == "state":  # Core ML: one multifunction package, prefill (padded to 8) + decode over MLState
        tok_io = [
            {"name": "tokens", "shape": [1, 1], "dtype": "int32"},
            {"name": "input_pos", "shape": [1], "dtype": "int32"},
        ]
        pre_io = [
            {"name": "tokens", "shape": [1, 8], "dtype": "int32"},
            {"name": "input_pos", "shape": [8], "dtype": "int32"},
        ]
        progs = {
            "decode": {"inputs": tok_io, "outputs": [{"name": "logits", "shape": [1, vocab], "dtype": "float16"}]},
            "prefill": {"inputs": pre_io, "outputs": [{"name": "logits", "shape": [1, 8, vocab], "dtype": "float16"}]},
        }
        extra = {"program": "decode", "prefill_len": 8}
    elif protocol == "io":
        kv = [f"past_key_values.{i}.{k}" for i in range(2) for k in ("key", "value")]
        ins = [{"name": n, "shape": ["batch", "seq"], "dtype": "int64"} for n in ("input_ids", "attention_mask")]
        ins += [{"name": "position_ids", "shape": ["batch", "seq"], "dtype": "int64"}]
        ins += [{"name": n, "shape": ["batch", 2, "past", 8], "dtype": "float32"} for n in kv]
        outs = [{"name": "logits", "shape": ["batch", "seq", vocab], "dtype": "float32"}]
        outs += [
            {"name": n.replace("past_key_values.", "present."), "shape": ["batch", 2, "t", 8], "dtype": "float32"}
            for n in kv
        ]
        extra = {"kv_io": [[n, n.replace("past_key_values.", "present.")] for n in kv]}
    else:
        ins = [
            {"name": "tokens", "shape": [1, "T"], "dtype": "int64"},
            {"name": "input_pos", "shape": [1], "dtype": "int64"},
        ]
        outs = [{"name": "logits", "shape": [1, vocab], "dtype": "float32"}]
        extra = {}
    if protocol != "state":
        progs = {"forward": {"inputs": ins, "outputs": outs}}
    files = {main: {}, "test_vectors.npz": {}, "tokenizer.json" if hf else "projdeploy_tokenizer.json": {}}
    manifest = {
        "format": fmt,
        "main_file": main,
        "files": files,
        "programs": progs,
        "model": {
            "task": "lm-hf" if hf else "lm",  # distinct packages when several are compiled together
            "task_kind": "lm",
            "config": {"vocab_size": vocab},
            "lm": {
                "program": "forward",
                "kv_cache": protocol,
                "max_seq_len": 64,
                "prompt_len": {"min": 1, "max": 63},
                "bos_id": tok["bos_id"],
                "eos_ids": [tok["eos_id"]],
                **extra,
            },
        },
    }
    return d, manifest


@pytest.mark.parametrize("target", ["ios", "android", "web"])
def test_an_lm_program_with_the_cache_inside_generates_the_runner_protocol(tmp_path, target):
    d, manifest = lm_program_artifact(tmp_path, "onnx" if target == "web" else "executorch")
    spec = build_spec(d, target, manifest)
    assert spec["lm_mode"] == "kv_in_program" and spec["seq_len"] == 64 and spec["modality"] == "text"
    assert spec["self_test"] and spec["resources"][-1] == "projdeploy_selftest.json"
    files = generated_files(spec)
    code = "\n".join(files.values())
    assert "forwardAt" in code and '"decode"' not in code and "'decode'" not in code
    lang = {"ios": "swift", "android": "kotlin"}.get(target)
    for k, v in files.items():
        if lang and k.endswith((".swift", ".kt")):
            assert not parse_errors(lang, v), k
    if target == "ios":
        from tests.test_sdk_swift import problems

        assert problems(files) == [] and '"kernels_llm"' in files["Package.swift"]


def test_reference_drives_an_lm_program_by_the_runner_protocol(tmp_path):
    """The loop every SDK implements for exporters/llm programs, against a stateful fake program."""
    from projdeploy.sdk.reference import CallCursor, Reference

    d, manifest = lm_program_artifact(tmp_path, "onnx")
    V = manifest["programs"]["forward"]["outputs"][0]["shape"][1]
    calls, cache = [], {}

    def program(name, inputs):  # a causal toy LM: next = (sum of the cached tokens + pos) % V
        tokens, (pos,) = inputs[0][0].tolist(), inputs[1].tolist()
        calls.append((len(tokens), pos))
        for i, t in enumerate(tokens):
            cache[pos + i] = t
        last = pos + len(tokens) - 1
        logits = np.full((1, V), -1.0, np.float32)
        logits[0, (sum(cache[i] for i in range(last + 1)) + last) % V] = 1.0
        return [logits]

    ref = Reference.__new__(Reference)
    ref.dir, ref.manifest, ref.call = d, manifest, program
    ref.spec = build_spec(d, "web", manifest)
    ref.tok, ref.labels = ref.spec["tokenizer"], []
    ref.lm = CallCursor(program, ref.spec)
    out = ref.generate_tokens([5, 6, 7], max_new_tokens=70, stop_at_eos=False)
    assert len(out) == 70 and calls[0] == (3, 0) and calls[1] == (1, 3)
    S = ref.spec["seq_len"]
    assert max(p for n, p in calls if n == 1) == S - 1  # never past the window
    assert (S // 2, 0) in calls  # re-prefilled from the most recent half when the window filled
