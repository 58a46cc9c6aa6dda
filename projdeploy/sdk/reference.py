"""The Python reference of what every generated SDK does around the model.

    python -c "from projdeploy.sdk.reference import Reference; r = Reference('dist/pycode-onnx'); print(r.complete('def '))"

Pre-processing (pixel scaling + quantization, byte or BPE tokenizer, padding),
post-processing (softmax, labels) and the generation loop (greedy /
temperature / top-k with a xorshift32 generator; the prompt once, then one
call per token over the program's KV cache, as its ``model.lm`` says) exactly as the TypeScript, Swift and
Kotlin templates implement them, run on the artifact in its host runtime
(``exporters.registry.load_runner`` or an explicit ``call``). The web
end-to-end test compares the browser against this.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import DataError


def rint(x: float) -> float:
    return float(np.rint(x))


def pixel_tokens(pixels, max_value: float, levels: int) -> list[int]:
    """Same as ``PixelTokenizer.encode_image``: rint(p / max * (levels-1)) clipped to [0, levels-1]."""
    p = np.asarray(pixels, dtype=np.float64).reshape(-1)
    q = np.rint(p / max_value * (levels - 1))
    return [int(v) for v in np.clip(q, 0, levels - 1)]


def byte_encode(text: str) -> list[int]:
    return list(text.encode("utf-8"))


def byte_decode(ids) -> str:
    return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


class XorShift32:
    """The SDKs' random stream (xorshift32, 24-bit floats)."""

    def __init__(self, seed: int):
        self.state = (int(seed) & 0xFFFFFFFF) or 0x9E3779B9

    def next_u32(self) -> int:
        x = self.state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.state = x
        return x

    def next_float(self) -> float:
        return (self.next_u32() >> 8) / 16777216.0


def softmax(xs) -> list[float]:
    xs = [float(x) for x in xs]
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    s = sum(e)
    return [x / s for x in e]


def sample_next(logits, temperature: float, top_k: int, rng: XorShift32) -> int:
    logits = [float(x) for x in logits]
    if not temperature > 0:
        return int(np.argmax(np.asarray(logits)))
    order = sorted(range(len(logits)), key=lambda i: (-logits[i], i))
    if 0 < top_k < len(order):
        order = order[:top_k]
    m = logits[order[0]]
    w = [math.exp((logits[i] - m) / temperature) for i in order]
    u = rng.next_float() * sum(w)
    acc = 0.0
    for j, i in enumerate(order):
        acc += w[j]
        if u < acc:
            return i
    return order[-1]


