"""The web sample app end to end: real ONNX artifacts, Vite build, onnxruntime-web in headless Chromium.

    sample_apps/web/setup.sh && .venv/bin/python -m pytest tests/test_web_e2e.py -x -q

Exports digits-cls and a tiny pycode LM to ONNX with exporters.api, wires them into a copy of
sample_apps/web with ``projdeploy sdk`` (the generated code must equal the committed code),
builds the page, serves it from a localhost static server (.wasm as application/wasm) and drives
Debian's chromium with playwright-core. The page's outputs (self-test vectors, classifications of
eval images given as [0, 1] intensities, greedy and sampled completions) must match the Python
reference (projdeploy.sdk.reference on onnxruntime).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "sample_apps" / "web"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

pytestmark = pytest.mark.slow


def _missing() -> str | None:
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        return f"chromium not installed ({CHROMIUM}); run sample_apps/web/setup.sh"
    if shutil.which("node") is None:
        return "node not installed; run sample_apps/web/setup.sh"
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        return "sample_apps/web/node_modules missing; run sample_apps/web/setup.sh (npm ci)"
    return None


@pytest.fixture(scope="module")
def built_app(tmp_path_factory, tiny_cls_checkpoint):
    why = _missing()
    if why:
        pytest.skip(why)
    import torch

    from exporters.api import export_checkpoint
    from projdeploy.layout import MARKER
    from projdeploy.sdk import check_generated, generate
    from projdeploy.train.loop import TrainConfig
    from projdeploy.train.small import train_small

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("web")
    lm_ckpt = tmp / "pycode-ckpt"
    train_small(
        "pycode",
        "tiny",
        lm_ckpt,
        TrainConfig(steps=12, eval_every=0, warmup_steps=2, batch_size=8),
        progress=False,
        max_eval_rows=8,
    )
    arts = {
        "digits_cls": export_checkpoint(tiny_cls_checkpoint, "onnx", "fp32", "digits-cls", tmp / "cls", max_rows=16),
        "pycode": export_checkpoint(lm_ckpt, "onnx", "fp32", "pycode", tmp / "lm", max_rows=4),
    }
    app = tmp / "app"
    shutil.copytree(WEB, app, ignore=shutil.ignore_patterns("node_modules", "dist", "assets"))
    os.symlink(WEB / "node_modules", app / "node_modules")
    for name, art in arts.items():
        out = app / "src" / "sdk" / name
        generate(art.path, "web", out)
        assert check_generated(out) == []
        committed = WEB / "src" / "sdk" / name
        for p in out.rglob("*"):  # regenerated from a fresh artifact == committed code
            rel = p.relative_to(out)
            if p.is_file() and rel.parts[0] != "assets" and rel.name != MARKER:
                assert p.read_text() == (committed / rel).read_text(), f"{name}/{rel} differs from the committed file"
    env = {**os.environ, "NODE_OPTIONS": "--max-old-space-size=1024"}
    res = subprocess.run(
        ["npx", "--no-install", "tsc", "--noEmit", "-p", "."],
        cwd=app,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    res = subprocess.run(
        ["npx", "--no-install", "vite", "build", "--logLevel", "warn"],
        cwd=app,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return app, {k: a.path for k, a in arts.items()}


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".json": "application/json",
        ".onnx": "application/octet-stream",
    }

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def page_results(built_app, tmp_path_factory):
    from projdeploy.tasks import get_task

    app, arts = built_app
    task = get_task("digits-cls")
    images = [
        {"pixels": (np.asarray(task.eval.docs[i], np.float64) / 16.0).tolist(), "maxValue": 1.0} for i in range(6)
    ]
    # raw 0..16 intensities with maxValue 16 too: scaling happens in the SDK
    images.append({"pixels": np.asarray(task.eval.docs[6], np.float64).tolist(), "maxValue": 16.0})
    prompts = [
        {"text": "def main(", "options": {"maxNewTokens": 12}},
        {"text": "import os\nclass ", "options": {"maxNewTokens": 12, "temperature": 0.9, "topK": 20, "seed": 7}},
        {"text": "x = ", "options": {"maxNewTokens": 8, "temperature": 1.3, "seed": 3}},
    ]
    req = {"digits": {"images": images}, "pycode": {"prompts": prompts}, "draw": True}
    tmp = tmp_path_factory.mktemp("e2e")
    (tmp / "req.json").write_text(json.dumps(req))
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
    return json.loads((tmp / "out.json").read_text()), req, arts


def test_page_loads_both_models_and_self_tests_pass(page_results):
    out, _, arts = page_results
    assert out["errors"] == {}, out["log"]
    for name in ("digits", "pycode"):
        rep = out["selfTests"][name]
        assert rep["passed"] and rep["cases"] >= 1, rep
        assert rep["maxAbsDiff"] <= rep["atol"]


def test_browser_outputs_on_bundled_vectors_match_python_reference(page_results):
    from projdeploy.sdk.reference import Reference

    out, _, arts = page_results
    for name, key in (("digits_cls", "digits"), ("pycode", "pycode")):
        ref = Reference(arts[name], "web").self_test()
        got = out["selfTests"][key]["outputs"]
        assert len(got) == ref["cases"]
        for g_case, r_case in zip(got, ref["outputs"]):
            np.testing.assert_allclose(np.asarray(g_case[0]), np.asarray(r_case[0]), atol=1e-4, rtol=0)


def test_classification_of_images_matches_python_reference(page_results):
    from projdeploy.sdk.reference import Reference

    out, req, arts = page_results
    ref = Reference(arts["digits_cls"], "web")
    assert len(out["digits"]) == len(req["digits"]["images"])
    for img, got in zip(req["digits"]["images"], out["digits"]):
        want = ref.classify_image(img["pixels"], img["maxValue"])
        assert got["index"] == want["index"] and got["label"] == want["label"]
        np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-5)
    assert out["canvas"] and out["canvas"].split(" ")[0] in ref.labels  # a mouse-drawn stroke got a prediction


def test_completions_match_python_reference(page_results):
    from projdeploy.sdk.reference import Reference

    out, req, arts = page_results
    ref = Reference(arts["pycode"], "web")
    for p, got in zip(req["pycode"]["prompts"], out["pycode"]):
        o = p["options"]
        want = ref.complete(
            p["text"],
            max_new_tokens=o["maxNewTokens"],
            temperature=o.get("temperature", 0.0),
            top_k=o.get("topK", 0),
            seed=o.get("seed", 1),
        )
        assert got["tokens"] == want["tokens"], p
        assert got["text"] == want["text"]
        # streamed from the worker piece by piece: the same text, in whole characters
        assert "".join(got["pieces"]) == want["text"], p
        assert len(got["pieces"]) >= 1 or not want["text"]


def test_streams_cancel_and_the_model_keeps_working(page_results):
    out, _, _ = page_results
    c = out["cancel"]
    assert c["first"], c  # a piece arrived before `break` cancelled the generation
    assert 1 <= c["abortedPieces"] < 50, c  # the AbortSignal stopped a 200-token generation early
    assert len(c["after"]["tokens"]) <= 4
