"""The Kotlin SDK's LM loop (model.lm: in_program) run on the JVM against a toy program, equal to the Python reference.

    bash sample_apps/android/compile-check/setup.sh && .venv/bin/python -m pytest tests/test_sdk_lm_jvm.py -q

The generated Android package of an exporters/llm-shaped artifact is compiled with kotlinc -Werror together
with tests/jvm/ToyExecuTorch.kt (the executorch-android signatures with a toy causal "forward(tokens,
input_pos)" that keeps its cache between calls) and run: greedy and sampled generation, a prompt longer than
the window, generation past the window (the restart from the most recent half) and EOS must give the same
tokens, and the same (tokens, position) calls, as projdeploy.sdk.reference on the same toy in Python.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_sdk import lm_program_artifact

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent
CASES = [  # prompt, max new tokens, temperature, top-k, seed, stop at EOS
    ([5, 6, 7], 70, 0.0, 0, 1, False),
    (list(range(3, 103)), 20, 0.0, 0, 1, False),  # 100 prompt tokens: the last 63 (prompt_len.max)
    ([9, 4], 40, 0.9, 20, 7, False),
    ([1], 150, 1.3, 0, 3, True),
]
MAIN = """
import {pkg}.*
import kotlinx.coroutines.runBlocking
import org.pytorch.executorch.Module

fun main(args: Array<String>) {{
    val ctor = Lm::class.java.declaredConstructors.first {{ it.parameterCount == 3 }}
    ctor.isAccessible = true
    for (line in java.io.File(args[0]).readLines()) {{
        val f = line.split("\\t")
        val backend = ExecuTorchBackend("toy.pte")
        val lm = ctor.newInstance(backend, java.io.File("."), listOf<String>()) as Lm
        val opts = SamplingOptions(f[1].toInt(), f[2].toDouble(), f[3].toInt(), f[4].toInt(), f[5] == "1")
        val out = runBlocking {{ lm.generateTokens(f[0].split(",").map {{ it.toInt() }}.toIntArray(), opts) }}
        val module = ExecuTorchBackend::class.java.getDeclaredField("module").apply {{ isAccessible = true }}
        val calls = (module.get(backend) as Module).calls.joinToString(";") {{ "${{it.first}}@${{it.second}}" }}
        println(out.joinToString(",") + "\\t" + calls)
    }}
}}
"""


def toy(vocab: int):
    """The toy program of tests/jvm/ToyExecuTorch.kt in Python, recording its (tokens, position) calls."""
    cache, calls = {}, []

    def program(name, inputs):
        tokens, pos = inputs[0][0].tolist(), int(inputs[1][0])
        calls.append((len(tokens), pos))
        for i, t in enumerate(tokens):
            cache[pos + i] = t
        last = pos + len(tokens) - 1
        logits = np.full((1, vocab), -1.0, np.float32)
        logits[0, (sum(cache[i] for i in range(last + 1)) + last) % vocab] = 1.0
        return [logits]

    return program, calls


def _byte_lm(tmp_path):
    d, manifest = lm_program_artifact(tmp_path, "executorch")
    tok = {"type": "byte", "vocab_size": 259, "bos_id": 256, "eos_id": 257, "pad_id": 258, "levels": None}
    (d / "projdeploy_tokenizer.json").write_text(json.dumps(tok))
    manifest["model"]["config"]["vocab_size"] = 259
    manifest["model"]["lm"].update(bos_id=256, eos_ids=[257])
    manifest["programs"]["forward"]["outputs"][0]["shape"] = [1, 259]
    return d, manifest


def _compile(files: dict, pkg: str, tmp_path: Path) -> Path:
    from test_sdk_compile import CHECK, kotlin_classpath, kotlinc

    srcs = []
    for rel, text in files.items():
        if rel.endswith(".kt"):
            (tmp_path / Path(rel).name).write_text(text)
            srcs.append(tmp_path / Path(rel).name)
    (tmp_path / "Main.kt").write_text(MAIN.format(pkg=pkg))
    jar = tmp_path / "lm.jar"
    cmd = [str(kotlinc()), "-Werror", "-jvm-target", "17", "-cp", kotlin_classpath(), "-d", str(jar)]
    cmd += [str(CHECK / "stubs" / "android"), str(HERE / "jvm" / "ToyExecuTorch.kt"), *map(str, srcs)]
    cmd.append(str(tmp_path / "Main.kt"))
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return jar


def test_the_kotlin_lm_loop_equals_the_python_reference_on_a_toy_program(tmp_path):
    from test_sdk_compile import KOTLIN_HOME

    from projdeploy.sdk import generated_files
    from projdeploy.sdk.reference import CallCursor, Reference
    from projdeploy.sdk.spec import build_spec

    d, manifest = _byte_lm(tmp_path)
    spec = build_spec(d, "android", manifest)
    assert spec["ids"]["type"] == "Lm" and spec["lm"]["prompt_len_max"] == 63 and spec["seq_len"] == 64
    jar = _compile(generated_files(spec), spec["ids"]["java_package"], tmp_path)
    rows = [f"{','.join(map(str, p))}\t{n}\t{t}\t{k}\t{s}\t{int(e)}" for p, n, t, k, s, e in CASES]
    (tmp_path / "cases.tsv").write_text("\n".join(rows) + "\n")
    cp = ":".join(
        [
            str(jar),
            str(KOTLIN_HOME / "lib" / "kotlin-stdlib.jar"),
            str(KOTLIN_HOME / "lib" / "kotlinx-coroutines-core-jvm.jar"),
        ]
    )
    res = subprocess.run(
        ["java", "-Dtoy.vocab=259", "-cp", cp, "MainKt", str(tmp_path / "cases.tsv")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == len(CASES)
    for (prompt, n, temp, top_k, seed, eos), line in zip(CASES, lines):
        got_tokens, got_calls = line.split("\t")
        program, calls = toy(259)
        ref = Reference.__new__(Reference)
        ref.dir, ref.manifest, ref.spec = d, manifest, spec
        ref.tok, ref.labels, ref.call = spec["tokenizer"], [], program
        ref.lm = CallCursor(program, spec)
        want = ref.generate_tokens(list(prompt), n, temp, top_k, seed, eos)
        assert [int(x) for x in got_tokens.split(",") if x] == want, (prompt, n, temp)
        assert got_calls == ";".join(f"{a}@{b}" for a, b in calls)  # the same program calls, in order
    long = [c for c in lines[0].split("\t")[1].split(";")]
    assert long[0] == "3@0" and "32@0" in long and max(int(c.split("@")[1]) for c in long) == 63  # window restart
    assert lines[1].split("\t")[1].startswith("63@0")  # the prompt's last 63 tokens
