"""Resolve and load a pretrained big model: HF checkpoint directory, single GGUF file, or built-in name.

    python -c "from projdeploy.foundation import load_big; b = load_big('smollm2-135m'); print(b.summary())"

Supported architectures (``ARCHITECTURES``): the Llama family as projection
sources and teachers (converted exactly into projdeploy's own Llama module);
GPT-2 and the BERT family (BERT, DistilBERT, MiniLM) as feature / logit
teachers. A GGUF file is dequantized by ``transformers`` (needs the ``gguf``
package) once and cached as an ordinary safetensors directory under
``$PROJDEPLOY_CACHE/models`` (default ``~/.cache/projdeploy/models``).
Weights are read from safetensors only, never with pickle.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError

# HF model_type -> family. Llama family (Llama, SmolLM, Qwen2/2.5 with q/k/v biases, Qwen3 with q/k norms):
# projection source; gpt2 / bert: teachers only.
ARCHITECTURES = {
    "llama": "llama",
    "qwen2": "llama",
    "qwen3": "llama",
    "gpt2": "gpt2",
    "bert": "bert",
    "distilbert": "bert",
}
# GGUF general.architecture values we accept (what transformers dequantizes into a supported model_type).
GGUF_ARCHITECTURES = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "gpt2": "gpt2"}


def supported_text() -> str:
    return (
        "supported: projdeploy checkpoints; Hugging Face checkpoint directories with model_type "
        f"{', '.join(sorted(ARCHITECTURES))}; single .gguf files of architecture "
        f"{', '.join(sorted(GGUF_ARCHITECTURES))}; built-in names (projdeploy models list)"
    )


def cache_root() -> Path:
    return Path(os.environ.get("PROJDEPLOY_CACHE") or Path.home() / ".cache" / "projdeploy")


@dataclass(frozen=True)
class BigSource:
    spec: str
    path: Path  # an HF directory (a GGUF is converted into one first)
    model_type: str
    family: str
    gguf: Path | None = None


@dataclass
class BigModel:
    """A loaded big model: ``module`` (projdeploy CausalLM for the Llama family, else a teacher wrapper)."""

    source: BigSource
    module: object
    tokenizer: object

    @property
    def family(self) -> str:
        return self.source.family

    def summary(self) -> dict:
        cfg = self.module.config
        return {
            "spec": self.source.spec,
            "family": self.family,
            "model_type": self.source.model_type,
            "hidden_size": cfg.hidden_size,
            "vocab_size": cfg.vocab_size,
            "parameters": sum(p.numel() for p in self.module.parameters()),
        }

    def require_projectable(self, method: str) -> None:
        if self.family != "llama":
            raise CheckpointError(
                f"{self.source.spec}: a {self.source.model_type} model cannot be projected with {method!r} into "
                "projdeploy's Llama module; projection sources are Llama-family models, BERT-family models project "
                "classification tasks with prune or truncate, GPT-2 serves as --teacher"
            )


def _named(spec: str):
    from .named import NAMED

    return NAMED.get(spec)


def is_foundation_source(spec) -> bool:
    """True for a built-in name, a .gguf file, or a directory with an HF config.json but no projdeploy.json."""
    spec = str(spec)
    if _named(spec) is not None or spec.endswith(".gguf"):
        return True
    p = Path(spec)
    return p.is_dir() and (p / "config.json").is_file() and not (p / "projdeploy.json").is_file()


def resolve_source(spec) -> BigSource:
    spec = str(spec)
    named = _named(spec)
    path = named.path() if named is not None else Path(spec)
    if not path.exists():
        raise CheckpointError(f"big model {spec!r} does not exist; {supported_text()}")
    if path.is_file():
        if path.suffix != ".gguf":
            raise CheckpointError(f"{spec}: a single file must be a .gguf; {supported_text()}")
        from .gguf import gguf_to_hf_dir

        hf_dir, arch = gguf_to_hf_dir(path, cache_root() / "models")
        return BigSource(spec, hf_dir, arch, ARCHITECTURES[arch], gguf=path)
    cfg = path / "config.json"
    if not cfg.is_file():
        raise CheckpointError(f"{spec}: no config.json; {supported_text()}")
    try:
        model_type = json.loads(cfg.read_text()).get("model_type")
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{cfg}: not valid JSON ({e})") from None
    if model_type not in ARCHITECTURES:
        raise CheckpointError(f"{cfg}: field 'model_type': {model_type!r} is not supported; {supported_text()}")
    return BigSource(spec, path, model_type, ARCHITECTURES[model_type])


@functools.lru_cache(maxsize=1)
def load_big(spec) -> BigModel:
    """Load a pretrained big model (frozen, eval mode) with its own tokenizer; the last one stays cached."""
    from ..tasks.hf_tokenizer import tokenizer_from_hf_dir
    from .convert import llama_from_hf
    from .teachers import hf_teacher

    src = resolve_source(str(spec))
    module = llama_from_hf(src.path) if src.family == "llama" else hf_teacher(src.path, src.family)
    tok = tokenizer_from_hf_dir(src.path, module.config.vocab_size)
    return BigModel(src, module.eval().requires_grad_(False), tok)


def load_big_tokenizer(spec):
    """Only the tokenizer of a big model (no weights loaded)."""
    from ..tasks.hf_tokenizer import tokenizer_from_hf_dir

    src = resolve_source(spec)
    cfg = json.loads((src.path / "config.json").read_text())
    return tokenizer_from_hf_dir(src.path, int(cfg.get("vocab_size") or 0))


def export_checkpoint_source(spec, task=None):
    """``export --checkpoint``: (directory, task). A directory is returned as is; a ``.gguf`` file or a built-in
    name becomes its (cached, dequantized) Hugging Face directory and ``task`` is re-tokenized with its tokenizer."""
    from .named import NAMED

    p = Path(str(spec))
    if p.is_dir():
        return p, task
    if _named(str(spec)) is None and not (p.is_file() and p.suffix == ".gguf"):
        raise CheckpointError(
            f"--checkpoint {str(spec)!r}: no such checkpoint directory (it does not exist), and it is neither a "
            f".gguf file nor a built-in model name (known: {', '.join(NAMED)}; projdeploy models list)"
        )
    src = resolve_source(str(spec))
    if task is not None:
        from ..tasks.hf_tokenizer import fit_task

        task = fit_task(task, load_big_tokenizer(str(spec)))
    return src.path, task
