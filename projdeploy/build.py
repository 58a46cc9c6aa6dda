"""``projdeploy build``: the whole pipeline as a stage graph with a content-keyed cache.

    projdeploy build --task digits-cls --target ios

pretrain -> project -> finetune -> export (one per target recipe) -> check -> sdk
-> ``dist/<task>-<target>/``. Every stage's outputs live in the cache under a
key hashed from the stage's inputs and settings and the keys of the stages it
reads, so re-running with nothing changed only re-assembles the output
folder. ``--force STAGE`` re-runs that stage and everything after it;
``--dry-run`` prints the plan and what is cached. Each stage calls the same
Python function as its own subcommand.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import click

from .cache import StageCache, locked
from .errors import ConfigError, ProjdeployError, UnknownNameError
from .fsutil import atomic_dir, sha256_file
from .layout import artifact_dir_name, build_dir, check_write
from .report import Report
from .targets import ArtifactSpec

NONDETERMINISTIC = {
    "manifest.json": "stage timings, cache hits and the paths given on the command line",
    "report.json": "latency and memory measured on this host vary from run to run",
    "report.html": "renders report.json",
    "model/projdeploy.json": "training metadata: wall-clock seconds of fine-tuning (and teachers' cache paths)",
}
STAGES = ("pretrain", "project", "finetune", "export", "check", "sdk")
CACHE_VERSION = 2

# The source every stage's output depends on, hashed into its key (files under these folders, relative to
# the folder holding the packages). Every stage reads the shared core; each adds its own part. A stage's key
# also holds the keys of the stages it reads, so editing exporters/ re-runs export, check and sdk, editing
# projdeploy/check/ re-runs check only, and editing the core re-runs everything.
CORE_SOURCES = ("projdeploy/*.py", "projdeploy/models", "projdeploy/tasks", "projdeploy/train")
STAGE_SOURCES = {
    "pretrain": ("projdeploy/project",),  # the projector's pretraining lives with its projection
    "project": ("projdeploy/project",),
    "finetune": ("projdeploy/transfer",),
    "export": ("exporters",),
    "check": ("projdeploy/check", "exporters"),  # profiles and budgets are hashed by content
    "sdk": ("projdeploy/sdk", "exporters"),
}


@dataclass(frozen=True)
class BuildOptions:
    task: str
    target: str = "ios"
    big: str | None = None
    profiles: tuple[str, ...] = ()
    out: str = "dist"
    cache_dir: str | None = None
    preset: str = "tiny"
    pretrain_steps: int | None = None
    method: str = "pn"
    transfer: str = "none"
    finetune_steps: int = 300
    seed: int = 0
    budget: str | None = None
    force: str | None = None
    dry_run: bool = False

    def __post_init__(self):
        if self.force is not None and self.force not in STAGES:
            raise UnknownNameError("stage", self.force, STAGES)

    @property
    def cache_root(self) -> Path:
        return Path(self.cache_dir or os.environ.get("PROJDEPLOY_CACHE") or Path.home() / ".cache" / "projdeploy")


@dataclass(frozen=True)
class StageRecord:
    """One stage run or reused: what the progress lines and the build manifest report."""

    name: str
    key: str
    path: Path  # the cache entry
    cached: bool
    seconds: float = 0.0
    note: str = ""


# --- what the stages hand to each other (frozen; ``key`` is the producing stage's cache key) -----------


@dataclass(frozen=True)
class CheckpointOut:
    """A checkpoint directory: the big model (pretrain), the projected or the fine-tuned small model."""

    key: str
    path: Path


@dataclass(frozen=True)
class ArtifactOut:
    """One exported artifact directory (export), for ``spec`` of the target."""

    key: str
    spec: ArtifactSpec
    path: Path

    def read(self):
        from exporters.base import Artifact

        return Artifact.read(self.path)


@dataclass(frozen=True)
class CheckOut:
    """The check stage's directory: report.json + report.html for every artifact."""

    key: str
    path: Path

    def report(self) -> Report:
        return Report.read(self.path)


@dataclass(frozen=True)
class SdkOut:
    key: str
    path: Path


@dataclass(frozen=True)
class BuildResult:
    out_dir: Path
    stages: tuple[StageRecord, ...] = ()
    report: Report | None = None  # None on a dry run
    passed: bool = True


def source_root() -> Path:
    """The folder holding the ``projdeploy`` and ``exporters`` packages (the repository or site-packages)."""
    return Path(__file__).resolve().parent.parent


