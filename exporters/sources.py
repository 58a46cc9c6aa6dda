"""Load a checkpoint directory as an eval-mode torch module that maps ``input_ids`` to logits.

    python -c "from exporters.sources import load_source; print(load_source('runs/tiny', 'digits-cls'))"

Supported: projdeploy small checkpoints and local Hugging Face checkpoint
directories whose ``config.json`` names one of ``SUPPORTED_ARCHITECTURES``.
Llama checkpoints that fit projdeploy's own module load into it (so they get
the static-KV-cache decode programs); everything else supported runs through
``transformers`` behind a thin logits wrapper. Weights are read from
safetensors only (never pickle).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .hf_models import ARCHITECTURES, num_labels

# architecture -> task kind (exporters/hf_models.py owns the list)
SUPPORTED_ARCHITECTURES = {name: a.kind for name, a in ARCHITECTURES.items()}


@dataclass
class Source:
    """A loaded checkpoint: the module, where it came from and what it is."""

    model: object  # torch.nn.Module: forward(input_ids int64 (B, T)) -> logits
    path: Path
    architecture: str
    kind: str  # "lm" | "cls"
    hf_config: dict
    native: bool  # projdeploy's own Llama module (KV-cache programs available)

    @property
    def is_lm(self) -> bool:
        return self.kind == "lm"


def _checkpoint_error(msg: str):
    from projdeploy.errors import CheckpointError

    return CheckpointError(msg)


def read_hf_config(path: Path) -> dict:
    if not path.is_dir():
        raise _checkpoint_error(f"checkpoint directory {str(path)!r} does not exist")
    cfg = path / "config.json"
    if not cfg.is_file():
        raise _checkpoint_error(f"{path}: not a checkpoint (no config.json)")
    try:
        return json.loads(cfg.read_text())
    except json.JSONDecodeError as e:
        raise _checkpoint_error(f"{cfg}: not valid JSON ({e})") from None


def architecture_of(path: Path, hf: dict) -> str:
    archs = hf.get("architectures") or []
    for a in archs:
        if a in SUPPORTED_ARCHITECTURES:
            return a
    raise _checkpoint_error(
        f"{path}/config.json: architecture {archs or hf.get('model_type')!r} is not supported; "
        f"supported architectures: {', '.join(SUPPORTED_ARCHITECTURES)}"
    )


def _load_native(path: Path):
    from projdeploy.errors import ProjdeployError
    from projdeploy.models.checkpoint import load_model

    try:
        return load_model(path)
    except ProjdeployError:
        return None


def _load_transformers(path: Path, arch: str, task=None):
    import transformers

    from .hf_models import wrap

    if not any(path.glob("*.safetensors")):
        raise _checkpoint_error(f"{path}: no *.safetensors weights (pickled weights are never loaded)")
    cls = getattr(transformers, arch)
    model = cls.from_pretrained(str(path), use_safetensors=True, attn_implementation="eager", local_files_only=True)
    return wrap(model.float().eval(), ARCHITECTURES[arch], task)


def load_source(checkpoint_dir: str | Path, task=None) -> Source:
    """Load ``checkpoint_dir``; if ``task`` is given, check the checkpoint fits it."""
    path = Path(checkpoint_dir)
    hf = read_hf_config(path)
    arch = architecture_of(path, hf)
    kind = SUPPORTED_ARCHITECTURES[arch]
    model, native = None, False
    if arch.startswith(("Llama", "Qwen2", "Qwen3")):  # the families of projdeploy's module (models/config.py)
        model = _load_native(path)
        native = model is not None
    if model is None:
        model = _load_transformers(path, arch, task)
    src = Source(model=model, path=path, architecture=arch, kind=kind, hf_config=hf, native=native)
    if task is not None:
        check_fits(src, task)
    return src


def check_fits(src: Source, task) -> None:
    if src.kind != task.kind:
        raise _checkpoint_error(
            f"{src.path}: a {src.architecture} ({src.kind}) checkpoint cannot serve task "
            f"{task.name!r} of kind {task.kind!r}"
        )
    vocab = int(src.hf_config.get("vocab_size", 0))
    if ARCHITECTURES[src.architecture].inputs == "tokens" and vocab < task.tokenizer.vocab_size:
        raise _checkpoint_error(
            f"{src.path}/config.json: vocab_size {vocab} is smaller than task "
            f"{task.name!r}'s tokenizer ({task.tokenizer.vocab_size})"
        )
    if task.kind == "cls":
        n = num_labels(src.hf_config)
        if n != task.num_labels:
            raise _checkpoint_error(f"{src.path}/config.json: {n} labels, task {task.name!r} has {task.num_labels}")
    limit = src.hf_config.get("max_position_embeddings") or src.hf_config.get("n_positions")
    if limit and int(limit) < task.seq_len:
        raise _checkpoint_error(
            f"{src.path}/config.json: max_position_embeddings {limit} < task sequence length {task.seq_len}"
        )
