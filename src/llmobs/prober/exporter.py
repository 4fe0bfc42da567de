"""The prober's loop and its metrics: every `interval` it probes each target (one thread per target, so a
stalled endpoint delays no other) and updates the series of llmobs.conventions PROBE_*, which a
prometheus_client HTTP server serves on /metrics. Each failure is logged once per change, naming the
endpoint and the reason, never the key."""

from __future__ import annotations

import logging
import threading
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from llmobs import conventions
from llmobs.catalog import Catalog
from llmobs.prober.probe import ProbeResult, Target, probe, targets
from llmobs.settings import Settings
from llmobs.types import duration_seconds

log = logging.getLogger("llmobs.prober")
LABELS = ("endpoint", "model_name", "inference_engine")


class ProbeMetrics:
    """The prober's series in their own registry, labelled {<host>, endpoint, model_name, inference_engine}."""

    def __init__(self, catalog: Catalog, host_label: str, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        labels = (host_label, *LABELS)
        metric = {m.name: m for m in catalog.metrics}
        buckets = catalog.bucket_families

        def gauge(name: str) -> Gauge:
            return Gauge(name, metric[name].help, labels, registry=self.registry)

        def histogram(name: str) -> Histogram:
            return Histogram(name, metric[name].help, labels, registry=self.registry,
                             buckets=buckets[metric[name].buckets or ""])

        self.success = gauge(conventions.PROBE_SUCCESS)
        self.status = gauge(conventions.PROBE_HTTP_STATUS)
        self.duration = gauge(conventions.PROBE_DURATION)
        self.tokens = gauge(conventions.PROBE_TOKENS)
        self.well_formed = gauge(conventions.PROBE_WELL_FORMED)
        self.ttft = histogram(conventions.PROBE_TTFT)
        self.inter_chunk = histogram(conventions.PROBE_INTER_CHUNK)
        name = conventions.PROBES.removesuffix("_total")
        self.probes = Counter(name, metric[conventions.PROBES].help, (*labels, "result"), registry=self.registry)

    def start(self, target: Target) -> None:
        """Series from the first scrape: every result at 0, success 0 until the first probe answers."""
        values = self._labels(target)
        for result in conventions.PROBE_RESULTS:
            self.probes.labels(*values, result)
        self.success.labels(*values).set(0)

    def record(self, target: Target, result: ProbeResult) -> None:
        values = self._labels(target)
        self.probes.labels(*values, result.result).inc()
        self.success.labels(*values).set(result.success)
        self.status.labels(*values).set(result.status)
        self.duration.labels(*values).set(result.duration)
        self.tokens.labels(*values).set(result.tokens)
        self.well_formed.labels(*values).set(result.well_formed)
        if result.ttft is not None:
            self.ttft.labels(*values).observe(result.ttft)
        for gap in result.gaps:
            self.inter_chunk.labels(*values).observe(gap)

    @staticmethod
    def _labels(target: Target) -> tuple[str, ...]:
        e = target.endpoint
        return e.host, e.instance, e.model, e.engine


class Prober:
    """Probes every target of the settings every `prober.interval`, until stopped."""

    def __init__(self, settings: Settings, catalog: Catalog, registry: CollectorRegistry | None = None):
        self.settings = settings.prober
        self.targets = targets(settings.all_endpoints, settings.prober)
        self.metrics = ProbeMetrics(catalog, settings.labels.host, registry)
        self.interval = duration_seconds(self.settings.interval)
        self.timeout = duration_seconds(self.settings.timeout)
        self._stop = threading.Event()
        self._last: dict[str, str] = {}
        for target in self.targets:
            self.metrics.start(target)

    def probe_once(self, target: Target) -> ProbeResult:
        result = probe(target, self.settings, self.timeout)
        self.metrics.record(target, result)
        if self._last.get(target.url + target.endpoint.model) != result.result:
            if result.success:
                log.info("probe of %s: ok (ttft %.3fs, %d tokens)", target.name, result.ttft or 0, result.tokens)
            else:
                log.warning("probe of %s failed: %s: %s", target.name, result.result, result.detail)
        self._last[target.url + target.endpoint.model] = result.result
        return result

    def _loop(self, target: Target, offset: float) -> None:
        # Targets start spread over the interval, so the endpoints are not probed in one burst.
        next_at = time.monotonic() + offset
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            self.probe_once(target)
            next_at += self.interval
            next_at = max(next_at, time.monotonic())

    def start(self) -> None:
        for index, target in enumerate(self.targets):
            offset = self.interval * index / max(1, len(self.targets))
            threading.Thread(target=self._loop, args=(target, offset), name=f"probe {target.name}",
                             daemon=True).start()

    def stop(self) -> None:
        self._stop.set()


def serve(settings: Settings, catalog: Catalog, address: str, port: int) -> Prober:
    """Start the loop and the /metrics server; returns the running prober."""
    prober = Prober(settings, catalog)
    start_http_server(port, address, registry=prober.metrics.registry)
    log.info("endpoint prober on %s:%d: %d endpoint(s) every %s", address or "*", port, len(prober.targets),
             settings.prober.interval)
    prober.start()
    return prober
