"""The web SDK on an exporters/llm ONNX decoder-with-past program, end to end in headless Chromium.

    sample_apps/web/setup.sh && .venv/bin/python -m pytest tests/test_web_lm_e2e.py -x -q

A tiny ``transformers`` Llama with its own trained BPE ``tokenizer.json`` (tests/tiny_bpe_llama.py)
is exported with ``exporters.llm.onnx_artifact`` (Optimum's decoder with past, ``model.lm.kv_cache:
"io"``, a window of 48 positions). ``projdeploy sdk --target web`` wires it into a copy of the sample
app in the LM slot; the page generates in the package's Web Worker with onnxruntime-web, feeding each
call's present tensors back as the next call's past. Greedy tokens must equal the Python runner's
(``ORTLMRunner``, ONNX Runtime with IO binding), sampled ones the Python reference's, streams must join
to the same text, a break or an AbortSignal stops a 200-token stream (past several window restarts),
and the self-test built from ``test_vectors.npz`` passes in the browser.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading

import numpy as np
import pytest
from test_web_e2e import CHROMIUM, WEB, _Handler, _missing

pytestmark = pytest.mark.slow
WINDOW = 48
PROMPTS = [
    {"text": "def f3(x):\n", "options": {"maxNewTokens": 20, "stopAtEos": False}},
    {"text": "def f", "options": {"maxNewTokens": 60, "stopAtEos": False}},  # past the window: restarts
    {"text": "def f1", "options": {"maxNewTokens": 12, "temperature": 0.9, "topK": 20, "seed": 7}},
    {"text": "x", "options": {"maxNewTokens": 8, "temperature": 1.3, "seed": 3}},
]


def _build(app, env) -> None:
    for cmd in (["tsc", "--noEmit", "-p", "."], ["vite", "build", "--logLevel", "warn"]):
        res = subprocess.run(
            ["npx", "--no-install", *cmd], cwd=app, capture_output=True, text=True, env=env, timeout=300
        )
        assert res.returncode == 0, res.stdout + res.stderr


@pytest.fixture(scope="module")
def lm_app(tmp_path_factory):
    why = _missing()
    if why:
        pytest.skip(why)
    import torch
    from tiny_bpe_llama import make

    from exporters.llm.onnx_artifact import export_onnx_lm_artifact
    from projdeploy.sdk import check_generated, generate

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("web-lm")
    art = export_onnx_lm_artifact(make(tmp / "ckpt"), tmp / "lm", max_seq_len=WINDOW, model_info={"task": "pycode"})
    app = tmp / "app"
    shutil.copytree(WEB, app, ignore=shutil.ignore_patterns("node_modules", "dist", "assets"))
    os.symlink(WEB / "node_modules", app / "node_modules")
    out = app / "src" / "sdk" / "pycode"  # the sample app's LM slot
    shutil.rmtree(out)
    generate(art.path, "web", out)
    assert check_generated(out) == []
    _build(app, {**os.environ, "NODE_OPTIONS": "--max-old-space-size=1024"})
    return app, art.path


@pytest.fixture(scope="module")
def page(lm_app, tmp_path_factory):
    app, art = lm_app
    tmp = tmp_path_factory.mktemp("e2e-lm")
    (tmp / "req.json").write_text(json.dumps({"pycode": {"prompts": PROMPTS}, "draw": False}))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(app / "dist")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        res = subprocess.run(
            ["node", str(app / "e2e" / "run.mjs"), url, str(tmp / "req.json"), str(tmp / "out.json")],
            cwd=app,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "CHROMIUM": CHROMIUM},
        )
        assert res.returncode == 0, res.stdout + res.stderr
    finally:
        server.shutdown()
    return json.loads((tmp / "out.json").read_text()), art


def test_the_self_test_from_the_npz_vectors_passes_in_the_browser(page):
    from projdeploy.sdk.reference import Reference

    out, art = page
    assert "pycode" not in out["errors"], out["log"]
    rep = out["selfTests"]["pycode"]
    assert rep["passed"] and rep["cases"] >= 2 and rep["maxAbsDiff"] <= rep["atol"], rep
    ref = Reference(art, "web").self_test()
    for got, want in zip(rep["outputs"], ref["outputs"]):
        np.testing.assert_allclose(got[0], want[0], atol=1e-4, rtol=0)  # top-k logits of each greedy step
        assert got[1][1] == want[1][1]  # the greedy token


def test_greedy_tokens_equal_the_python_runner(page):
    from exporters.llm.onnx_program import ORTLMRunner
    from projdeploy.sdk.reference import Reference

    out, art = page
    ref = Reference(art, "web")
    runner = ORTLMRunner(art / "model.onnx", max_seq_len=WINDOW)
    greedy = PROMPTS[0]
    want = runner.generate(ref.prompt_tokens(greedy["text"]), greedy["options"]["maxNewTokens"])
    got = out["pycode"][0]
    assert got["tokens"] == want and len(set(want)) > 3, (got["tokens"], want)
    assert got["text"] == ref.decode(want)


def test_completions_and_streams_match_the_python_reference(page):
    from projdeploy.sdk.reference import Reference

    out, art = page
    ref = Reference(art, "web")
    for p, got in zip(PROMPTS, out["pycode"]):
        o = p["options"]
        want = ref.complete(
            p["text"],
            max_new_tokens=o["maxNewTokens"],
            temperature=o.get("temperature", 0.0),
            top_k=o.get("topK", 0),
            seed=o.get("seed", 1),
            stop_at_eos=o.get("stopAtEos", True),
        )
        assert got["tokens"] == want["tokens"], p
        assert got["text"] == want["text"] and "".join(got["pieces"]) == want["text"], p


def test_break_and_abort_stop_a_stream_and_the_model_keeps_answering(page):
    out, _ = page
    c = out["cancel"]
    assert c["first"], c
    assert 1 <= c["abortedPieces"] < 50, c  # a 200-token stream stopped early
    assert 1 <= len(c["after"]["tokens"]) <= 4
