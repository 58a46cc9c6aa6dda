"""``projdeploy grow --from DIR --to CONFIG --out DIR``: function-preserving growth of a checkpoint.

CONFIG is a JSON/YAML file (or inline JSON) with any of: hidden_size, intermediate_size,
num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim | qk_head_dim + v_head_dim,
new_layer_positions, seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..layout import overwrite_option


def read_target(spec: str):
    from ..errors import ConfigError
    from ..models.grow import GrowTarget

    if spec.lstrip().startswith("{"):
        src, text = "--to", spec
    else:
        p = Path(spec)
        if not p.is_file():
            raise ConfigError("--to", "<path>", f"{spec!r} is neither a file nor inline JSON")
        src, text = str(p), p.read_text()
    import yaml

    try:
        d = yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as e:
        raise ConfigError(src, "<document>", f"not valid JSON/YAML ({e})") from None
    if not isinstance(d, dict):
        raise ConfigError(src, "<document>", "must be a mapping of target sizes")
    return GrowTarget.from_dict(d, src)


def grow_checkpoint(src: str | Path, target, out: str | Path) -> dict:
    """Grow the checkpoint in ``src``; write a HF-loadable checkpoint when the layout allows, else a general one."""
    import shutil

    from safetensors.torch import save_file

    from ..fsutil import atomic_dir
    from ..models.checkpoint import write_model_files
    from ..models.general import load_any_lm, write_general_files
    from ..models.grow import grow_model
    from ..models.llama import CausalLM

    model, optim = load_any_lm(src)
    before = model.config
    grown, opt2, steps = grow_model(model, target, optim)
    cfg = grown.config
    why = cfg.hf_incompatibility()
    meta = {"grown_from": str(src), "growth_steps": steps, "target": {k: v for k, v in vars(target).items()}}
    with atomic_dir(out) as tmp:
        if why is None:
            small = CausalLM(cfg.to_model_config())
            small.load_state_dict(grown.state_dict())
            write_model_files(tmp, small, {"kind": "dense", **meta})
        else:
            write_general_files(tmp, grown, {**meta, "not_hf_because": why})
        if opt2:
            save_file({k: v.contiguous() for k, v in opt2.items()}, str(tmp / "optimizer.safetensors"))
        tok = Path(src, "projdeploy_tokenizer.json")
        if tok.is_file():
            shutil.copy(tok, tmp / tok.name)
    return {
        "out": str(out),
        "steps": steps,
        "hf_loadable": why is None,
        "reason": why,
        "params_before": sum(p.numel() for p in model.parameters()),
        "params_after": sum(p.numel() for p in grown.parameters()),
        "from": before.to_dict(),
        "to": cfg.to_dict(),
    }


@click.command("grow")
@click.option("--from", "src", required=True, type=click.Path(exists=True, file_okay=False), help="Checkpoint to grow.")
@click.option("--to", "to", required=True, help="Target sizes: JSON/YAML file or inline JSON.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Grown checkpoint directory.")
@overwrite_option
def cli(src, to, out):
    """Grow a checkpoint with function-preserving expansions (outputs unchanged, optimizer state carried)."""
    res = grow_checkpoint(src, read_target(to), out)
    click.echo(
        f"grew {src} -> {out} by {', '.join(res['steps']) or 'nothing'}: "
        f"{res['params_before']} -> {res['params_after']} parameters; "
        + ("loads in transformers" if res["hf_loadable"] else f"server-side general block ({res['reason']})")
    )
    click.echo(json.dumps({k: res[k] for k in ("out", "steps", "hf_loadable")}))
