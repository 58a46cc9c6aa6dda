"""A single GGUF file -> a cached Hugging Face safetensors directory (dequantized by ``transformers``).

    python -c "from projdeploy.foundation.gguf import gguf_to_hf_dir; print(gguf_to_hf_dir('m.gguf', 'cache'))"

The architecture is read from the file's ``general.architecture`` with the
``gguf`` package before anything is converted; unsupported ones fail with
the supported list. Conversion runs once per file content (sha256) and is
written atomically; later loads read the safetensors directory.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError

INSTALL_HINT = "install the gguf package (pip install 'projdeploy[models]')"


def gguf_architecture(path: Path) -> str:
    try:
        from gguf import GGUFReader
    except ImportError:
        raise CheckpointError(f"{path}: reading GGUF files needs the gguf package; {INSTALL_HINT}") from None
    try:
        reader = GGUFReader(str(path))
    except Exception as e:  # the reader raises plain ValueError / struct errors on malformed files
        raise CheckpointError(f"{path}: not a readable GGUF file ({e})") from None
    field = reader.fields.get("general.architecture")
    if field is None:
        raise CheckpointError(f"{path}: GGUF metadata has no 'general.architecture'")
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def gguf_to_hf_dir(path: str | Path, cache: Path) -> tuple[Path, str]:
    """(HF directory, model_type) for a GGUF file, converting it on first use."""
    from ..fsutil import atomic_dir, sha256_file
    from .load import GGUF_ARCHITECTURES, supported_text

    path = Path(path)
    arch = gguf_architecture(path)
    if arch not in GGUF_ARCHITECTURES:
        raise CheckpointError(
            f"{path}: GGUF field 'general.architecture' is {arch!r}, which is not supported; {supported_text()}"
        )
    out = cache / f"gguf-{sha256_file(path)[:20]}"
    if (out / "config.json").is_file():
        return out, GGUF_ARCHITECTURES[arch]
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    except (ValueError, NotImplementedError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: transformers cannot dequantize this GGUF ({type(e).__name__}: {e})") from None
    with atomic_dir(out) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        for p in Path(tmp).glob("tokenizer.model"):  # the sentencepiece copy is not needed (tokenizer.json is)
            p.unlink()
    return out, GGUF_ARCHITECTURES[arch]
