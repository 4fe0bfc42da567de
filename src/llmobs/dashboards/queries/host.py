"""The servers themselves, from node_exporter, and whether their exporters answer."""

from __future__ import annotations

from llmobs.dashboards.queries import RATE
from llmobs.promql import MatcherLike, Promql, aggregate, eq, one_of


def exporters_up(scope: Promql, jobs: tuple[str, ...]) -> str:
    """1 per exporter target of these jobs that Prometheus could scrape, 0 per one it could not."""
    return scope.sel("up", one_of("job", jobs))


def cpu_busy(scope: Promql, host: str) -> str:
    """Share of CPU time not idle, per host."""
    return f"1 - {aggregate('avg', scope.rate('node_cpu_seconds_total', RATE, eq('mode', 'idle')), (host,))}"


def memory_available(scope: Promql) -> str:
    return f"{scope.sel('node_memory_MemAvailable_bytes')} / {scope.sel('node_memory_MemTotal_bytes')}"


def filesystem_free(scope: Promql, filesystems: MatcherLike) -> str:
    """Free share of each watched filesystem (`filesystems`: the disk alerts' matchers)."""
    return (f"{scope.sel('node_filesystem_avail_bytes', filesystems)}"
            f" / {scope.sel('node_filesystem_size_bytes', filesystems)}")
