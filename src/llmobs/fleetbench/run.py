"""One run of the fleet benchmark: build the TSDB, backfill the recording rules, then measure with a live
Prometheus evaluating every rule group over the loaded data."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmobs import catalog as catalog_mod
from llmobs.dashboards import dashboard_artifacts
from llmobs.fleetbench import queries, synth
from llmobs.fleetbench.tsdb import Backfill, Prometheus, backfill_rules, disk_bytes, move_blocks
from llmobs.node_keep import metric_relabel_configs
from llmobs.rules import rule_file_artifacts
from llmobs.settings import load_settings
from llmobs.workspace import Workspace

PROMETHEUS_GLOB = "tools/prometheus-3.5*/prometheus"  # unpacked by `llmobs setup` (llmobs.tools)
PROMTOOL = "tools/bin/promtool"
AHEAD_S = 1800   # data runs up to this far past the build's start (at most half the span), so the live rules
                 # and alerts see fresh samples while the run measures


@dataclass(frozen=True)
class Options:
    hosts: int
    hours: float = 3.0
    engines_per_host: int = 2
    repeat: int = 5
    hosts_per_chunk: int = 5
    backfills: int = 2    # promtool backfills running at once (each a core at most)
    live_intervals: int = 6
    reuse: bool = False   # measure the TSDB a previous run of the same N and H built (its data must still be fresh)
    ahead_s: float | None = None  # data's end past the build's start; None: AHEAD_S, at most half the span. A run
                                  # that builds for longer than that needs more, or it measures stale data
    workdir: Path = Path(".cache/bench-fleet")


@dataclass
class Result:
    hosts: int
    gpus: int
    engines: int
    hours: float
    build: dict[str, float] = field(default_factory=dict)
    panels: list[dict[str, Any]] = field(default_factory=list)
    official: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    series_per_host: dict[str, float] = field(default_factory=dict)
    head_series: int = 0     # the head block: only the live rules' output, the data being in blocks
    active_series: int = 0   # series with a sample in the last 5 minutes, as a scraping Prometheus would hold
    rss_bytes: int = 0
    rule_cpu_cores: float = 0.0  # the live Prometheus' CPU while only its rules ran
    disk_per_host_day: float = 0.0
    alerts: dict[str, str] = field(default_factory=dict)  # placed fault -> its alert's state (firing, pending)


def run_dir(options: Options) -> Path:
    return Workspace.find().root / options.workdir / f"n{options.hosts}-h{options.hours:g}"


def _tools(workspace: Workspace) -> tuple[Path, Path]:
    cache = workspace.root / ".cache"
    prometheus = next(iter(sorted(cache.glob(PROMETHEUS_GLOB))), None)
    if prometheus is None or not (cache / PROMTOOL).exists():
        raise FileNotFoundError(f"Prometheus 3.5 or promtool missing under {cache}: run `llmobs setup`")
    return prometheus, cache / PROMTOOL


def build(options: Options, log: Callable[[str], None]) -> Result:
    """Everything of one run; the figures as a Result (also written as JSON into the workdir)."""
    workspace = Workspace.find()
    prometheus_bin, promtool = _tools(workspace)
    settings = load_settings(synth.fleet_settings(options.hosts, engines_per_host=options.engines_per_host))
    work = run_dir(options)
    data, rules_dir = work / "data", work / "rules"
    previous = work / "result.json"
    reusing = options.reuse and previous.exists()
    if not reusing:
        shutil.rmtree(work, ignore_errors=True)
    rules = []
    rules_dir.mkdir(parents=True, exist_ok=True)
    for path, text in rule_file_artifacts(settings).items():
        rules.append(rules_dir / Path(path).name)
        rules[-1].write_text(text, encoding="utf-8")
    every = synth.Intervals.of(yaml.safe_load((workspace.root / "prometheus/prometheus.yml").read_text()))
    end = time.time() + (min(AHEAD_S, options.hours * 1800) if options.ahead_s is None else options.ahead_s)
    start = end - options.hours * 3600
    result = Result(options.hosts, sum(len(e.gpus) for e in settings.vllm_endpoints), len(settings.vllm_endpoints),
                    options.hours)
    if reusing:
        result.build = json.loads(previous.read_text(encoding="utf-8"))["build"]
        metas = [json.loads(meta.read_text()) for meta in data.glob("*/meta.json")]
        start, end = min(m["minTime"] for m in metas) / 1000, max(m["maxTime"] for m in metas) / 1000
        log(f"reusing the TSDB of {work} (built {result.build['total_s']:.0f} s)")
    else:
        data.mkdir(parents=True)
        _load_data(options, settings, workspace, promtool, data, start, end, every, result, log)
        _backfill_rules(prometheus_bin, promtool, rules, work, start, end, every, result, log)
    dashboards = {Path(p).stem: json.loads(t) for p, t in dashboard_artifacts(settings).items()
                  if p.startswith("grafana/dashboards/")}
    with Prometheus(prometheus_bin, work, data, every.evaluation, rules) as live:
        result.build["compaction_wait_s"] = live.wait_compacted()
        log(f"overlapping blocks compacted in {result.build['compaction_wait_s']:.0f} s")
        _measure(live, options, dashboards, start, end, every, result, log)
    result.disk_per_host_day = disk_bytes(data) / options.hosts / (options.hours / 24)
    (work / "result.json").write_text(json.dumps(asdict(result), indent=1), encoding="utf-8")
    return result


def _backfill_rules(prometheus_bin: Path, promtool: Path, rules: list[Path], work: Path, start: float, end: float,
                    every: synth.Intervals, result: Result, log: Callable[[str], None]) -> None:
    """Over the whole span of the data (past the build's start too), so the recorded series cover what the
    panels and the official queries read."""
    began = time.perf_counter()
    passes = rules_by_depth(rules, work)
    for done, passing in enumerate(passes):
        with Prometheus(prometheus_bin, work, work / "data", every.evaluation, None) as source:
            backfill_rules(source, promtool, [passing], start, end, work / f"rules-{done}", every.evaluation)
        move_blocks(work / f"rules-{done}", work / "data")
    result.build["rules_backfill_s"] = time.perf_counter() - began
    log(f"recording rules backfilled ({len(passes)} passes, by dependency depth) in "
        f"{result.build['rules_backfill_s']:.0f} s")


def rules_by_depth(rules: list[Path], out: Path) -> list[Path]:
    """The recording rules split by how many recorded series they stand on (1: raw series only), one file
    per depth. promtool's rule backfill queries the server, so a rule comes out empty unless what it reads is
    already loaded: depth k is backfilled once depths below it are in the TSDB."""
    files = [yaml.safe_load(path.read_text(encoding="utf-8")) for path in rules]
    groups = [g for f in files for g in f["groups"]]
    reads: dict[str, set[str]] = {}
    for rule in (r for g in groups for r in g["rules"] if "record" in r):
        reads.setdefault(rule["record"], set()).update(re.findall(r"[A-Za-z_:][\w:]*", rule["expr"]))
    depth: dict[str, int] = {}

    def depth_of(name: str) -> int:
        if name not in depth:
            depth[name] = 0  # a cycle cannot load anyway
            depth[name] = 1 + max((depth_of(n) for n in reads[name] if n in reads and n != name), default=0)
        return depth[name]
    paths = []
    for level in range(1, 1 + max(map(depth_of, reads), default=0)):
        chosen = [{**g, "rules": [r for r in g["rules"] if "record" in r and depth_of(r["record"]) == level]}
                  for g in groups]
        paths.append(out / f"depth-{level}.yml")
        paths[-1].write_text(yaml.safe_dump({"groups": [g for g in chosen if g["rules"]]}, sort_keys=False),
                             encoding="utf-8")
    return paths


def _load_data(options: Options, settings: Any, workspace: Workspace, promtool: Path, data: Path, start: float,
               end: float, every: synth.Intervals, result: Result, log: Callable[[str], None]) -> None:
    catalog, built_at = catalog_mod.load(), time.time()
    page = synth.capture_node_exporter(workspace.root / ".cache")
    node_page = synth.relabeled(page, metric_relabel_configs(settings))
    result.build.update(node_page_series=_samples(page), node_kept_series=_samples(node_page))
    log(f"node_exporter page: {_samples(page)} series, {_samples(node_page)} kept by the node job's keep-list")
    counters = workspace.root / "compose/dcgm-exporter/counters.csv"
    backfill = Backfill(promtool, data, log, parallel=options.backfills)
    replay = synth.Replay(data.parent / "shapes", options.hosts)
    gpus = 1 + max(g for endpoint in settings.vllm_endpoints for g in endpoint.gpus)
    began, generating = time.perf_counter(), 0.0
    for first in range(0, options.hosts, options.hosts_per_chunk):
        chunk = data.parent / f"chunk-{first:04d}.om"
        gen_start, samples = time.perf_counter(), 0
        with chunk.open("w", encoding="utf-8", buffering=1 << 22) as out:
            for index in range(first, min(options.hosts, first + options.hosts_per_chunk)):
                if synth.replayed_from(index) is not None:
                    samples += replay.write(index, out.write, gpus)
                    continue
                host = synth.SimulatedHost(index, settings, counters, node_page, catalog)
                samples += replay.simulate(host, out.write, start, end, every, synth.FAULTS, built_at)
            out.write("# EOF\n")
        generating += time.perf_counter() - gen_start
        backfill.submit(chunk, samples)
        log(f"  hosts {first}-{index}: {samples / 1e6:.1f} M samples generated; backfilling")
    backfill.wait()
    shutil.rmtree(data.parent / "shapes", ignore_errors=True)
    result.build.update(samples=backfill.samples, generate_s=generating, backfill_s=backfill.seconds,
                        total_s=time.perf_counter() - began,
                        backfill_samples_per_s=backfill.samples / max(backfill.seconds, 1e-9))
    log(f"data: {backfill.samples / 1e6:.1f} M samples; generated in {generating:.0f} s, promtool busy "
        f"{backfill.seconds:.0f} s ({result.build['backfill_samples_per_s'] / 1e3:.0f} k samples/s), "
        f"build {result.build['total_s']:.0f} s")


def _samples(page: str) -> int:
    return sum(1 for line in page.splitlines() if line and line[0] != "#")


def _measure(live: Prometheus, options: Options, dashboards: dict[str, Any], start: float, end: float,
             every: synth.Intervals, result: Result, log: Callable[[str], None]) -> None:
    """Rule groups and alerts live (the data must reach past now); queries over the data's whole span."""
    cpu_before, began = live.metric("process_cpu_seconds_total")[0][1], time.monotonic()
    time.sleep(every.evaluation * options.live_intervals)
    # Only the rules run while it waits: the CPU they take in all (the groups' durations are wall time, a group
    # waiting for a core included).
    result.rule_cpu_cores = (live.metric("process_cpu_seconds_total")[0][1] - cpu_before) / (time.monotonic() - began)
    worst: dict[str, tuple[float, float]] = {}
    for labels, value in live.metric("prometheus_rule_group_last_duration_seconds"):
        worst[labels["rule_group"]] = (value, 0.0)
    for labels, value in live.metric("prometheus_rule_group_interval_seconds"):
        if labels["rule_group"] in worst:
            worst[labels["rule_group"]] = (worst[labels["rule_group"]][0], value)
    result.groups = [{"group": g.rpartition(";")[2], "seconds": d, "interval": i} for g, (d, i) in worst.items()]
    alerts = live.api("api/v1/alerts")["alerts"]
    states = {(a["labels"]["alertname"], a["labels"].get("host")): a["state"] for a in alerts}
    result.alerts = {f"{f.alert} on {synth.host_name(f.host)}": states.get((f.alert, synth.host_name(f.host)),
                                                                           "inactive") for f in synth.FAULTS}
    for query in queries.panel_queries(dashboards, synth.host_name(2), ("24h",)):
        timing = queries.timed(live, query.expr, query.instant, query.range_s, start, end, options.repeat)
        result.panels.append({**asdict(query), **asdict(timing)})
    for question, raw, ours in queries.official_queries(3 * 3600):
        theirs = queries.timed(live, raw, False, 3 * 3600, start, end, options.repeat)
        mine = queries.timed(live, ours, False, 3 * 3600, start, end, options.repeat)
        result.official.append({"question": question, "official_ms": theirs.p50_ms, "ours_ms": mine.p50_ms,
                                "official_series": theirs.series, "ours_series": mine.series,
                                "error": theirs.error or mine.error})
    at = min(time.time(), end)  # the last 5 minutes of data, even if measuring outlasted it
    by_job = live.api("api/v1/query", {"query": f'count by (job) ({{{live_host_selector(result)}}})',
                                       "time": at})["result"]
    result.series_per_host = {r["metric"].get("job", "recorded"): float(r["value"][1]) for r in by_job}
    result.head_series = int(live.api("api/v1/status/tsdb")["headStats"]["numSeries"])
    active = live.api("api/v1/query", {"query": 'count({__name__=~".+"})', "time": at})["result"]
    result.active_series = int(float(active[0]["value"][1])) if active else 0
    result.rss_bytes = live.rss_bytes()
    log(f"measured {len(result.panels)} panel queries x {options.repeat}, {len(result.official)} questions")


def live_host_selector(result: Result) -> str:
    """Series of one healthy host (gpu-node-002), by job, over the last 5 minutes of data."""
    return f'host="{synth.host_name(min(2, result.hosts - 1))}"'
