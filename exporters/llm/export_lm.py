"""Checkpoint directory -> validated LM program artifact (model.pte + manifest + small test vectors).

    python -m exporters.llm.export_lm --checkpoint runs/lm --recipe xnnpack-8da4w --out out/lm-et --max-seq-len 256

The artifact directory appears atomically: ``model.pte`` (see exporters/llm/__init__.py),
``manifest.json`` (``programs.forward`` I/O, ``model.lm``: window, cache layout, runner metadata,
generation protocol; ``validation``; ``export_timings_s``), ``test_vectors.npz`` (a few kB) and the
checkpoint's tokenizer files. A failed validation raises ``ParityError`` and leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .recipes import LMRecipe, get_lm_recipe
from .spec import LMSpec, lm_spec_from_dir

MAIN_FILE = "model.pte"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "projdeploy_tokenizer.json",
    "generation_config.json",
)
PROTOCOL = (
    "reset; logits = forward(prompt (1, n), [0]); repeat: token = argmax(logits); "
    "logits = forward([[token]], [pos]) with pos = n, n+1, ... < get_max_seq_len(). "
    "The KV cache lives in the program (mutable buffers); logits are those of the last input token."
)


@dataclass
class LMArtifact:
    path: Path
    recipe: LMRecipe
    spec: LMSpec
    manifest: dict

    @property
    def main_path(self) -> Path:
        return self.path / MAIN_FILE


def bundle_files(manifest: dict) -> list[str]:
    """What an app bundles: the program, the manifest, the tokenizer files and the small test vectors
    (never the validation figures' inputs); every other file stays beside the artifact."""
    from .vectors import VECTORS_FILE

    names = [manifest["main_file"], "manifest.json", *manifest["model"].get("tokenizer_files", []), VECTORS_FILE]
    return [n for n in names if n == "manifest.json" or n in manifest["files"]]


def bundle_budget(model_bytes: int) -> int:
    """Bytes allowed for everything bundled besides the model and its tokenizer: 1% of the model file, at
    least 1 MB."""
    return max(model_bytes // 100, 1 << 20)


def programs(spec: LMSpec) -> dict:
    from ..base import TensorSpec

    return {
        "forward": {
            "inputs": [
                TensorSpec("tokens", (1, "T"), "int64"),
                TensorSpec("input_pos", (1,), "int64"),
            ],
            "outputs": [TensorSpec("logits", (1, spec.vocab_size), "float32")],
        }
    }


def lm_section(spec: LMSpec, metadata: dict) -> dict:
    return {
        "program": "forward",
        "kv_cache": "in_program",
        "max_seq_len": spec.max_seq_len,
        "prompt_len": {"min": 1, "max": spec.max_seq_len - 1},
        "kv_cache_shape": [spec.n_layers, 2, 1, spec.n_kv_heads, spec.max_seq_len, spec.head_dim],
        "kv_cache_bytes": spec.kv_cache_bytes,
        "runner_metadata": metadata,
        "bos_id": spec.bos_id,
        "eos_ids": list(spec.eos_ids),
        "protocol": PROTOCOL,
    }


def _copy_tokenizer(src: Path, dst: Path) -> list[str]:
    copied = []
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
            copied.append(name)
    return copied


def _validate(tmp: Path, ckpt: Path, recipe, rows, n_prompt, total_bytes, threads) -> tuple[dict, object]:
    from transformers import AutoModelForCausalLM

    from ..base import ParityError
    from .runner import LMRunner
    from .validate import check, compare_rows

    runner = LMRunner(tmp / MAIN_FILE, threads=threads)
    if rows is None:
        return {"skipped": "no eval rows", "passed": None}, runner
    hf = AutoModelForCausalLM.from_pretrained(str(ckpt), use_safetensors=True, local_files_only=True)
    fig = compare_rows(runner, hf.float().eval(), rows, n_prompt, total_bytes)
    failures = check(fig, recipe)
    fig["passed"] = not failures
    if failures:
        raise ParityError(f"executorch/{recipe.name} LM program failed validation ({'; '.join(failures)})", fig)
    return fig, runner


def export_lm(
    checkpoint_dir,
    recipe,
    out_dir,
    *,
    max_seq_len: int | None = None,
    eval_rows=None,
    n_prompt: int | None = None,
    total_bytes: int | None = None,
    model_info: dict | None = None,
    threads: int | None = None,
) -> LMArtifact:
    """Export ``checkpoint_dir`` (a Hugging Face decoder dir or a projdeploy LM checkpoint).

    ``eval_rows`` (R, T) int64 token rows validate the program (teacher-forced, prefill of
    ``n_prompt`` tokens, default T // 2); ``total_bytes`` is the rows' text size for bits/byte.
    """
    from projdeploy.fsutil import atomic_dir

    from ..base import write_manifest
    from .et_program import build_pte
    from .vectors import make_vectors, write_vectors
    from .weights import hf_to_et, read_safetensors

    rec = get_lm_recipe(recipe)
    ckpt = Path(checkpoint_dir)
    window = rec.max_seq_len or max_seq_len or 256
    spec = lm_spec_from_dir(ckpt, window)
    t0 = time.perf_counter()
    lowered = build_pte(spec, hf_to_et(read_safetensors(ckpt), spec.tied_embeddings), rec)
    timings = dict(lowered.timings_s)
    rows = (
        None if eval_rows is None else np.asarray(eval_rows, np.int64)[:, : spec.max_seq_len + 1]
    )  # last: target only
    with atomic_dir(out_dir) as tmp:
        (tmp / MAIN_FILE).write_bytes(lowered.pte)
        del lowered.pte
        tok_files = _copy_tokenizer(ckpt, tmp)
        t1 = time.perf_counter()
        n = n_prompt or (rows.shape[1] // 2 if rows is not None else 1)
        fig, runner = _validate(tmp, ckpt, rec, rows, n, total_bytes, threads)
        timings["validation"] = round(time.perf_counter() - t1, 2)
        prompt = rows[0, : min(8, rows.shape[1])] if rows is not None else [spec.bos_id]
        write_vectors(tmp, make_vectors(runner, prompt, rtol=1e-4, atol=1e-4 if not rec.quantized else 1e-3))
        timings["total"] = round(time.perf_counter() - t0, 2)
        fig["delegation"] = lowered.delegation
        model = dict(model_info or {})
        model.update(
            {
                "architecture": spec.architecture,
                "task_kind": "lm",
                "config": json.loads((ckpt / "config.json").read_text()),  # the Hugging Face config
                "tokenizer_files": tok_files,
            }
        )
        model["lm"] = lm_section(spec, lowered.metadata)
        fig["export_timings_s"] = timings
        m = write_manifest(
            tmp,
            format="executorch",
            recipe=rec,
            main_file=MAIN_FILE,
            programs=programs(spec),
            model=model,
            validation=fig,
        )
    return LMArtifact(path=Path(out_dir), recipe=rec, spec=spec, manifest=m)


def export_lm_for_task(checkpoint_dir, recipe, task, out_dir, validate: bool = True, max_rows: int | None = 8):
    """The ExecuTorch LM program of ``checkpoint_dir`` for ``task``: exporters/llm/artifact.py."""
    from .artifact import export_lm_artifact

    return export_lm_artifact(checkpoint_dir, "executorch", recipe, task, out_dir, validate, max_rows)


def main(argv=None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--recipe", default="xnnpack-fp32")
    p.add_argument("--out", required=True)
    p.add_argument("--max-seq-len", type=int, default=256)
    a = p.parse_args(argv)
    art = export_lm(a.checkpoint, a.recipe, a.out, max_seq_len=a.max_seq_len)
    print(json.dumps({"path": str(art.path), "validation": art.manifest["validation"]}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
