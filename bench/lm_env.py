"""The separate virtual env for optimum-executorch (it pulls transformers 5, which conflicts with our pins).

    .venv/bin/python bench/lm_env.py      # creates /work/venvs/optimum-et if missing, prints its python

``torch==2.13.0`` is installed first (the same CPU build as projdeploy's env), then
``optimum-executorch==1.1.0`` with torch pinned, so pip never pulls a CUDA torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

VENV = Path(os.environ.get("PROJDEPLOY_OPTIMUM_ET_VENV", "/work/venvs/optimum-et"))
PINS = ("torch==2.13.0", "optimum-executorch==1.1.0", "gguf==0.19.0")


def optimum_python() -> Path:
    """The env's python, creating the env on first use (network: PyPI)."""
    py = VENV / "bin" / "python"
    ok = VENV / ".projdeploy-ready"
    if ok.is_file():
        return py
    VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(py), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, PINS[0]], check=True)
    subprocess.run([*pip, *PINS], check=True)
    ok.write_text(" ".join(PINS) + "\n")
    return py


if __name__ == "__main__":
    print(optimum_python())
