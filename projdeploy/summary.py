"""The build's final summary table (Markdown-ish text) from a report.json.

python -c "import json,sys; from projdeploy.summary import summary_table; print(summary_table(json.load(open(sys.argv[1]))))" dist/digits-cls-ios/report.json
"""

from __future__ import annotations


def _budget_lines(report: dict) -> list[dict]:
    """Budget lines of every artifact, each tagged with its artifact name."""
    return [{**ln, "artifact": a["name"]} for a in report.get("artifacts", []) for ln in a.get("lines", [])]


def summary_table(report: dict) -> str:
    figs = report.get("figures", [])
    arts = list(dict.fromkeys(f["artifact"] for f in figs))
    profiles = list(dict.fromkeys(f["profile"] for f in figs if f.get("profile") and f["name"].startswith("est_")))
    lat_name = {}
    for f in figs:
        if f.get("profile") and f["name"] in ("est_latency_ms", "est_ttft_ms", "est_prefill_ms"):
            lat_name.setdefault((f["artifact"], f["profile"]), f)
    lines = _budget_lines(report)
    head = ["artifact", "size MB", "metric"] + [f"est. {p} ms" for p in profiles] + ["budgets"]
    rows = [head, ["---"] * len(head)]
    for a in arts:
        get = {f["name"]: f for f in figs if f["artifact"] == a and not f.get("profile")}
        size = get.get("size_bytes", {}).get("value")
        metric = get.get("metric", {})
        mine = [ln for ln in lines if ln["artifact"] == a]
        failed = [ln for ln in mine if ln.get("passed") is False]
        row = [a, f"{size / 1e6:.3f}" if size is not None else "-", f"{metric['value']:.4f}" if metric else "-"]
        for p in profiles:
            f = lat_name.get((a, p))
            row.append(f"{f['value']:.3f}" if f else "-")
        row.append(
            "PASS"
            if not failed
            else "FAIL: "
            + ", ".join(f"{ln['name']}{'@' + ln['profile'] if ln.get('profile') else ''}" for ln in failed)
        )
        rows.append(row)
    return "\n".join("| " + " | ".join(map(str, r)) + " |" for r in rows)
