"""report.html: the report for people (plots + tables), rendered from the report dict.

    python -c "from projdeploy.check.html import render_html; import json; print(render_html(json.load(open('out/report.json')))[:200])"

Estimates and measurements are labelled as such everywhere; profile sources are linked.
"""

from __future__ import annotations

import base64
import io
from html import escape


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _latency_plot(plt, arts: list, profs: list) -> str:
    """Estimated latency per (artifact, profile) on a log axis, budget marked in red, planned targets hollow."""
    rows = []  # (label, latency, budget, planned)
    for a in arts:
        for p in profs:
            e = a["estimates"].get(p, {})
            if not e.get("available"):
                continue
            lim = next(
                (ln["limit"] for ln in a["lines"] if ln["name"] == "est_latency_ms" and ln["profile"] == p), None
            )
            unit = f"{e.get('unit', '?')} {100 * e.get('unit_flops_fraction', 1.0):.0f}%"
            rows.append((f"{a['name']} @ {p} [{e['runtime']}, {unit}]", e["latency_ms"], lim, False))
            for pl in e.get("planned", []):
                rows.append((f"  planned {pl['runtime']} {pl['precision']}", pl["latency_ms"], lim, True))
    fig, ax = plt.subplots(figsize=(9, 0.6 + 0.35 * len(rows)))
    for y, (_lab, v, lim, planned) in enumerate(rows):
        ax.barh(y, v, color="none" if planned else "#4c72b0", edgecolor="#4c72b0", hatch="//" if planned else None)
        if lim:
            ax.plot([lim, lim], [y - 0.45, y + 0.45], color="#c44e52", lw=2)
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ESTIMATED latency per forward (ms, log scale); red = budget; hatched = planned target")
    ax.set_title("Estimated latency per profile (not measured on devices)")
    return _png(fig)


def _plots(r: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    arts = r["artifacts"]
    profs = sorted({p for a in arts for p, e in a["estimates"].items() if e.get("available")})
    if profs:
        out.append(_latency_plot(plt, arts, profs))
    pts = [
        (a["size_bytes"] / 2**20, a["metric"]["artifact"], f"{a['name']} ({a['recipe'].get('name', '?')})")
        for a in arts
        if a["metric"]["artifact"] is not None
    ]
    if pts:
        fig, ax = plt.subplots(figsize=(6, 4))
        for x, yv, lab in pts:
            ax.scatter([x], [yv])
            ax.annotate(lab, (x, yv), fontsize=8)
        ax.set_xlabel("artifact size (MB)")
        ax.set_ylabel(f"{arts[0]['metric']['name']} (MEASURED on host)")
        ax.set_title("Size vs task metric per recipe")
        out.append(_png(fig))
    lm = [
        (a, p, e["lm"]["decode_tok_s"])
        for a in arts
        for p, e in a["estimates"].items()
        if e.get("available") and "lm" in e
    ]
    if lm:
        fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len(lm)))
        ax.barh(range(len(lm)), [v for *_, v in lm], color="#55a868")
        ax.set_yticks(range(len(lm)), [f"{a['name']} @ {p}" for a, p, _ in lm])
        ax.set_xlabel("ESTIMATED decode tokens/s")
        ax.set_title("Estimated decode speed (language models)")
        out.append(_png(fig))
    return out


def _fmt(v, nd=3):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{nd}g}"
    return escape(str(v))


def _status(p):
    return {
        True: '<b style="color:#2a7">PASS</b>',
        False: '<b style="color:#c33">FAIL</b>',
        None: '<span style="color:#888">not judged</span>',
    }[p]


def render_html(r: dict) -> str:
    h = [
        "<!doctype html><html><head><meta charset='utf-8'><title>projdeploy check report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
        "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}th{background:#eee}"
        ".est{background:#eef3ff}.meas{background:#effaef}</style></head><body>",
        f"<h1>projdeploy check report — {_status(r['passed'])}</h1>",
        f"<p>{escape(r['created_by'])}; schema {escape(r['schema'])}. Host: {escape(r['host']['platform'])}, "
        f"{r['host']['threads']} thread(s). <span class='meas'>MEASURED</span> = on this host; "
        "<span class='est'>ESTIMATE</span> = roofline model from the device profile, not a device measurement.</p>",
        f"<p>Calibration ({escape(r['calibration']['name'])}): median {r['calibration']['median_s'] * 1e3:.2f} ms.</p>",
    ]
    h += _plots(r)
    for a in r["artifacts"]:
        h += _artifact(a)
    h.append("<h2>Profiles and sources</h2>")
    for pn, p in r["profiles"].items():
        srcs = ", ".join(
            f"<a href='{escape(u)}'>{escape(k)}</a>" if u.startswith("http") else f"{escape(k)}: {escape(u)}"
            for k, u in p["sources"].items()
        )
        h.append(f"<p><b>{escape(pn)}</b> — {escape(p['title'])} ({escape(p['soc'])}). Sources: {srcs}</p>")
    h.append("</body></html>")
    return "\n".join(h)


