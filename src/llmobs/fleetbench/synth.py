"""The synthetic fleet: N simulated GPU servers (llmobs.sim's own hosts, GPUs, dcgm-exporter and vLLM
engines), driven on a synthetic clock and written as OpenMetrics the way Prometheus would have scraped them:
the target labels, Prometheus' own per-target series (`up`, `scrape_*`) and a timestamp on every sample.

Host series are a real node_exporter's page (the Debian package the kit's stand-in image runs, captured once
on this machine) with counters that grow and gauges that hold, since no simulator of node_exporter exists;
only the series the node job's keep-list stores (`relabeled`, llmobs.node_keep), as a scrape would.
"""

from __future__ import annotations

import hashlib
import math
import re
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmobs import catalog as catalog_mod
from llmobs import exposition, node_keep
from llmobs.conventions import PORTS
from llmobs.settings import Settings
from llmobs.sim.dcgm import ExporterOptions
from llmobs.sim.host import HostConfig, HostSim, engine_registry
from llmobs.sim.vllm import EngineConfig

GPU_MIX = ("H100-SXM", "A100-SXM", "L40S", "H100-PCIE", "A100-SXM-40GB")  # host i gets GPU_MIX[i % 5]
DAY_S = 86400.0            # the engines' load swings over a day
IDLE_EVERY = 7             # every 7th engine gets no traffic
# Hosts 0-14 are simulated; every later host replays the series of simulated host 5 + index % 10 (fault-free,
# same GPU model and models: both follow index % 5) under its own name and GPU UUIDs (Replay).
SIMULATED = 15
NODE_EXPORTER_GLOB = "tools/node_exporter-*/node_exporter"  # unpacked by `llmobs setup` (llmobs.tools)
# Prometheus' own series of every target (scrape.go: up, scrape_duration_seconds, ...).
SCRAPE_SERIES = ("up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
                 "scrape_series_added")


def fleet_settings(hosts: int, gpus_per_host: int = 8, engines_per_host: int = 2, models: int = 10) -> dict[str, Any]:
    """Settings of a synthetic fleet: `hosts` GPU servers, each with engines over its GPUs, and per-model
    SLO targets for every model."""
    per_engine = gpus_per_host // engines_per_host
    endpoints = {
        host_name(h): [
            {"model": f"model-{(h * engines_per_host + e) % models}", "port": 8000 + e,
             "gpus": list(range(e * per_engine, (e + 1) * per_engine))}
            for e in range(engines_per_host)
        ]
        for h in range(hosts)
    }
    return {
        "vllm_endpoints": endpoints,
        "slo": {"models": {f"model-{m}": {"ttft_seconds": 2.5, "ttft_objective": 0.95} for m in range(models)}},
    }


def host_name(index: int) -> str:
    return f"gpu-node-{index:03d}"


@dataclass(frozen=True)
class Intervals:
    """Scrape intervals (s) of the kit's jobs and the rules' evaluation interval, from its prometheus.yml."""

    dcgm: float
    vllm: float
    node: float
    evaluation: float

    @classmethod
    def of(cls, config: dict[str, Any]) -> Intervals:
        default = _seconds(config["global"]["scrape_interval"])
        jobs = {job["job_name"]: _seconds(job.get("scrape_interval", f"{default}s"))
                for job in config["scrape_configs"]}
        return cls(jobs["dcgm"], jobs["vllm"], jobs["node"], _seconds(config["global"]["evaluation_interval"]))


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for suffix in ("ms", "s", "m", "h"):
        if duration.endswith(suffix):
            return float(duration[: -len(suffix)]) * units[suffix]
    raise ValueError(f"unsupported duration {duration!r}")


@dataclass(frozen=True)
class Fault:
    """A fault placed in the data on host `host`: from `at`, a fraction of the data's past when the build starts,
    on (fault_time)."""

    host: int
    request: dict[str, Any]
    at: float
    alert: str  # the alert it must fire


# A quarter into the data's past: long enough before the live measurement for the lost GPU's series to go stale.
FAULTS = (Fault(0, {"fault": "fall-off-bus", "gpu": 7}, 0.25, "GpuMissing"),
          Fault(1, {"fault": "thermal-throttle", "gpu": 2}, 0.25, "GpuThermalThrottling"))


def fault_time(fault: Fault, start: float, end: float, built_at: float) -> float:
    """When `fault` happens: `at` into the data before the build's start (data past it is in the future when the
    run measures), and at least a minute in, after healthy samples (GpuMissing looks for a GPU seen before)."""
    return start + max(60.0, fault.at * (min(end, built_at) - start))


