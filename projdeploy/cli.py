"""The ``projdeploy`` command line: a thin click layer over Python functions.

    projdeploy --help

Each subcommand lives in ``projdeploy/commands/<name>.py`` as a click command
named ``cli`` and is imported only when used, so ``projdeploy --help`` stays
fast. :meth:`LazyGroup.invoke` is the single error boundary: an expected
failure (:class:`ProjdeployError`, or the file system refusing a path)
prints one line naming the file, the field and what is allowed, and exits 2;
anything unexpected prints one line plus the path of a file holding the full
traceback, and exits 1.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from .errors import ProjdeployError

# name -> one-line help; the module is projdeploy.commands.<name with - as _>.
COMMANDS = {
    "tasks": "List and inspect built-in and user tasks.",
    "train": "Train a small model on a task.",
    "eval": "Evaluate a checkpoint on a task and write the metric as JSON.",
    "pretrain": "Pretrain a big projectable model (PN or dense) on generic data.",
    "grow": "Grow a checkpoint with function-preserving expansions.",
    "models": "List the built-in pretrained big models (smollm2-135m, minilm-l6).",
    "project": "Project a big model into a small task model in one shot.",
    "finetune": "Fine-tune a small model on a task (none | aft | kd transfer).",
    "export": "Quantize and convert a checkpoint to ExecuTorch, Core ML or ONNX.",
    "profiles": "List and inspect device hardware profiles.",
    "check": "Measure and estimate an artifact against device budgets.",
    "sdk": "Generate a Swift / Kotlin / TypeScript package around an artifact.",
    "build": "Run the whole pipeline for a task and a target.",
    "gate": "Compare a build report with a baseline (CI regression gate).",
}


def _module(name: str) -> str:
    return f"projdeploy.commands.{name.replace('-', '_')}"


def available_commands() -> list[str]:
    return [n for n in COMMANDS if importlib.util.find_spec(_module(n)) is not None]


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return available_commands()

    def get_command(self, ctx, name):
        if name not in COMMANDS or importlib.util.find_spec(_module(name)) is None:
            return None
        return importlib.import_module(_module(name)).cli

    def format_commands(self, ctx, formatter):
        rows = [(n, COMMANDS[n]) for n in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except ProjdeployError as e:
            click.echo(f"error: {_one_line(e)}", err=True)
            ctx.exit(e.exit_code)
        except OSError as e:  # the file system refused: a path the user chose (missing, read-only, full)
            where = f"{e.filename}: " if e.filename else ""
            click.echo(f"error: {where}{e.strerror or e}", err=True)
            ctx.exit(2)
        except Exception as e:
            path = _write_traceback()
            click.echo(
                f"error: unexpected {type(e).__name__}: {_one_line(e)[:300]} (a bug in projdeploy; "
                f"full traceback: {path})",
                err=True,
            )
            ctx.exit(1)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _write_traceback() -> str:
    """Write the current exception's traceback to a file and return its path (the error boundary's record)."""
    import tempfile
    import time
    import traceback

    text = f"projdeploy {' '.join(sys.argv[1:])}\n{time.strftime('%Y-%m-%dT%H:%M:%S')}\n" + traceback.format_exc()
    fd, path = tempfile.mkstemp(prefix="projdeploy-traceback-", suffix=".txt")
    with open(fd, "w") as f:
        f.write(text)
    return path


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="projdeploy")
def cli():
    """projdeploy: one big projectable transformer -> small task models on phones.

    Pipeline: pretrain -> project -> finetune -> export -> check -> sdk (build runs all), gate guards CI.
    """


def _quiet_third_party():
    """Silence known-harmless noise from dependencies (deprecations, optional CUDA kernels absent on CPU)."""
    import logging
    import warnings

    for name in ("torch.utils._pytree", "torchao", "torch.onnx._internal.exporter._registration"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r".*is an Enum subclass.*")


def main(argv=None):
    _quiet_third_party()
    return cli.main(args=argv, prog_name="projdeploy")


if __name__ == "__main__":
    sys.exit(main())