def _artifact(a: dict) -> list[str]:
    m = a["metric"]
    h = [f"<h2>{escape(a['name'])} — {_status(a['passed'])}</h2>"]
    h.append(
        f"<p>format {escape(a['format'])}, recipe {escape(str(a['recipe'].get('name')))}, precision "
        f"{escape(a['precision'])}, runtime {escape(a['runtime'])} ({escape(a['runtime_reason'])}); size "
        f"{a['size_bytes'] / 2**20:.3f} MB; graph path: {escape(a['graph']['path'])}.</p>"
    )
    h.append(
        "<table><tr><th>budget line</th><th>profile</th><th>kind</th><th>value</th><th>limit</th>"
        "<th>result</th><th>note</th></tr>"
    )
    for ln in a["lines"]:
        cls = "est" if ln["kind"] == "estimate" else ("meas" if ln["kind"] == "measured" else "")
        h.append(
            f"<tr class='{cls}'><td>{escape(ln['name'])}</td><td>{_fmt(ln['profile'])}</td>"
            f"<td>{'ESTIMATE' if ln['kind'] == 'estimate' else ln['kind'].upper()}</td>"
            f"<td>{_fmt(ln['value'])} {escape(ln['unit'])}</td><td>{_fmt(ln['limit'])}</td>"
            f"<td>{_status(ln['passed'])}</td><td>{escape(ln['note'])}</td></tr>"
        )
    h.append("</table>")
    h.append(
        f"<p class='meas'>MEASURED metric {escape(m['name'])}: artifact {_fmt(m['artifact'], 5)} "
        f"({escape(m['artifact_source'])}); float {_fmt(m['float'], 5)} ({escape(m['float_source'])}); "
        f"drop {_fmt(m['drop'], 3)}. Budget source: {escape(a['budget_source'])}.</p>"
    )
    return h + _measured(a) + _estimates(a)


def _measured(a: dict) -> list[str]:
    h = []
    meas = a["measured"]
    if meas.get("available"):
        h.append(
            "<table class='meas'><tr><th>MEASURED on host: program</th><th>median ms</th><th>p90 ms</th>"
            "<th>runs (warm-up)</th><th>threads</th></tr>"
        )
        for prog, t in meas["programs"].items():
            h.append(
                f"<tr><td>{escape(prog)}</td><td>{t['median_ms']:.3f}</td><td>{t['p90_ms']:.3f}</td>"
                f"<td>{meas['repeats']} ({meas['warmup']})</td><td>{meas['threads']}</td></tr>"
            )
        h.append(
            f"</table><p class='meas'>Host memory: RSS growth {_fmt(meas['rss_growth_mb'])} MB, process "
            f"peak {_fmt(meas['process_peak_rss_mb'])} MB.</p>"
        )
        hf = a.get("host_fit")
        if hf:
            h.append(
                f"<p>Host calibration fit: roofline {hf['roofline_ms']:.4f} ms at calibrated peak "
                f"{hf['host_peak_gflops']:.1f} GFLOPS / {hf['host_bandwidth_gbs']:.1f} GB/s vs measured "
                f"{hf['measured_median_ms']:.3f} ms → efficiency {hf['efficiency']:.3g}, per-operator "
                f"overhead {hf['dispatch_us_fitted']:.1f} µs.</p>"
            )
    else:
        h.append(f"<p>Not measured on this host: {escape(meas.get('reason', ''))}</p>")
    return h


def _estimates(a: dict) -> list[str]:
    h = []
    h.append(
        "<table class='est'><tr><th>ESTIMATE: profile</th><th>runtime: compute unit (share of FLOPs)</th>"
        "<th>latency ms</th><th>cold start ms</th>"
        "<th>prefill ms / decode tok/s</th><th>memory MB (budget)</th><th>assumptions</th></tr>"
    )
    for pn, e in a["estimates"].items():
        if not e.get("available"):
            h.append(f"<tr><td>{escape(pn)}</td><td colspan=6>{escape(e['reason'])}</td></tr>")
            continue
        lm = e.get("lm")
        lmtxt = f"{lm['prefill_ms']:.2f} / {lm['decode_tok_s']:.1f}" if lm else "—"
        mem = e["memory"]
        unc = e.get("uncosted_op_types") or []
        unit = (
            f"{escape(e['runtime'])}: {escape(e.get('unit', '?'))} ({100 * e.get('unit_flops_fraction', 1.0):.1f}%)"
            + (f"<br>uncosted: {escape(', '.join(unc))}" if unc else "")
        )
        h.append(
            f"<tr><td>{escape(pn)}</td><td>{unit}</td><td>{e['latency_ms']:.3f}</td><td>{e['cold_start_ms']:.3f}</td>"
            f"<td>{lmtxt}</td><td>{mem['total_mb']:.1f} ({_fmt(mem['app_budget_mb'])})</td><td><ul>"
            + "".join(f"<li>{escape(x)}</li>" for x in e["assumptions"])
            + "</ul></td></tr>"
        )
        for pl in e.get("planned", []):
            h.append(
                f"<tr class='planned'><td>{escape(pn)}</td><td>PLANNED {escape(pl['runtime'])}: "
                f"{escape(pl['unit'])} ({100 * pl['unit_flops_fraction']:.1f}%) at {escape(pl['precision'])}</td>"
                f"<td>{pl['latency_ms']:.3f}</td><td colspan=4>{escape(pl['note'])}</td></tr>"
            )
    h.append("</table>")
    return h
