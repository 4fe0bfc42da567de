"""The long-term store option: VictoriaMetrics single-node on one monitoring host, written to by every
Prometheus of the site (compose/services/victoria-metrics.yaml, docs/reliability.md).

`llmobs_store` in the inventory: the host that runs it, its port, retention and deduplication interval,
and the remote_write queue settings. Both Prometheus of an HA pair send the same series to it (no replica
label: the pair's external labels are identical), and VictoriaMetrics keeps one sample per series and
`dedup_interval`, so a stopped Prometheus leaves no gap and a running pair stores nothing twice. Mimir,
Thanos Receive or VictoriaMetrics cluster take `prometheus_remote_write` with the replica label instead.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, ValidationError

from llmobs.errors import ConfigError, from_validation_error
from llmobs.types import Address, Duration, Port, Strict, duration_seconds

STORE_SERVICE = "victoria-metrics"
STORE_PORT = 8428
STORE_VARIABLE = "llmobs_store"
WRITE_PATH = "/api/v1/write"
# remote_write's queue settings a site may tune (the retry backoffs decide how fast it catches up).
QueueValue = Annotated[str | int, Field(union_mode="left_to_right")]
QUEUE_KEYS = ("capacity", "max_shards", "min_shards", "max_samples_per_send", "batch_send_deadline",
              "min_backoff", "max_backoff", "retry_on_http_429", "sample_age_limit")


class StoreOptions(Strict):
    host: str = Field(min_length=1, description="the monitoring host that runs the store (inventory name)")
    address: Address | None = Field(None, description="where the other hosts reach it; unset: the host's address")
    port: Port = STORE_PORT
    scheme: str = Field("http", pattern=r"^https?$")
    retention: str = Field("12", pattern=r"^[1-9][0-9]*[hdwy]?$",
                           description="-retentionPeriod: months (12), or with a unit: 90d, 2y")
    dedup_interval: Duration | None = Field(None, description="unset: the shortest scrape interval")
    queue_config: dict[str, QueueValue] = Field(default_factory=dict)


def parse(store: Any) -> StoreOptions | None:
    """The validated `llmobs_store`, or None where the site runs no store."""
    if not store:
        return None
    try:
        options = StoreOptions.model_validate(store)
    except ValidationError as error:
        raise from_validation_error(error).renamed(STORE_VARIABLE) from None
    unknown = sorted(set(options.queue_config) - set(QUEUE_KEYS))
    if unknown:
        raise ConfigError(f"{STORE_VARIABLE}.queue_config.{unknown[0]}", "not a remote_write queue setting",
                          f"use one of {', '.join(QUEUE_KEYS)}")
    return options


def dedup_interval(store: StoreOptions, shortest_scrape: str) -> str:
    """-dedup.minScrapeInterval: longer than a scrape interval, it would drop the samples of a single Prometheus."""
    interval = store.dedup_interval or shortest_scrape
    if duration_seconds(interval) > duration_seconds(shortest_scrape):
        raise ConfigError(f"{STORE_VARIABLE}.dedup_interval",
                          f"{interval} is longer than the shortest scrape interval {shortest_scrape}",
                          f"set it to {shortest_scrape} or less (or leave it unset)")
    return interval


def remote_write(store: StoreOptions, me: str, hosts: dict[str, str]) -> dict[str, Any]:
    """The remote_write entry of the Prometheus on host `me` (hosts: monitoring host -> its address)."""
    if store.host not in hosts:
        raise ConfigError(f"{STORE_VARIABLE}.host", f"{store.host!r} is not a monitoring host",
                          f"use one of {sorted(hosts)}")
    address = STORE_SERVICE if store.host == me else store.address or hosts[store.host]
    port = STORE_PORT if store.host == me else store.port
    entry: dict[str, Any] = {"name": "llmobs-store", "url": f"{store.scheme}://{address}:{port}{WRITE_PATH}"}
    if store.queue_config:
        entry["queue_config"] = dict(store.queue_config)
    return entry


def compose_environment(store: StoreOptions, shortest_scrape: str) -> dict[str, str]:
    """The variables of compose/services/victoria-metrics.yaml on the store's host."""
    return {"LLMOBS_STORE_RETENTION": store.retention, "LLMOBS_STORE_DEDUP": dedup_interval(store, shortest_scrape),
            "LLMOBS_STORE_PORT": str(store.port)}
