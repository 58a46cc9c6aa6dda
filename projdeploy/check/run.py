"""``run_check``: measure an artifact on the host, estimate it per device profile, judge budgets.

    projdeploy check --artifact out/cls-onnx --task digits-cls --profile pixel-8 --profile iphone-13

Python: ``from projdeploy.check import run_check``; ``run_check(artifact_dirs, task, profiles)``
returns one validated :class:`projdeploy.report.Report` (schema ``projdeploy.report/1``) for every
artifact and writes report.json + report.html when ``out_dir`` is given.
"""

from __future__ import annotations

import platform
from pathlib import Path

from ..errors import ConfigError, ProjdeployError
from ..report import SCHEMA, Report, figure
from . import budgets as B

MB = 2**20


def _metric_block(task, artifact, host, checkpoint, rows) -> dict:
    art = host.get("metric") if host.get("available") else None
    val = artifact.validation
    if checkpoint is not None:
        from .host import float_metric

        fm = float_metric(checkpoint, task, rows)
        fl, src = fm["value"], f"float checkpoint {checkpoint} (host, {fm['n']} eval rows)"
    elif "metric_float" in val:
        fl, src = float(val["metric_float"]), "manifest validation (export-time float model, same eval rows)"
    else:
        fl, src = None, "unknown (no checkpoint given and no metric_float in the manifest)"
    a_val = art["value"] if art else val.get("metric_artifact")
    a_src = f"measured on host ({art['n']} eval rows)" if art else "manifest validation (export time)"
    drop = task.metric_drop(fl, a_val) if fl is not None and a_val is not None else None
    return {
        "name": task.metric,
        "higher_is_better": task.higher_is_better,
        "float": fl,
        "float_source": src,
        "artifact": a_val,
        "artifact_source": a_src,
        "drop": drop,
    }


def _host_fit(graph, host, cal) -> dict | None:
    """Fit the host's efficiency: measured latency vs the roofline of the measured host peak/bandwidth."""
    if not host.get("available"):
        return None
    from .calibration import host_bandwidth_gbs, host_peak_gflops
    from .estimator import DeviceParams, estimate_forward

    prog, ops = next(iter(graph.programs.items()))
    meas = host["programs"].get(prog) or next(iter(host["programs"].values()))
    peak, bw = host_peak_gflops(cal) * host["threads"], host_bandwidth_gbs()
    ideal = DeviceParams(
        "host", "host", graph.precision.name, "cpu", host["threads"], peak, 1.0, bw, 1.0, 0.0, 0.0, 1.0, 0.0
    )
    roof = estimate_forward(ops, ideal)
    n = roof["ops"]
    return {
        "program": prog,
        "host_peak_gflops": peak,
        "host_bandwidth_gbs": bw,
        "roofline_ms": roof["latency_ms"],
        "measured_median_ms": meas["median_ms"],
        "efficiency": roof["latency_ms"] / meas["median_ms"],
        "dispatch_us_fitted": max(0.0, (meas["median_ms"] - roof["latency_ms"]) * 1e3 / max(n, 1)),
        "note": "efficiency = roofline at 100% of the calibrated host peak / measured median; "
        "dispatch_us_fitted = (measured - roofline) / dispatched operators",
    }