class Reference:
    """An artifact plus its SDK spec; ``call(program, [arrays]) -> [arrays]`` runs it."""

    def __init__(self, artifact_dir: str | Path, target: str = "web", call=None):
        from exporters.base import verify_manifest

        from .spec import build_spec

        self.dir = Path(artifact_dir)
        self.manifest = verify_manifest(self.dir)
        self.spec = build_spec(self.dir, target, self.manifest)
        self.lm = None
        if self.spec.get("lm"):  # an exporters/llm program: driven by its model.lm protocol
            self.lm = CallCursor(call, self.spec) if call is not None else _lm_runner(self.dir, self.manifest)
        elif call is None:
            from exporters.registry import load_runner

            call = load_runner(self.dir).run  # UnavailableError where its runtime cannot run here
        self.call = call
        self.tok = self.spec["tokenizer"]
        self.labels = [str(x) for x in (self.manifest["model"].get("labels") or [])]

    # --- classifiers -----------------------------------------------------------------
    def classify_tokens(self, tokens) -> dict:
        n = self.spec["seq_len"]
        ids = list(tokens)[-n:]
        ids += [self.tok["pad_id"] or 0] * (n - len(ids))
        logits = np.asarray(self.call("forward", [np.asarray([ids], np.int64)])[0], np.float32).reshape(-1)
        probs = softmax(logits)
        i = int(np.argmax(logits))
        return {"index": i, "label": self.labels[i] if i < len(self.labels) else str(i), "probabilities": probs}

    def classify_image(self, pixels, max_value: float = 1.0) -> dict:
        return self.classify_tokens(pixel_tokens(pixels, max_value, self.tok["levels"]))

    def classify_text(self, text: str) -> dict:
        if self.spec.get("text_engine") == "wordpiece":  # BERT: [CLS] pieces [SEP], the head kept
            ids = self._hf().encode(text, add_special_tokens=False).ids[: self.spec["seq_len"] - 2]
            hf = self._hf()
            return self.classify_tokens([hf.token_to_id("[CLS]"), *ids, hf.token_to_id("[SEP]")])
        return self.classify_tokens(self.encode(text))

    # --- language models -------------------------------------------------------------
    def generate_tokens(
        self,
        prompt,
        max_new_tokens: int = 32,
        temperature: float = 0.0,
        top_k: int = 0,
        seed: int = 1,
        stop_at_eos: bool = True,
    ) -> list[int]:
        if not prompt:
            raise DataError("empty prompt")
        if self.lm is None:
            raise DataError(f"{self.dir}: task {self.spec['task']!r} is not a language model")
        return self._generate_lm(list(prompt), max_new_tokens, temperature, top_k, seed, stop_at_eos)

    def _generate_lm(self, ids, max_new, temperature, top_k, seed, stop_at_eos) -> list[int]:
        """model.lm's protocol: the prompt at position 0, then one call per token; a full window restarts
        from the most recent half."""
        S, lm = self.spec["seq_len"], self.spec["lm"]
        rng = XorShift32(seed)
        logits, pos = self.lm.prefill(ids[-lm["prompt_len_max"] :]), min(len(ids), lm["prompt_len_max"])
        out: list[int] = []
        for step in range(max_new):
            nxt = sample_next(logits, temperature, top_k, rng)
            if stop_at_eos and nxt in lm["eos_ids"]:
                break
            out.append(nxt)
            ids.append(nxt)
            if step + 1 == max_new:
                break
            if pos >= S:
                ctx = ids[-(S // 2) :]
                logits, pos = self.lm.prefill(ctx), len(ctx)
            else:
                logits, pos = self.lm.forward([nxt]), pos + 1
        return out

    def _hf(self):
        """The Hugging Face tokenizer of a BPE artifact (the SDKs reimplement it; tests compare)."""
        from tokenizers import Tokenizer

        lm = self.spec.get("lm")
        if lm and not lm["tokenizer_nested"]:  # the LM's own tokenizer.json
            return Tokenizer.from_file(str(self.dir / lm["tokenizer_file"]))
        d = json.loads((self.dir / "projdeploy_tokenizer.json").read_text())
        return Tokenizer.from_str(json.dumps(d["hf_tokenizer"]))

    def encode(self, text: str) -> list[int]:
        if self.tok["type"] in ("bpe", "hf"):
            return self._hf().encode(text, add_special_tokens=False).ids
        return byte_encode(text)

    def decode(self, ids) -> str:
        return self._hf().decode(list(ids)) if self.tok["type"] in ("bpe", "hf") else byte_decode(ids)

    def prompt_tokens(self, text: str) -> list[int]:
        return list(self.spec.get("prompt_prefix", [])) + self.encode(text)

    def complete(self, text: str, **options) -> dict:
        toks = self.generate_tokens(self.prompt_tokens(text), **options)
        return {"text": self.decode(toks), "tokens": toks}

    # --- self-test -------------------------------------------------------------------
    def self_test(self) -> dict:
        if self.lm is not None:
            return self._lm_self_test()
        vec = json.loads((self.dir / "test_vectors.json").read_text())
        prog = self.spec["programs"][vec["program"]]
        worst, outputs = 0.0, []
        for case in vec["cases"]:
            xs = [
                np.asarray(case["inputs"][t["name"]], dtype=t["dtype"])
                for t in prog["inputs"]
                if t["name"] in case["inputs"]
            ]
            got = self.call(vec["program"], xs)
            outputs.append([np.asarray(g).reshape(-1).tolist() for g in got])
            for t, g in zip(prog["outputs"], got):
                if t["name"] in case["outputs"]:
                    worst = max(worst, float(np.max(np.abs(np.asarray(case["outputs"][t["name"]]) - g))))
        return {
            "passed": worst <= float(vec["atol"]),
            "cases": len(vec["cases"]),
            "maxAbsDiff": worst,
            "atol": float(vec["atol"]),
            "program": vec["program"],
            "outputs": outputs,
        }

    def _lm_self_test(self) -> dict:
        """What the SDKs' selfTest does with projdeploy_selftest.json (made from test_vectors.npz)."""
        from .selftest import lm_self_test

        v = lm_self_test(self.dir / "test_vectors.npz")
        logits, worst, ok, outputs = self.lm.prefill(v["prompt"]), 0.0, True, []
        for i, want_tok in enumerate(v["tokens"]):
            got = np.asarray(logits, np.float64)
            ids = v["topk_ids"][i]
            worst = max(worst, float(np.max(np.abs(got[ids] - np.asarray(v["topk_logits"][i])))))
            total = float(np.sum(got))
            nxt = int(np.argmax(got))
            ok = ok and nxt == want_tok and abs(total - v["logit_sum"][i]) <= v["tolerance"] * v["vocab_size"]
            outputs.append([got[ids].tolist(), [total, nxt]])
            if i + 1 < len(v["tokens"]):
                logits = self.lm.forward([nxt])
        tol = v["tolerance"]
        program = self.spec["lm"]["program"]
        n = len(v["tokens"])
        return {
            "passed": ok and worst <= tol,
            "cases": n,
            "maxAbsDiff": worst,
            "atol": tol,
            "program": program,
            "outputs": outputs,
        }


class CallCursor:
    """``prefill`` / ``forward`` over ``call(program, [tokens, [pos]])`` of an ``in_program`` LM (tests drive a
    stateful fake through it)."""

    def __init__(self, call, spec: dict):
        self.call, self.program, self.vocab, self.pos = call, spec["lm"]["program"], spec["vocab_size"], 0

    def prefill(self, tokens) -> np.ndarray:
        self.pos = 0
        return self.forward(tokens)

    def forward(self, tokens) -> np.ndarray:
        tokens = list(tokens)
        out = self.call(self.program, [np.asarray([tokens], np.int64), np.asarray([self.pos], np.int64)])[0]
        self.pos += len(tokens)
        return np.asarray(out, np.float32).reshape(-1)[-self.vocab :]


def _lm_runner(artifact: Path, manifest: dict):
    from exporters.llm.protocol import open_lm_runner

    return open_lm_runner(artifact, manifest)
