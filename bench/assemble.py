"""Assemble BENCHMARKS.md from the per-benchmark result files in bench/results/.

    .venv/bin/python bench/assemble.py

Each bench/<name>.py writes bench/results/<name>.md with its own table, the
exact command, seeds and machine notes; this script only concatenates them in
a fixed order under a common header.
"""

from __future__ import annotations

from pathlib import Path

ORDER = ["train_throughput", "pretrain", "methods", "export", "estimator", "estimator_llm", "build"]
HEADER = """# Benchmarks

All figures were measured on the development machine (2 CPU cores, x86_64, no GPU, torch 2.13.0 CPU) by the
command given in each section. During this session several contributors shared the two cores, so absolute
times are noisy: speed is reported as a ratio against a baseline measured in the same run, and every table
says how many repeats/seeds it used and their spread. Regenerate a section by re-running its command;
regenerate this file with `.venv/bin/python bench/assemble.py`.

"""


def main():
    root = Path(__file__).parent / "results"
    parts = [HEADER]
    names = ORDER + sorted(p.stem for p in root.glob("*.md") if p.stem not in ORDER)
    for name in names:
        p = root / f"{name}.md"
        if p.is_file():
            parts.append(f"<!-- from bench/results/{name}.md -->\n" + p.read_text().strip() + "\n")
    out = Path(__file__).parent.parent / "BENCHMARKS.md"
    out.write_text("\n".join(parts))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
