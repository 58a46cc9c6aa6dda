"""Trainer state on disk: optimizer moments in safetensors, counters in JSON.

No pickle: AdamW's per-parameter state is flattened to named tensors.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError

OPTIM_FILE = "optimizer.safetensors"
STATE_FILE = "trainer_state.json"


def save_optimizer(opt: torch.optim.Optimizer, names: list[str], directory: Path) -> None:
    """``names[i]`` names the i-th parameter across all param groups, in order."""
    tensors = {}
    params = [p for g in opt.param_groups for p in g["params"]]
    for name, p in zip(names, params):
        st = opt.state.get(p, {})
        for k, v in st.items():
            tensors[f"{name}::{k}"] = torch.as_tensor(v).detach().clone().contiguous()
    save_file(tensors, str(directory / OPTIM_FILE))


def save_optimizer_state(state: dict[str, dict], names: list[str], directory: Path) -> None:
    """Same file as ``save_optimizer`` from per-name state (e.g. FSDP's gathered full optimizer state)."""
    tensors = {
        f"{name}::{k}": torch.as_tensor(v).detach().clone().contiguous()
        for name in names
        for k, v in state.get(name, {}).items()
    }
    save_file(tensors, str(directory / OPTIM_FILE))


def read_optimizer_state(names: list[str], directory: Path) -> dict[str, dict]:
    """``optimizer.safetensors`` as {parameter name: {"step": ..., "exp_avg": ..., ...}} (full tensors)."""
    path = directory / OPTIM_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory}: cannot resume, no {OPTIM_FILE}")
    out: dict[str, dict] = {}
    for key, v in load_file(str(path)).items():
        name, k = key.split("::", 1)
        if name in names:
            out.setdefault(name, {})[k] = v
    return out


def load_optimizer(opt: torch.optim.Optimizer, names: list[str], directory: Path) -> None:
    path = directory / OPTIM_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory}: cannot resume, no {OPTIM_FILE}")
    flat = load_file(str(path))
    params = [p for g in opt.param_groups for p in g["params"]]
    for name, p in zip(names, params):
        st = {k.split("::", 1)[1]: v for k, v in flat.items() if k.split("::", 1)[0] == name}
        if st:
            opt.state[p] = st


def write_state(directory: Path, state: dict) -> None:
    (directory / STATE_FILE).write_text(json.dumps(state, indent=1, sort_keys=True))


def read_state(directory: Path) -> dict | None:
    p = Path(directory) / STATE_FILE
    return json.loads(p.read_text()) if p.is_file() else None
