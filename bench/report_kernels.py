#!/usr/bin/env python
"""Run the kernel micro-benchmarks and write the "Kernels" section of bench/RESULTS.md.

Usage, from the repository root, with the kernels built and the ``bench`` extra installed:

    python bench/report_kernels.py [extra pytest args...]

It runs ``python -m pytest bench/test_bench_kernels.py --benchmark-json=...``, pairs each
fastprod benchmark with its baseline (same pytest-benchmark group), computes the speed
ratios from the medians, checks them against the targets, replaces only the text between
``<!-- kernels:start -->`` and ``<!-- kernels:end -->`` in bench/RESULTS.md (other
sections, e.g. end-to-end producer benchmarks, are left alone) and draws
bench/kernels.png. Exit status 0 when every target is met, 1 otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
PLOT = BENCH / "kernels.png"
JSON_OUT = BENCH / "kernels-latest.json"
START, END = "<!-- kernels:start -->", "<!-- kernels:end -->"

COMMAND = "python bench/report_kernels.py"
PYTEST_ARGS = [
    "bench/test_bench_kernels.py", "-q", "-p", "no:cacheprovider",
    "--benchmark-warmup=on", "--benchmark-min-rounds=20",
    "--benchmark-max-time=2.0",
]


@dataclass
class Row:
    group: str
    what: str
    baseline_name: str
    unit: str          # "ops/s", "GB/s" or "records/s"
    target: float | None
    note: str = ""


ROWS = [
    Row("crc32c-1MiB", "crc32c, 1 MiB buffer", "`crc32c` package (C)", "GB/s", 0.9),
    Row("crc32c-100B", "crc32c, 100-byte buffer", "`crc32c` package (C)", "ops/s", None,
        "call overhead dominates"),
    Row("murmur2-16B", "murmur2, 16-byte key", "kafka-python `murmur2` (pure Python)",
        "ops/s", 50.0),
    Row("batch-64KiB-none", "build 64 KiB batch, 100-byte values, no compression",
        "aiokafka C `DefaultRecordBatchBuilder`", "records/s", 2.0),
    Row("batch-64KiB-none-bulk", "build 64 KiB batch, 100-byte values, none, "
        "`append_many` (bulk, loop in C)",
        "aiokafka C `DefaultRecordBatchBuilder` (per-record loop: it has no bulk call)",
        "records/s", 2.0, "the path send_batch takes"),
    Row("batch-64KiB-lz4", "build 64 KiB batch, 100-byte values, lz4",
        "aiokafka C `DefaultRecordBatchBuilder`", "records/s", None,
        "default levels differ: fastprod = Java's (fast lz4), aiokafka = LZ4HC level 9"),
]


def run_benchmarks(extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "pytest", *PYTEST_ARGS, f"--benchmark-json={JSON_OUT}", *extra]
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, check=False)
    if proc.returncode != 0:
        sys.exit(f"benchmark run failed (exit {proc.returncode})")
    return json.loads(JSON_OUT.read_text())


def _rate(bench: dict, unit: str) -> float:
    ops = 1.0 / bench["stats"]["median"]
    if unit == "GB/s":
        return ops * bench["extra_info"]["bytes"] / 1e9
    if unit == "records/s":
        return ops * bench["extra_info"]["records"]
    return ops


def _fmt(x: float) -> str:
    if x < 100:
        return f"{x:.2f}"
    if x >= 1e6:
        return f"{x / 1e6:,.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:,.1f} k"
    return f"{x:,.1f}"


def summarize(data: dict) -> list[dict]:
    by_group: dict[str, dict[str, dict]] = {}
    for b in data["benchmarks"]:
        by_group.setdefault(b["group"], {})[b["extra_info"]["role"]] = b
    out = []
    for row in ROWS:
        pair = by_group.get(row.group, {})
        if "fastprod" not in pair or "baseline" not in pair:
            raise SystemExit(f"benchmark group {row.group} is incomplete: {sorted(pair)}")
        ours = _rate(pair["fastprod"], row.unit)
        theirs = _rate(pair["baseline"], row.unit)
        ratio = ours / theirs
        out.append(dict(
            group=row.group, what=row.what, baseline=row.baseline_name, unit=row.unit,
            fastprod=ours, other=theirs, ratio=ratio, target=row.target,
            passed=None if row.target is None else ratio >= row.target, note=row.note,
            fastprod_median_us=pair["fastprod"]["stats"]["median"] * 1e6,
            baseline_median_us=pair["baseline"]["stats"]["median"] * 1e6,
            records=pair["fastprod"]["extra_info"].get("records"),
        ))
    return out


def machine_note(data: dict) -> str:
    cpu = data.get("machine_info", {}).get("cpu", {}).get("brand_raw") or platform.processor()
    if not cpu:
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            cpu = "unknown CPU"
    from fastprod.kernels import crc32c_implementation

    return (f"{os.cpu_count()} cores, shared (numbers move by 10-20% between runs); {cpu}; "
            f"{platform.system()} {platform.machine()}; Python {platform.python_version()}; "
            f"crc32c implementation: {crc32c_implementation()}")


def plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["group"] for r in rows]
    ratios = [r["ratio"] for r in rows]
    colors = ["tab:gray" if r["passed"] is None else ("tab:green" if r["passed"] else "tab:red")
              for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    bars = ax.bar(labels, ratios, color=colors)
    ax.set_yscale("log")
    ax.set_ylabel("speed ratio, fastprod / baseline (log)")
    ax.set_title("fastprod kernels vs other Python clients' code")
    ax.axhline(1.0, color="black", linewidth=0.8)
    for bar, r in zip(bars, rows):
        ax.annotate(f"{r['ratio']:.2f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=9)
        if r["target"] is not None:
            x0, w = bar.get_x(), bar.get_width()
            ax.hlines(r["target"], x0 - 0.1 * w, x0 + 1.1 * w, colors="black",
                      linestyles="dashed", linewidth=1)
    ax.tick_params(axis="x", labelrotation=15, labelsize=8)
    ax.set_ylim(top=max(ratios + [r["target"] or 1 for r in rows]) * 2.5)
    fig.text(0.01, 0.01, "dashed line: target; green: met, red: missed, gray: no target",
             fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(PLOT)
    plt.close(fig)


def section(rows: list[dict], data: dict) -> str:
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        START,
        "## Kernels",
        "",
        "Micro-benchmarks of the Cython kernels against the code other Python Kafka clients",
        "run for the same job. Rates come from the median time of each benchmark.",
        "",
        f"- Command: `{COMMAND}` (runs `python -m pytest {' '.join(PYTEST_ARGS)} "
        f"--benchmark-json=bench/kernels-latest.json`)",
        f"- Date: {when}",
        f"- Machine: {machine_note(data)}",
        "- Batch rows: one 64 KiB batch per call, key None, 100-byte value, no headers, the",
        "  same Python loop `append(i, ts, None, value, [])` for both builders, then `build()`;",
        "  records/s = records per batch / median time per batch.",
        "",
        "| benchmark | baseline | fastprod | baseline rate | ratio | target | result |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        target = "—" if r["target"] is None else f">= {r['target']:g}x"
        result = "info" if r["passed"] is None else ("pass" if r["passed"] else "**FAIL**")
        what = r["what"] + (f" ({r['records']} records)" if r["records"] else "")
        if r["note"]:
            what += f"; {r['note']}"
        lines.append(
            f"| {what} | {r['baseline']} | {_fmt(r['fastprod'])} {r['unit']} | "
            f"{_fmt(r['other'])} {r['unit']} | {r['ratio']:.2f}x | {target} | {result} |")
    lines += [
        "",
        "Median time per call (µs): " + "; ".join(
            f"{r['group']} {r['fastprod_median_us']:.3g} vs {r['baseline_median_us']:.3g}"
            for r in rows) + ".",
        "",
        "![kernel speed ratios](kernels.png)",
        END,
    ]
    return "\n".join(lines)


def write_results(text: str) -> None:
    if RESULTS.exists():
        old = RESULTS.read_text()
    else:
        old = "# fastprod benchmark results\n\nEach section is written by its own script; "\
              "re-running one replaces only its section.\n\n"
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if pattern.search(old):
        new = pattern.sub(lambda _: text, old, count=1)
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    RESULTS.write_text(new)


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    data = run_benchmarks(argv)
    rows = summarize(data)
    plot(rows)
    write_results(section(rows, data))
    for r in rows:
        flag = "" if r["passed"] is None else ("  ok" if r["passed"] else "  MISSED TARGET")
        print(f"{r['group']:>18}: {r['ratio']:8.2f}x  "
              f"({_fmt(r['fastprod'])} vs {_fmt(r['other'])} {r['unit']}){flag}")
    print(f"wrote {RESULTS.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}")
    return 0 if all(r["passed"] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
