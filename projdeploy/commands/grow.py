"""``projdeploy grow --from DIR --to CONFIG --out DIR``: function-preserving growth of a checkpoint.

CONFIG is a JSON/YAML file (or inline JSON) with any of: hidden_size, intermediate_size,
num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim | qk_head_dim + v_head_dim,
new_layer_positions, seed. The work is ``projdeploy.models.grow.grow_checkpoint``.
"""

from __future__ import annotations

import json

import click

from ..layout import overwrite_option


@click.command("grow")
@click.option("--from", "src", required=True, type=click.Path(exists=True, file_okay=False), help="Checkpoint to grow.")
@click.option("--to", "to", required=True, help="Target sizes: JSON/YAML file or inline JSON.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Grown checkpoint directory.")
@overwrite_option
def cli(src, to, out):
    """Grow a checkpoint with function-preserving expansions (outputs unchanged, optimizer state carried)."""
    from ..models.grow import grow_checkpoint, read_target

    res = grow_checkpoint(src, read_target(to), out)
    click.echo(
        f"grew {src} -> {out} by {', '.join(res['steps']) or 'nothing'}: "
        f"{res['params_before']} -> {res['params_after']} parameters; "
        + ("loads in transformers" if res["hf_loadable"] else f"server-side general block ({res['reason']})")
    )
    click.echo(json.dumps({k: res[k] for k in ("out", "steps", "hf_loadable")}))