def _estimate(profile, graph, art, runtime, kv_bytes) -> dict:
    from .estimator import estimate_forward, estimate_lm, planned_estimates, resolve_params
    from .graph import shape_of
    from .memory import memory_estimate

    if runtime not in profile.runtimes:
        return {
            "available": False,
            "reason": f"runtime {runtime} is not available on {profile.name} (runtimes: {', '.join(profile.runtimes)})",
        }
    params = resolve_params(profile, runtime, graph.precision.compute)
    prog, ops = next(iter(graph.programs.items()))
    fwd = estimate_forward(ops, params)
    est = {
        "available": True,
        "kind": "estimate",
        "runtime": runtime,
        "program": prog,
        "params": params.to_dict(),
        "latency_ms": fwd["latency_ms"],
        "cold_start_ms": fwd["cold_start_ms"],
        "compute_ms": fwd["compute_ms"],
        "memory_time_ms": fwd["memory_ms"],
        "dispatch_ms": fwd["dispatch_ms"],
        "flops": fwd["flops"],
        "unit": fwd["unit"],
        "unit_flops_fraction": fwd["unit_flops_fraction"],
        "uncosted_op_types": fwd["uncosted_op_types"],
        "by_class_ms": fwd["by_class_ms"],
        "planned": planned_estimates(profile, ops, runtime),
        "assumptions": list(params.assumptions),
    }
    if art.model.get("task_kind") == "lm":
        shape = shape_of(art)
        seq = int(art.model.get("seq_len") or 64)
        lm = estimate_lm(
            shape,
            graph.precision,
            params,
            prompt=max(1, seq // 2),
            gen=seq // 2,
            weight_factor=graph.file_bytes / (shape.num_parameters() * graph.precision.weight_bytes),
        )
        est["lm"] = lm
        est["assumptions"].append(
            f"LM: prompt {lm['prompt_tokens']} tokens, decode at context "
            f"{lm['decode_context']} (analytic operator list from the config)"
        )
    weight_bytes = graph.file_bytes
    est["memory"] = memory_estimate(
        weight_bytes=weight_bytes,
        ops=ops,
        kv_cache_bytes=kv_bytes,
        params=params,
        budget_mb=profile.app_memory_budget_mb.value,
        act_peak_bytes=graph.act_peak_bytes,
    )
    return est


def _load(artifact_dir, task):
    """(Artifact, Task) with the artifact's manifest read once; the task re-tokenizes for a pretrained model."""
    from exporters.base import Artifact

    from ..tasks import get_task
    from ..tasks.hf_tokenizer import task_for_checkpoint

    d = Path(artifact_dir)
    if not d.is_dir():
        raise ConfigError(str(d), "(artifact)", "artifact directory does not exist")
    art = Artifact.read(d, verify=True)  # a tampered or corrupted artifact is refused before measuring
    task = get_task(task) if isinstance(task, str) else task
    task = task_for_checkpoint(task, d)  # a pretrained model's tokenizer re-tokenizes
    if art.model.get("task") not in (None, task.name):
        raise ConfigError(
            str(d / "manifest.json"),
            "model.task",
            f"artifact was exported for task {art.model['task']!r}, not {task.name!r}",
        )
    return art, task


def _profile_lines(pn: str, e: dict, budget: dict) -> list[dict]:
    """The budget lines of one profile's estimate."""
    lat = B.per_profile(budget, "max_latency_ms", pn)
    if not e["available"]:
        return [B.line("est_latency_ms", None, lat, kind="estimate", profile=pn, unit="ms", note=e["reason"])]
    mem = e["memory"]
    lines = [
        B.line("est_latency_ms", e["latency_ms"], lat, kind="estimate", profile=pn, unit="ms"),
        B.line("est_memory_mb", mem["total_mb"], budget.get("max_memory_mb"), kind="estimate", profile=pn, unit="MB"),
        B.line(
            "est_memory_vs_app_budget_mb",
            mem["total_mb"],
            mem["app_budget_mb"],
            kind="estimate",
            profile=pn,
            unit="MB",
            note=mem["note"],
        ),
    ]
    if "lm" in e:
        tok_s = B.per_profile(budget, "min_decode_tok_s", pn)
        lines.append(
            B.line(
                "est_decode_tok_s",
                e["lm"]["decode_tok_s"],
                tok_s,
                kind="estimate",
                profile=pn,
                unit="tok/s",
                higher_is_better=True,
            )
        )
    return lines


def _lines(graph, metric: dict, ests: dict, budget: dict, task) -> list[dict]:
    """Every budget line of one artifact: size, metric drop, then each profile's estimates."""
    lines = [
        B.line("size_mb", graph.file_bytes / MB, budget.get("max_size_mb"), kind="deterministic", unit="MB"),
        B.line(
            "metric_drop",
            metric["drop"],
            budget.get("max_metric_drop"),
            kind="measured",
            unit=task.metric,
            note=f"float: {metric['float_source']}",
        ),
    ]
    for pn, e in ests.items():
        lines += _profile_lines(pn, e, budget)
    return lines


def _figures(name: str, graph, metric: dict, host: dict, ests: dict, task) -> list[dict]:
    """The figures the gate compares, for one artifact."""
    flops = sum(o.flops for o in next(iter(graph.programs.values())))
    figs = [
        figure(name, None, "size_bytes", graph.file_bytes, "bytes", "deterministic"),
        figure(name, None, "flops", flops, "FLOP", "deterministic"),
    ]
    if metric["artifact"] is not None:
        hib = task.higher_is_better
        figs.append(
            figure(
                name, None, "metric", metric["artifact"], task.metric, "metric", higher_is_better=hib, tolerance=0.01
            )
        )
    for prog, h in host["programs"].items() if host.get("available") else ():
        key = f"host_latency_ms.{prog}" if prog != "forward" else "host_latency_ms"
        figs.append(figure(name, None, key, h["median_ms"], "ms", "measured", tolerance=0.5, samples=h["samples_ms"]))
    for pn, e in ests.items():
        if not e["available"]:
            continue
        det = {"kind": "deterministic", "tolerance": 1e-6}
        figs.append(figure(name, pn, "est_latency_ms", e["latency_ms"], "ms", **det))
        figs.append(figure(name, pn, "est_memory_mb", e["memory"]["total_mb"], "MB", **det))
        # the gate fails when a smaller share of the FLOPs runs on the assumed compute unit
        figs.append(
            figure(name, pn, "unit_flops_fraction", e["unit_flops_fraction"], "fraction", higher_is_better=True, **det)
        )
        if "lm" in e:
            figs.append(
                figure(name, pn, "est_decode_tok_s", e["lm"]["decode_tok_s"], "tok/s", higher_is_better=True, **det)
            )
    return figs


def check_artifact(
    artifact_dir,
    task,
    profiles: list[str],
    budget_file=None,
    *,
    repeats: int = 20,
    warmup: int = 3,
    threads: int = 1,
    metric_rows: int = 256,
    checkpoint=None,
    cal=None,
    name: str | None = None,
) -> tuple[dict, list, dict]:
    """(artifact section, figures, profile info) for one artifact; see ``run_check``."""
    from .calibration import run_calibration
    from .graph import artifact_graph, runtime_for
    from .host import measure_host
    from .memory import kv_cache_bytes
    from .profiles import get_profile

    art, task = _load(artifact_dir, task)
    profs = [get_profile(p) for p in profiles]  # unknown names fail before any measuring
    budget, budget_src = B.load_budget(task, budget_file)
    cal = cal or run_calibration()
    graph = artifact_graph(art)
    runtime, rt_why = runtime_for(art)
    host = measure_host(art, task, repeats=repeats, warmup=warmup, threads=threads, metric_rows=metric_rows)
    metric = _metric_block(task, art, host, checkpoint, metric_rows)
    kvb = kv_cache_bytes(art)
    ests = {p.name: _estimate(p, graph, art, runtime, kvb) for p in profs}
    name = name or art.path.name
    lines = _lines(graph, metric, ests, budget, task)
    section = {
        "name": name,
        "path": str(art.path),
        "format": art.format,
        "recipe": art.recipe.to_dict(),
        "task": task.name,
        "task_kind": art.model.get("task_kind"),
        "runtime": runtime,
        "runtime_reason": rt_why,
        "precision": graph.precision.name,
        "size_bytes": graph.file_bytes,
        "graph": graph.summary(),
        "measured": host,
        "metric": metric,
        "host_fit": _host_fit(graph, host, cal),
        "estimates": ests,
        "budget": budget,
        "budget_source": budget_src,
        "lines": lines,
        "passed": all(ln["passed"] is not False for ln in lines),
    }
    pinfo = {p.name: {"title": p.title, "path": p.path, "soc": p.soc, "sources": p.sources} for p in profs}
    return section, _figures(name, graph, metric, host, ests, task), pinfo


def run_check(
    artifacts,
    task,
    profiles,
    budget_file=None,
    out_dir=None,
    repeats: int = 20,
    warmup: int = 3,
    *,
    threads: int = 1,
    metric_rows: int = 256,
    checkpoint=None,
) -> Report:
    """Check artifacts for ``task`` on ``profiles``: one validated :class:`~projdeploy.report.Report`.

    ``artifacts``: one artifact directory or a list of them (named by their directory names, which must be
    distinct); ``task``: a Task or a task name. One calibration run serves every artifact. Writes report.json
    + report.html into ``out_dir`` when given.
    """
    import torch

    from ..tasks import get_task
    from .calibration import run_calibration

    dirs = [artifacts] if isinstance(artifacts, (str, Path)) else list(artifacts)
    profiles = [profiles] if isinstance(profiles, str) else list(profiles)
    if not profiles:
        raise ProjdeployError("give at least one --profile (see `projdeploy profiles list`)")
    if not dirs:
        raise ProjdeployError("give at least one artifact directory to check")
    task = get_task(task) if isinstance(task, str) else task
    cal = run_calibration()
    sections, figs, pinfo = [], [], {}
    for d in dirs:
        section, f, p = check_artifact(
            d,
            task,
            profiles,
            budget_file,
            repeats=repeats,
            warmup=warmup,
            threads=threads,
            metric_rows=metric_rows,
            checkpoint=checkpoint,
            cal=cal,
        )
        if section["name"] in {s["name"] for s in sections}:
            raise ConfigError(str(d), "(artifact)", f"two artifacts are named {section['name']!r}; rename one")
        sections.append(section)
        figs += f
        pinfo.update(p)
    from importlib.metadata import version

    report = {
        "schema": SCHEMA,
        "created_by": f"projdeploy {version('projdeploy')}",
        "host": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": threads,
            "note": "host figures are measured on this machine; device figures are estimates",
        },
        "calibration": cal,
        "artifacts": sections,
        "profiles": pinfo,
        "figures": figs,
        "passed": all(s["passed"] for s in sections),
    }
    rep = Report.from_dict(report)
    return rep.write(out_dir) if out_dir is not None else rep
