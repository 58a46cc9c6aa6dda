"""Where an LM program's time goes: ETDump per-operator timings of prefill and decode on the host.

    .venv/bin/python bench/lm_profile.py --pte /tmp/lm-bench/pd-xnnpack-8da4w/model.pte --prompt 64 --decode 32 --threads 2

Runs the program through ExecuTorch's pybindings with ETDump on (``enable_etdump=True``), reads it
back with ``executorch.devtools.Inspector`` and prints the time per event (delegate calls, the
non-delegated operators such as ``llama::custom_sdpa`` / ``llama::update_cache``, the embedding),
summed over the run, with its share. Events nest: ``DELEGATE_CALL`` contains the XNNPACK operators
listed under their own names (``Fully Connected ...``), ``OPERATOR_CALL`` the ``native_call_*``
kernels, so shares add up to more than 100%. No ETRecord: events are named by the runtime (operator names,
``DELEGATE_CALL`` per XNNPACK partition), which is what the summary needs.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict
from pathlib import Path


def profile(pte: str, prompt: int, decode: int, threads: int) -> dict:
    import executorch.extension.llm.custom_ops.custom_ops  # noqa: F401
    import executorch.kernels.quantized  # noqa: F401
    import torch
    from executorch.devtools import Inspector
    from executorch.extension.pybindings.portable_lib import _load_for_executorch, _unsafe_reset_threadpool

    _unsafe_reset_threadpool(threads)
    m = _load_for_executorch(pte, enable_etdump=True)
    m.run_method("forward", (torch.ones((1, prompt), dtype=torch.long), torch.tensor([0])))
    for i in range(decode):
        m.run_method("forward", (torch.ones((1, 1), dtype=torch.long), torch.tensor([prompt + i])))
    with tempfile.TemporaryDirectory() as d:
        path = str(Path(d) / "etdump.etdp")
        m.write_etdump_result_to_file(path)
        insp = Inspector(etdump_path=path)
    per, calls = defaultdict(float), defaultdict(int)
    for block in insp.event_blocks:
        for ev in block.events:
            if ev.perf_data is None or ev.name in ("Method::execute", "Method::init", "Program::load_method"):
                continue
            per[ev.name] += sum(ev.perf_data.raw)
            calls[ev.name] += len(ev.perf_data.raw)
    total = sum(per.values()) or 1.0
    rows = sorted(per.items(), key=lambda kv: -kv[1])
    return {
        "runs": 1 + decode,
        "total_ms": total,
        "events": [{"name": k, "ms": v, "share": v / total, "calls": calls[k]} for k, v in rows],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pte", required=True)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--decode", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--top", type=int, default=15)
    a = ap.parse_args()
    res = profile(a.pte, a.prompt, a.decode, a.threads)
    print(f"{res['runs']} calls, {res['total_ms']:.1f} ms in profiled events")
    for e in res["events"][: a.top]:
        print(f"{e['share']:6.1%} {e['ms']:9.2f} ms {e['calls']:6d}x  {e['name']}")


if __name__ == "__main__":
    main()