def capture_node_exporter(cache: Path) -> str:
    """One page of the real node_exporter (run on a loopback port for a moment)."""
    binary = next(iter(sorted(cache.glob(NODE_EXPORTER_GLOB))), None)
    if binary is None:
        raise FileNotFoundError(f"no node_exporter under {cache}: run `llmobs setup`")
    process = subprocess.Popen([str(binary), "--web.listen-address=127.0.0.1:19101"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            try:
                with urllib.request.urlopen("http://127.0.0.1:19101/metrics", timeout=5) as answer:
                    return answer.read().decode()
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("node_exporter did not answer on 127.0.0.1:19101")
    finally:
        process.terminate()
        process.wait()


_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def relabeled(page: str, relabel_configs: list[dict[str, Any]]) -> str:
    """The page as the node job stores it: the samples its metric_relabel_configs keep (llmobs.node_keep)."""
    kept = []
    for line in page.splitlines(keepends=True):
        if line.strip() and line[0] != "#":
            name, _, labels = line.rpartition(" ")[0].partition("{")
            if not node_keep.keeps(relabel_configs, {**dict(_LABEL.findall(labels)), "__name__": name}):
                continue
        kept.append(line)
    return "".join(kept)


class NodePage:
    """A host's node_exporter series: the captured page, counters growing at a steady per-series rate."""

    def __init__(self, page: str, labels: str):
        counters = {line.split()[2] for line in page.splitlines() if line.startswith("# TYPE") and
                    line.split()[3] == "counter"}
        self.series: list[tuple[str, float, float]] = []
        for line in page.splitlines():
            if not line or line[0] == "#":
                continue
            head, _, value = line.rpartition(" ")
            name = head.partition("{")[0]
            digest = int.from_bytes(hashlib.blake2b(head.encode(), digest_size=4).digest(), "big")
            rate = (digest % 1000) / 100 if name in counters else 0.0
            self.series.append((_with_labels(head, labels), float(value), rate))

    def lines(self, elapsed: float, stamp: str) -> Iterator[str]:
        for head, value, rate in self.series:
            yield f"{head} {value + rate * elapsed:.10g} {stamp}\n"


def _with_labels(head: str, labels: str) -> str:
    return f"{head[:-1]},{labels}}}" if head.endswith("}") else f"{head}{{{labels}}}"


def _stamped(text: str, labels: str, stamp: str) -> list[str]:
    out = []
    for line in text.splitlines():
        if line and line[0] != "#":
            head, _, value = line.rpartition(" ")
            out.append(f"{_with_labels(head, labels)} {value} {stamp}\n")
    return out


class RegistryPage:
    """A vLLM server's /metrics (llmobs.sim.host.engine_registry) as stamped lines. The families and samples
    are the registry's own; only the text is built here, with each series' name and labels rendered once
    (prometheus_client's generate_latest escapes every label of every sample on every call, 5x slower)."""

    def __init__(self, registry: Any, labels: str):
        self.registry, self.labels = registry, labels
        self.heads: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def lines(self, stamp: str) -> list[str]:
        out = []
        for family in self.registry.collect():
            for sample in family.samples:
                key = (sample.name, tuple(sample.labels.items()))
                head = self.heads.get(key)
                if head is None:
                    pairs = [f'{k}="{_escape(v)}"' for k, v in key[1]]
                    head = self.heads[key] = f"{sample.name}{{{','.join([*pairs, self.labels])}}}"
                out.append(f"{head} {_go_float(sample.value)} {stamp}\n")
        return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _go_float(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    return repr(float(value))


def _scrape_series(labels: str, samples: int, stamp: str) -> list[str]:
    values = (1, 0.004, samples, samples, 0)
    return [f"{name}{{{labels}}} {value} {stamp}\n" for name, value in zip(SCRAPE_SERIES, values, strict=True)]


def _labels(settings: Settings, job: str, instance: str, host: str) -> str:
    pairs = exposition.target_labels(job, instance, settings.labels.host, host)
    return ",".join(f'{key}="{value}"' for key, value in pairs.items())


def replayed_from(index: int) -> int | None:
    """The simulated host whose series host `index` replays; None for a simulated host."""
    return None if index < SIMULATED else 5 + index % 10


class Replay:
    """Hosts beyond the simulated ones: each writes the series the simulators wrote for the host it replays
    (replayed_from), with its own name and GPU UUIDs substituted in the text, so the fleet's size costs the
    backfill, not the simulators. The simulated hosts that are replayed keep their text in `shapes`."""

    PIECE = 1 << 26  # characters read at a time

    def __init__(self, shapes: Path, hosts: int):
        self.shapes, self.hosts = shapes, hosts
        self.samples: dict[int, int] = {}

    def simulate(self, host: SimulatedHost, out: Callable[[str], Any], *args: Any) -> int:
        """host.write(out, *args), keeping its text when a later host replays it."""
        if not any(replayed_from(i) == host.index for i in range(SIMULATED, self.hosts)):
            return host.write(out, *args)
        self.shapes.mkdir(parents=True, exist_ok=True)
        with (self.shapes / f"{host.name}.om").open("w", encoding="utf-8", buffering=1 << 22) as shape:
            def both(text: str) -> None:
                out(text)
                shape.write(text)
            self.samples[host.index] = host.write(both, *args)
        return self.samples[host.index]

    def write(self, index: int, out: Callable[[str], Any], gpus: int) -> int:
        """Host `index`'s series (replayed); the number of samples written."""
        source, target = host_name(replayed_from(index)), host_name(index)
        names = [(source, target)] + [(exposition.gpu_uuid(source, g), exposition.gpu_uuid(target, g))
                                      for g in range(gpus)]
        with (self.shapes / f"{source}.om").open(encoding="utf-8") as shape:
            rest = ""
            while piece := shape.read(self.PIECE):
                text, newline, rest = (rest + piece).rpartition("\n")
                for old, new in names:
                    text = text.replace(old, new)
                out(text + newline)
        return self.samples[replayed_from(index)]


class SimulatedHost:
    """One host of the fleet on the synthetic clock: llmobs.sim.host.HostSim, never started (no listeners)."""

    def __init__(self, index: int, settings: Settings, counters: Path, node_page: str, catalog: catalog_mod.Catalog):
        self.index, self.name = index, host_name(index)
        endpoints = [e for e in settings.vllm_endpoints if e.host == self.name]
        engines = tuple(
            EngineConfig(model=e.model, port=e.port, gpus=tuple(e.gpus), period_s=DAY_S,
                         rps=0.0 if (index * len(endpoints) + i) % IDLE_EVERY == 0 else 2.0 + index % 3)
            for i, e in enumerate(endpoints))
        gpus = 1 + max(g for e in endpoints for g in e.gpus)
        options = ExporterOptions(collectors=counters, hostname=self.name)
        self.sim = HostSim(HostConfig(self.name, GPU_MIX[index % len(GPU_MIX)], gpus, engines, options), catalog)
        jobs = settings.jobs
        self.dcgm_labels = _labels(settings, jobs.dcgm, f"{self.name}:{PORTS['dcgm']}", self.name)
        self.pages = [RegistryPage(engine_registry(engine), _labels(settings, jobs.vllm, f"{self.name}:{e.port}",
                                                                    self.name))
                      for engine, e in zip(self.sim.engines, endpoints, strict=True)]
        self.node_labels = _labels(settings, jobs.node, f"{self.name}:{PORTS['node']}", self.name)
        self.node = NodePage(node_page, self.node_labels)

    def write(self, out: Callable[[str], Any], start: float, end: float, every: Intervals,
              faults: tuple[Fault, ...] = (), built_at: float = math.inf) -> int:
        """Simulate [start, end) and write every scrape of its targets; the number of samples written."""
        sim, written = self.sim, 0
        for engine in sim.engines:
            engine.started = start
        pending = sorted((fault_time(f, start, end, built_at), f) for f in faults if f.host == self.index)
        step = math.gcd(int(every.dcgm), int(every.vllm), int(every.node))
        collect_s = sim.config.exporter.collect_interval_ms / 1000
        last_collect = -math.inf
        t = start
        while t < end:
            while pending and pending[0][0] <= t:
                sim.inject(pending.pop(0)[1].request)
            stamp = f"{t:.3f}"
            if (t - start) % every.vllm == 0:
                for engine, page in zip(sim.engines, self.pages, strict=True):
                    engine.tick(t, every.vllm, sim.faults.on_engine(engine.config.model))
                    written += self._emit(out, page.lines(stamp), page.labels, stamp)
            if t - last_collect >= collect_s:
                for gpu in sim.gpus:
                    gpu.step(t, min(t - last_collect, collect_s), sim._load(gpu.index), sim.faults.on_gpu(gpu.index))
                sim.exporter.collect(t)
                last_collect = t
            if (t - start) % every.dcgm == 0:
                written += self._emit(out, _stamped(sim.exporter.render(), self.dcgm_labels, stamp),
                                      self.dcgm_labels, stamp)
            if (t - start) % every.node == 0:
                written += self._emit(out, list(self.node.lines(t - start, stamp)), self.node_labels, stamp)
            t += step
        return written

    @staticmethod
    def _emit(out: Callable[[str], Any], lines: list[str], labels: str, stamp: str) -> int:
        out("".join(lines))
        out("".join(_scrape_series(labels, len(lines), stamp)))
        return len(lines) + len(SCRAPE_SERIES)
