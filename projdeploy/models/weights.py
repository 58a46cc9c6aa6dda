"""Reading untrusted checkpoints: safetensors only, config sizes bounded before anything is allocated.

    python -c "from projdeploy.models.weights import read_safetensors; print(list(read_safetensors('runs/tiny/model.safetensors')))"

Pickle-based files (``torch.save``, ``pytorch_model.bin``) can run code when
loaded and are refused with a clear error, whatever their name. A config's
sizes are checked against :data:`LIMITS` (the largest values projdeploy's
architectures support on a phone-oriented pipeline) and the parameter count
against :data:`MAX_PARAMS` before any tensor is made.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError, ConfigError

# Upper bounds per config field; each is far above the largest model the pipeline targets.
LIMITS = {
    "vocab_size": 1 << 20,
    "hidden_size": 1 << 15,
    "intermediate_size": 1 << 17,
    "num_hidden_layers": 256,
    "num_attention_heads": 256,
    "num_key_value_heads": 256,
    "head_dim": 1024,
    "max_position_embeddings": 1 << 20,
}
MAX_PARAMS = 20_000_000_000
NUMBERS = ("rope_theta", "rms_norm_eps")
TOKEN_IDS = ("bos_token_id", "eos_token_id", "pad_token_id")


def check_config_dict(d, source: str) -> dict:
    """Types and bounds of a Llama-style ``config.json``; raises ConfigError naming the field."""
    if not isinstance(d, dict):
        raise ConfigError(source, "<document>", f"must be a JSON object, got {type(d).__name__}")
    for name, hi in LIMITS.items():
        v = d.get(name)
        if v is None and name not in ("vocab_size", "hidden_size"):
            continue
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= hi:
            raise ConfigError(source, name, f"got {v!r}; allowed: an integer from 1 to {hi}")
    for name in NUMBERS:
        v = d.get(name)
        if name in d and (not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v < 1e12):
            raise ConfigError(source, name, f"got {v!r}; allowed: a positive number")
    for name in TOKEN_IDS:
        v = d.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < d["vocab_size"]):
            raise ConfigError(source, name, f"got {v!r}; allowed: null or a token id below vocab_size")
    if d.get("rope_scaling") is not None and not isinstance(d["rope_scaling"], dict):
        raise ConfigError(source, "rope_scaling", f"got {d['rope_scaling']!r}; allowed: null or a mapping")
    if "tie_word_embeddings" in d and not isinstance(d["tie_word_embeddings"], bool):
        raise ConfigError(source, "tie_word_embeddings", f"got {d['tie_word_embeddings']!r}; allowed: true, false")
    archs = d.get("architectures", [])
    if archs is not None and (not isinstance(archs, list) or not all(isinstance(a, str) for a in archs)):
        raise ConfigError(source, "architectures", f"got {archs!r}; allowed: a list of class names")
    labels = d.get("id2label")
    if labels is not None:
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and k.isdigit() and isinstance(v, str) for k, v in labels.items()
        ):
            raise ConfigError(source, "id2label", "allowed: a mapping from integer strings ('0', '1', ...) to labels")
        if len(labels) > LIMITS["vocab_size"]:
            raise ConfigError(source, "id2label", f"{len(labels)} labels; allowed: at most {LIMITS['vocab_size']}")
    return d


def check_size(num_parameters: int, source: str) -> None:
    if num_parameters > MAX_PARAMS:
        raise CheckpointError(
            f"{source}: the config describes {num_parameters:.3g} parameters; projdeploy loads at most "
            f"{MAX_PARAMS:.0e} (refused before allocating)"
        )


def read_safetensors(path: str | Path) -> dict:
    """The tensors of a safetensors file; pickle/torch.save files, truncation and garbage are CheckpointErrors."""
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: missing (a checkpoint holds model.safetensors)")
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(9)
    n = int.from_bytes(head[:8], "little") if len(head) == 9 else 0
    if n <= 0 or 8 + n > size or head[8:9] != b"{":
        if head[:2] == b"PK" or head[:1] == b"\x80":  # zip (torch.save) or pickle protocol 2+
            raise CheckpointError(
                f"{p}: is a pickle / torch.save file; projdeploy never loads pickle (it can run code). "
                "Save the weights with safetensors (safetensors.torch.save_file)"
            )
        raise CheckpointError(f"{p}: not a safetensors file (truncated, empty or another format)")
    try:
        return load_file(str(p))
    except Exception as e:  # safetensors raises its own error type for every malformed buffer
        raise CheckpointError(f"{p}: unreadable safetensors file ({str(e)[:200]})") from None


def load_weights(model, state: dict, source: str, allow_missing: tuple[str, ...] = ()) -> None:
    """Load ``state`` into ``model`` after checking names and shapes; a mismatch is a CheckpointError."""
    want = model.state_dict()
    missing = [k for k in want if k not in state and k not in allow_missing]
    unexpected = [k for k in state if k not in want]
    shapes = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(want[k].shape)}"
        for k in want
        if k in state and tuple(state[k].shape) != tuple(want[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = {"missing": missing, "not in the model": unexpected, "shape in file vs config": shapes}
        why = "; ".join(f"{k}: {', '.join(v[:3])}" for k, v in parts.items() if v)
        raise CheckpointError(f"{source}: weights do not match config.json ({why})")
    model.load_state_dict(state, strict=False)