def source_digest(patterns: tuple[str, ...], root: Path | None = None) -> str:
    """sha256 over the relative path and bytes of every file matched by ``patterns`` (folders recurse)."""
    root = Path(root or source_root())
    files: set[Path] = set()
    for pat in patterns:
        hits = root.glob(pat) if "*" in pat else [root / pat]
        for p in hits:
            files.update(p.rglob("*") if p.is_dir() else [p])
    h = hashlib.sha256()
    for f in sorted(f for f in files if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc"):
        h.update(f"{f.relative_to(root).as_posix()}\0{f.stat().st_size}\0".encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:20]


def stage_key(stage: str, material: dict, root: Path | None = None) -> str:
    """The cache key: the stage's inputs and settings (upstream keys included) and the source it runs."""
    sources = source_digest(CORE_SOURCES + STAGE_SOURCES[stage], root)
    blob = json.dumps(
        {"cache_version": CACHE_VERSION, "stage": stage, "source": sources, **material}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _data_fingerprint(task) -> str:
    h = hashlib.sha256()
    for split in (task.train, task.eval):
        h.update(split.tokens.tobytes())
        if split.labels is not None:
            h.update(split.labels.tobytes())
    h.update(json.dumps(task.tokenizer.to_dict(), sort_keys=True).encode())
    return h.hexdigest()[:20]


def _dir_fingerprint(d: Path) -> str:
    files = [p for p in sorted(Path(d).glob("*")) if p.is_file() and p.suffix in (".json", ".safetensors", ".npz")]
    if not files:
        raise ConfigError("--big", "path", f"{d} is not a checkpoint directory")
    return hashlib.sha256("".join(p.name + sha256_file(p) for p in files).encode()).hexdigest()[:20]


def generic_corpus(task) -> str:
    """The built-in pretraining corpus whose tokenizer fits the task."""
    if task.modality == "image" and task.tokenizer.kind == "pixel" and task.tokenizer.levels == 17:
        return "digits"
    if task.modality == "text" and task.tokenizer.kind == "byte":
        return "pycode"
    raise ConfigError(
        "build",
        "--big",
        f"task {task.name} ({task.tokenizer.kind} tokens) fits no built-in "
        "pretraining corpus; pretrain a big model on your data and pass --big DIR",
    )


class Builder:
    """Runs the stages in order; each stage is cached by the key of its inputs."""

    def __init__(self, opts: BuildOptions, echo=click.echo):
        from .targets import load_target
        from .tasks import get_task

        self.opts, self.echo = opts, echo
        self.task = get_task(opts.task)
        self.target = load_target(opts.target)
        self.profiles = opts.profiles or self.target.profiles
        self.forced = set(STAGES[STAGES.index(opts.force) :]) if opts.force else set()
        self.records: list[StageRecord] = []
        self.source_root = source_root()
        self.t_start = time.perf_counter()
        self.cache = StageCache(opts.cache_root, echo)
        self._validate_arguments()

    def _validate_arguments(self) -> None:
        """Every argument that a later stage reads is checked now, before any stage runs."""
        from .check.budgets import load_budget
        from .check.profiles import get_profile

        for p in self.profiles:
            get_profile(p)
        load_budget(self.task, self.opts.budget)

    # --- the cache ----------------------------------------------------------------------
    def stage(self, name: str, material: dict, run, label: str | None = None) -> StageRecord:
        key = stage_key(name, material, self.source_root)
        path = self.cache.path(name, key)
        label = label or name
        i = STAGES.index(name) + 1
        if self.opts.dry_run:
            hit = name not in self.forced and self.cache.get(name, key, repair=False) is not None
            self.echo(f"[{i}/{len(STAGES)}] {label:<34s} {'cached' if hit else 'would run'}  key {key}")
            rec = StageRecord(label, key, path, hit)
            self.records.append(rec)
            return rec
        with self.cache.lock(name, key):
            meta = None if name in self.forced else self.cache.get(name, key)
            if meta is not None:
                self.echo(f"[{i}/{len(STAGES)}] {label:<34s} cached ({meta.get('seconds', 0):.1f}s when built)")
                rec = StageRecord(label, key, path, True, 0.0, meta.get("note", ""))
            else:
                self.echo(f"[{i}/{len(STAGES)}] {label:<34s} running ...")
                meta = self.cache.put(name, key, run, material)
                self.echo(
                    f"[{i}/{len(STAGES)}] {label:<34s} done in {meta['seconds']:.1f}s "
                    f"(total {time.perf_counter() - self.t_start:.0f}s)"
                )
                rec = StageRecord(label, key, path, False, meta["seconds"], meta["note"])
        self.records.append(rec)
        return rec

    # --- stages ---------------------------------------------------------------------------
    def pretrain(self) -> CheckpointOut:
        o = self.opts
        if o.big:
            from .foundation import is_foundation_source

            if is_foundation_source(o.big):  # a pretrained model: HF directory, .gguf file or built-in name
                from .foundation import resolve_source

                src = resolve_source(o.big)
                return StageRecord(
                    "pretrain (given --big)", _dir_fingerprint(src.path), Path(o.big), True, 0.0, "given"
                )
            big = Path(o.big)
            if not big.is_dir():
                raise ConfigError("--big", "path", f"{o.big!r} does not exist")
            rec = StageRecord("pretrain (given --big)", _dir_fingerprint(big), big, True, 0.0, "given")
            self.records.append(rec)
            return CheckpointOut(rec.key, big)
        from .project.methods import get_method

        corpus = generic_corpus(self.task)
        from .train.presets import get_preset

        material = {
            "model": get_method(o.method).pretrains,
            "data": corpus,
            "preset": get_preset(o.preset).to_dict(),
            "steps": o.pretrain_steps,
            "seed": o.seed,
        }

        def run(tmp):
            from .train.pretrain import pretrain

            pretrain(
                material["model"], corpus, o.preset, tmp / "big", steps=o.pretrain_steps, seed=o.seed, progress=True
            )
            return f"{material['model']} on {corpus}, preset {o.preset}"

        rec = self.stage("pretrain", material, run)
        return CheckpointOut(rec.key, rec.path / "big")

    def project(self, big: CheckpointOut) -> CheckpointOut:
        o = self.opts
        material = {
            "big": big.key,
            "task": self.task.name,
            "data": _data_fingerprint(self.task),
            "method": o.method,
            "seed": o.seed,
        }

        def run(tmp):
            from .project.api import project

            info = project(big.path, self.task, o.method, tmp / "model", seed=o.seed)
            return (
                f"{o.method}: {json.dumps({k: v for k, v in info.items() if isinstance(v, (int, float, str))})[:200]}"
            )

        rec = self.stage("project", material, run)
        return CheckpointOut(rec.key, rec.path / "model")

    def finetune(self, projected: CheckpointOut, big: CheckpointOut) -> CheckpointOut:
        o = self.opts
        material = {"project": projected.key, "transfer": o.transfer, "steps": o.finetune_steps, "seed": o.seed}

        def run(tmp):
            from .train.finetune import FinetuneConfig, finetune
            from .transfer import get_transfer

            teachers = [big.path] if get_transfer(o.transfer).needs_teacher else []
            _, info = finetune(
                projected.path,
                self.task,
                o.transfer,
                teachers,
                out=tmp / "model",
                cfg=FinetuneConfig(steps=o.finetune_steps, seed=o.seed),
                progress=True,
            )
            return f"{o.transfer}: eval {info.get('eval', info.get('metric', ''))}"[:200]

        rec = self.stage("finetune", material, run)
        return CheckpointOut(rec.key, rec.path / "model")

    def _recipe(self, spec: ArtifactSpec):
        """The target's recipe for this task (an LM task takes the format's LM program recipe of that name);
        None for an optional artifact the task cannot have."""
        from exporters.registry import get_format

        try:
            return get_format(spec.format).recipe(spec.recipe, lm=self.task.kind == "lm")
        except UnknownNameError as e:
            if not spec.optional:
                raise
            self.echo(f"      skipped optional {spec.key}: {e}")
            return None

    def export(self, model: CheckpointOut) -> dict[str, ArtifactOut]:
        from exporters import UnavailableError

        out = {}
        for spec in self.target.artifacts:
            rec = self._recipe(spec)
            if rec is None:
                continue
            recipe = rec.to_dict()
            material = {"model": model.key, "format": spec.format, "recipe": recipe, "layout": 2}

            sub = artifact_dir_name(spec.key, self.target.source)  # the artifact's folder name

            def run(tmp, spec=spec, sub=sub):
                from exporters.api import export_checkpoint

                export_checkpoint(model.path, spec.format, spec.recipe, self.task, tmp / sub)
                return ""

            try:
                rec = self.stage("export", material, run, label=f"export {spec.key}")
            except UnavailableError as e:
                if not spec.optional:
                    raise
                self.echo(f"      skipped optional {spec.key}: {e}")
                continue
            out[spec.key] = ArtifactOut(rec.key, spec, rec.path / sub)
        return out

    def check(self, artifacts: dict[str, ArtifactOut]) -> CheckOut:
        from .check.budgets import load_budget
        from .check.profiles import get_profile

        o = self.opts
        material = {
            "artifacts": {k: r.key for k, r in artifacts.items()},
            "profiles": {p: get_profile(p).raw for p in self.profiles},  # contents, not names
            "budget": load_budget(self.task, o.budget)[0],
            "task": self.task.name,
        }

        def run(tmp):
            from .check import run_check

            dirs = [a.path for a in artifacts.values()]
            run_check(dirs, self.task, list(self.profiles), budget_file=o.budget, out_dir=tmp)
            return ""

        rec = self.stage("check", material, run)
        return CheckOut(rec.key, rec.path)

    def sdk(self, artifacts: dict[str, ArtifactOut]) -> SdkOut | None:
        t = self.target
        if not t.sdk:
            return None
        art = artifacts.get(t.sdk_artifact)
        if art is None:
            raise ProjdeployError(f"target {t.name}: sdk_artifact {t.sdk_artifact} was not built")
        material = {"artifact": art.key, "target": t.sdk}

        def run(tmp):
            from .sdk import generate

            generate(art.path, t.sdk, tmp / "sdk")
            return ""

        rec = self.stage("sdk", material, run, label=f"sdk {t.sdk}")
        return SdkOut(rec.key, rec.path / "sdk")

    # --- assembly ---------------------------------------------------------------------------
    def run(self) -> BuildResult:
        # Keys depend only on settings and upstream keys, so a dry run can print the whole plan.
        check_write(self.out_dir, self.opts.out)  # names and the output location, before any stage runs
        if not self.opts.dry_run:
            self.cache.clean_stale()
        big = self.pretrain()
        projected = self.project(big)
        ft = self.finetune(projected, big)
        arts = self.export(ft)
        chk = self.check(arts)
        sdk = self.sdk(arts)
        if self.opts.dry_run:
            return BuildResult(self.out_dir, tuple(self.records))
        return self.assemble(ft, arts, chk, sdk)

    @property
    def out_dir(self) -> Path:
        return build_dir(self.opts.out, self.task.name, self.task.source, self.target.name, self.target.source)

    def assemble(
        self, model: CheckpointOut, arts: dict[str, ArtifactOut], chk: CheckOut, sdk: SdkOut | None
    ) -> BuildResult:
        from exporters import read_manifest

        report = chk.report()
        with (
            locked(self.out_dir, self.echo, f"output {self.out_dir}"),
            atomic_dir(self.out_dir, root=self.opts.out) as tmp,
        ):
            shutil.copytree(model.path, tmp / "model")
            entries = []
            for key, rec in arts.items():
                dest = tmp / "artifacts" / artifact_dir_name(key, self.target.source)
                shutil.copytree(rec.path, dest)
                m = read_manifest(dest)
                sha, size = _main_digest(m)
                entries.append(
                    {
                        "key": key,
                        "path": str(dest.relative_to(tmp)),
                        "main_file": m["main_file"],
                        "sha256": sha,
                        "size": size,
                        "recipe": m["recipe"],
                    }
                )
            if self.task.data_files:  # what a user task trained on: resolved paths and sha256
                report = Report.from_dict({**report.to_dict(), "data_files": self.task.data_files})
            (tmp / "report.json").write_text(json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
            if (chk.path / "report.html").is_file():
                shutil.copy2(chk.path / "report.html", tmp / "report.html")
            figures = sorted(chk.path.glob("*.png"))
            for f in figures:
                shutil.copy2(f, tmp / f.name)
            if sdk is not None:
                shutil.copytree(sdk.path, tmp / "sdk")
            manifest = {
                "schema": "projdeploy.build/1",
                "task": self.task.name,
                "target": self.target.name,
                "target_source": self.target.source,
                "data_files": self.task.data_files,
                "profiles": list(self.profiles),
                "options": dataclasses.asdict(self.opts),
                "artifacts": entries,
                # Everything else is byte-identical when the same build runs twice from empty caches
                # (tests/test_build_reliability.py); these files are not, and this is why.
                "nondeterministic": {
                    **NONDETERMINISTIC,
                    **{f.name: "a figure of the host measurements in report.json" for f in figures},
                },
                "stages": [
                    {"stage": r.name, "key": r.key, "cached": r.cached, "seconds": round(r.seconds, 3)}
                    for r in self.records
                ],
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        return BuildResult(self.out_dir, tuple(self.records), report, report.passed)


def _main_digest(manifest: dict) -> tuple[str, int]:
    """sha256 and size of the main file; a package directory (.mlpackage) digests its files' records."""
    main, files = manifest["main_file"], manifest["files"]
    if main in files:
        return files[main]["sha256"], files[main]["size"]
    inside = sorted((k, v) for k, v in files.items() if k.startswith(main.rstrip("/") + "/"))
    blob = "".join(f"{k}:{v['sha256']}\n" for k, v in inside)
    return hashlib.sha256(blob.encode()).hexdigest(), sum(v["size"] for _, v in inside)


def build(opts: BuildOptions, echo=click.echo) -> BuildResult:
    return Builder(opts, echo).run()
