"""The fleet benchmark's output: a table per run, one summary line per N, and the growth curve."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

DEFAULT_RANGES = {"llmobs-slo": 86400.0}  # every other dashboard opens on 3 h


def _default(panel: dict[str, Any]) -> bool:
    return panel["range_s"] == DEFAULT_RANGES.get(panel["dashboard"], 10800.0)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] if ordered else float("nan")


def figures(result: dict[str, Any]) -> dict[str, Any]:
    """The summary's figures: panels at their default range, speed-up over the official queries, the worst
    rule group against its interval, series per host (node, dcgm, vllm jobs) and RSS."""
    panels = [p for p in result["panels"] if _default(p) and not p["error"]]
    worst = max(panels, key=lambda p: p["p95_ms"])
    ratios = [q["official_ms"] / q["ours_ms"] for q in result["official"] if q["ours_ms"] and not q["error"]]
    group = max(result["groups"], key=lambda g: g["seconds"] / g["interval"] if g["interval"] else 0)
    per_host = sum(v for job, v in result["series_per_host"].items() if job != "recorded")
    return {"panels_p95_ms": _p95([p["p95_ms"] for p in panels]), "worst_panel": f"{worst['dashboard']}/"
            f"{worst['panel']}", "worst_ms": worst["p95_ms"], "speedup": statistics.median(ratios) if ratios else 0,
            "group": group["group"], "group_pct": 100 * group["seconds"] / group["interval"],
            "series_per_host": per_host, "rss_gib": result["rss_bytes"] / 2**30,
            "rule_group_seconds": rule_group_seconds(result)}


def rule_group_seconds(result: dict[str, Any]) -> float:
    """Every group's last evaluation duration over its interval, summed: seconds of evaluation per second, wall
    time (a group waiting for a core counts; the process' CPU is `rule_cpu_cores`)."""
    return sum(g["seconds"] / g["interval"] for g in result["groups"] if g["interval"])


def summary_line(result: dict[str, Any]) -> str:
    f = figures(result)
    return (f"fleet N={result['hosts']} gpus={result['gpus']} engines={result['engines']}: panels p95 "
            f"{f['panels_p95_ms']:.0f} ms (worst {f['worst_panel']} {f['worst_ms']:.0f} ms); official/ours "
            f"{f['speedup']:.1f}x (median over questions); rule eval worst {f['group']} {f['group_pct']:.1f}% of "
            f"interval; series/host {f['series_per_host']:.0f}; rss {f['rss_gib']:.2f} GiB")


def print_tables(result: dict[str, Any], console: Console) -> None:
    build = result["build"]
    console.print(f"[bold]fleet N={result['hosts']}[/] ({result['gpus']} GPUs, {result['engines']} engines, "
                  f"{result['hours']:g} h): {build['samples'] / 1e6:.1f} M samples, built in {build['total_s']:.0f} s "
                  f"(generate {build['generate_s']:.0f} s, promtool {build['backfill_s']:.0f} s = "
                  f"{build['backfill_samples_per_s'] / 1e3:.0f} k samples/s), rules backfilled in "
                  f"{build['rules_backfill_s']:.0f} s")
    boards = Table("dashboard", "range", "queries", "p50 median ms", "p95 max ms", "worst panel", title="panels")
    for board in sorted({p["dashboard"] for p in result["panels"]}):
        for span in sorted({p["range_s"] for p in result["panels"] if p["dashboard"] == board}):
            rows = [p for p in result["panels"] if p["dashboard"] == board and p["range_s"] == span]
            worst = max(rows, key=lambda p: p["p95_ms"])
            boards.add_row(board, f"{span / 3600:g} h", str(len(rows)),
                           f"{statistics.median(p['p50_ms'] for p in rows):.1f}", f"{worst['p95_ms']:.1f}",
                           worst["panel"])
    console.print(boards)
    official = Table("question (3 h)", "official ms", "ours ms", "official/ours", title="official dashboards vs ours")
    for q in result["official"]:
        ratio = q["official_ms"] / q["ours_ms"] if q["ours_ms"] else float("nan")
        official.add_row(q["question"], f"{q['official_ms']:.1f}", f"{q['ours_ms']:.1f}", f"{ratio:.1f}x")
    console.print(official)
    groups = Table("rule group", "last duration ms", "interval s", "% of interval", title="rule groups (live)")
    for g in sorted(result["groups"], key=lambda g: -g["seconds"]):
        groups.add_row(g["group"], f"{g['seconds'] * 1000:.1f}", f"{g['interval']:g}",
                       f"{100 * g['seconds'] / g['interval']:.2f}")
    console.print(groups)
    console.print(f"rule evaluation in all: the groups' durations over their intervals "
                  f"{rule_group_seconds(result):.3f} s per s, the Prometheus process' CPU while only they ran "
                  f"{result['rule_cpu_cores']:.3f} cores")
    per_job = ", ".join(f"{job} {n:.0f}" for job, n in sorted(result["series_per_host"].items()))
    console.print(f"series per host by job: {per_job}; head series {result['head_series']} (active "
                  f"{result['active_series']}); "
                  f"RSS {result['rss_bytes'] / 2**30:.2f} GiB; disk {result['disk_per_host_day'] / 2**20:.1f} MiB "
                  f"per host per day; placed faults: " +
                  ", ".join(f"{fault} {state}" for fault, state in result["alerts"].items()))


def plot_growth(curves: dict[str, list[Path]], png: Path) -> None:
    """The summary figures against N, one panel each, a line per curve (e.g. a version of the rules), log scales
    (matplotlib, Agg backend)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = (("panels p95 (ms)", "panels_p95_ms"), ("worst panel p95 (ms)", "worst_ms"),
             ("worst rule group (% of interval)", "group_pct"),
             ("rule groups' durations summed (s per s)", "rule_group_seconds"), ("Prometheus RSS (GiB)", "rss_gib"))
    goals = {"panels_p95_ms": 200, "worst_ms": 200, "group_pct": 20}  # issue 12's, at the default range
    fig, axes = plt.subplots(1, len(shown), figsize=(3.6 * len(shown), 3.4))
    for label, results in curves.items():
        runs = sorted((json.loads(path.read_text(encoding="utf-8")) for path in results), key=lambda r: r["hosts"])
        series = [figures(r) for r in runs]
        for axis, (_, key) in zip(axes, shown, strict=True):
            axis.plot([r["hosts"] for r in runs], [s[key] for s in series], marker="o", label=label)
    for axis, (title, key) in zip(axes, shown, strict=True):
        if key in goals:
            axis.axhline(goals[key], linestyle="--", color="grey", linewidth=0.8, label="goal")
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("hosts (8 GPUs each)")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.grid(alpha=0.3, which="both")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    fig.savefig(png, dpi=110)
