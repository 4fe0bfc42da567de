"""Prometheus' configuration and its file-based service discovery, from a list of hosts.

Input: the hosts (name, address, the exporters each runs), the settings (job names, the host label,
and `vllm_endpoints`: every vLLM server with its model, port and GPUs) and the Prometheus options
(intervals, external labels, Alertmanagers, remote_write). Output: `prometheus.yml` and one
`targets/<job>.yml` per scrape job. Every target carries the host label, the join and routing key.

The same function renders the lab's committed files and, through the Ansible filter plugin, a fleet's:
adding a host only changes a targets file, which Prometheus re-reads without a reload. Paths in
prometheus.yml are relative to the file (rules/, targets/), so a staged copy of the directory can be
validated by promtool before it is put in place (llmobs.reload).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from llmobs import catalog as catalog_mod
from llmobs import conventions, otel, yamlfmt
from llmobs.conventions import ENGINES, EXPORTER_PORTS, JOB_ORDER, ExporterJob, Job
from llmobs.errors import ConfigError, ConfigErrors, from_validation_error
from llmobs.node_keep import NodeKeep, metric_relabel_configs
from llmobs.settings import Settings
from llmobs.types import Address, Duration, LabelName, Port, Strict, duration_seconds

# Jobs whose targets come from a host's `exporters` (ExporterJob, each on its EXPORTER_PORTS port unless the
# host says otherwise); engine targets (one job per engine) come from the settings' endpoints.


class Exporter(Strict):
    address: Address | None = Field(None, description="unset: the host's address")
    port: Port | None = Field(None, description="unset: the job's standard port")
    discovery: Literal["file", "dns"] = Field(
        "file", description="dns: found by name when its container runs (optional services of a lab)")


class Host(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:/-]+$")]
    address: Address | None = Field(None, description="unset: the name")
    exporters: dict[ExporterJob, Exporter] = Field(default_factory=dict)
    labels: dict[LabelName, str] = Field(default_factory=dict, description="extra target labels, e.g. rack")

    @model_validator(mode="before")
    @classmethod
    def _bare_exporters(cls, data: Any) -> Any:
        """`exporters: [node, dcgm]` or `{node: null}` mean the standard port on the host's address."""
        if isinstance(data, dict) and data.get("exporters") is not None:
            exporters = data["exporters"]
            if isinstance(exporters, list):
                exporters = dict.fromkeys(exporters)
            if isinstance(exporters, dict):
                data = {**data, "exporters": {job: spec or {} for job, spec in exporters.items()}}
        return data


class RemoteWrite(BaseModel):
    """A remote_write entry; keys other than `url` and `name` pass to Prometheus unchanged
    (basic_auth with password_file, authorization, tls_config, queue_config, write_relabel_configs)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    url: str = Field(pattern=r"^https?://\S+$")
    name: str | None = None

    @model_validator(mode="after")
    def _no_inline_secret(self) -> RemoteWrite:
        auth = (self.model_extra or {}).get("basic_auth") or {}
        if isinstance(auth, dict) and "password" in auth:
            raise ValueError("basic_auth.password would put a secret in prometheus.yml: use password_file")
        return self


class HttpClient(BaseModel):
    """Client settings of a scrape job or of the Alertmanagers, passed to Prometheus unchanged; secrets
    only by file."""

    model_config = ConfigDict(extra="allow", frozen=True)

    scheme: Literal["http", "https"] = "http"

    @model_validator(mode="after")
    def _no_inline_secret(self) -> HttpClient:
        extra = self.model_extra or {}
        if "password" in (extra.get("basic_auth") or {}) or "credentials" in (extra.get("authorization") or {}):
            raise ValueError("an inline password would put a secret in prometheus.yml: use password_file "
                             "or credentials_file")
        return self


def _compiles(regex: str) -> str:
    try:
        re.compile(regex)
    except re.error as error:
        raise ValueError(f"{regex!r} is not a regular expression ({error})") from None
    return regex


# A metric name, or a regex of names (`node_network_.*`), matched against the whole name.
MetricNameRegex = Annotated[str, Field(pattern=r"^[A-Za-z0-9_:.*+?|()\[\]\\-]+$"), AfterValidator(_compiles)]


class ScrapeOptions(Strict):
    scrape_interval: Duration = "15s"
    scrape_timeout: Duration = "10s"
    evaluation_interval: Duration = "10s"
    # The GPU and engine jobs are scraped faster: fast critical GPU alerts (docs/architecture.md).
    job_intervals: dict[Job, Duration] = Field(default_factory=lambda: {"dcgm": "10s", **dict.fromkeys(ENGINES, "10s")})
    external_labels: dict[LabelName, str] = Field(default_factory=dict)
    alertmanagers: tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+:[0-9]+$")], ...] = (
        conventions.instance(conventions.COMPOSE_SERVICES["alertmanager"], EXPORTER_PORTS["alertmanager"]),)
    remote_write: tuple[RemoteWrite, ...] = ()
    rule_files: tuple[str, ...] = ("rules/*.yml",)
    # How Prometheus talks to targets (and Alertmanagers) that serve TLS or basic auth: scheme,
    # basic_auth with password_file, tls_config, authorization with credentials_file.
    job_clients: dict[Job, HttpClient] = Field(default_factory=dict)
    alertmanager_client: HttpClient | None = None
    # The node job stores only the node_exporter series the kit's rules and dashboards read (llmobs.node_keep);
    # `all` keeps every series, for sites that run other node dashboards; node_keep_extra keeps more names.
    node_keep: NodeKeep = "read"
    node_keep_extra: tuple[MetricNameRegex, ...] = ()

    @model_validator(mode="after")
    def _timeout_fits(self) -> ScrapeOptions:
        seconds = duration_seconds
        shortest = min([seconds(self.scrape_interval), *map(seconds, self.job_intervals.values())])
        if seconds(self.scrape_timeout) > shortest:
            raise ValueError(f"scrape_timeout {self.scrape_timeout} is longer than the shortest scrape interval")
        return self


def _validated(model: type[BaseModel], data: Any, field: str) -> Any:
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as error:
        errors = from_validation_error(error).errors
        for item in errors:
            item.field = f"{field}.{item.field}" if item.field != "(top level)" else field
        raise ConfigErrors([ConfigError(e.field, e.problem, e.fix) for e in errors]) from None


def parse_hosts(hosts: Iterable[Any]) -> list[Host]:
    parsed = [_validated(Host, host, f"hosts[{index}]") for index, host in enumerate(hosts)]
    seen: dict[str, int] = {}
    for index, host in enumerate(parsed):
        if host.name in seen:
            raise ConfigError(f"hosts[{index}].name", f"{host.name!r} repeats hosts[{seen[host.name]}]",
                              "give every host a unique name")
        seen[host.name] = index
    return parsed


def parse_options(options: Any) -> ScrapeOptions:
    return _validated(ScrapeOptions, options or {}, "prometheus")


def _targets(hosts: list[Host], settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """file_sd entries per job: one entry per target, labelled with its host."""
    host_label = settings.labels.host
    by_job: dict[str, list[dict[str, Any]]] = {job: [] for job in JOB_ORDER}
    owners: dict[str, str] = {}

    def add(job: str, target: str, host: str, labels: dict[str, str], field: str) -> None:
        if target in owners:
            raise ConfigError(field, f"target {target} is also {owners[target]}",
                              "give each exporter and engine its own address:port")
        owners[target] = f"{job} of {host}"
        by_job[job].append({"targets": [target], "labels": {host_label: host, **labels}})

    for index, host in enumerate(hosts):
        for job, exporter in host.exporters.items():
            if exporter.discovery == "file":
                target = f"{exporter.address or host.address or host.name}:{exporter.port or EXPORTER_PORTS[job]}"
                add(job, target, host.name, host.labels, f"hosts[{index}].exporters.{job}")
    extra = {host.name: host.labels for host in hosts}
    addresses = {host.name: host.address for host in hosts if host.address}
    engines = catalog_mod.load().engines
    for field, endpoint in settings.endpoint_fields():
        if endpoint.host in addresses and (endpoint.address or endpoint.host) != addresses[endpoint.host]:
            # The engine's instance label is also what llmobs:engine_gpu:info joins on: keep them one.
            raise ConfigError(f"{field}.address",
                              f"{endpoint.host} is scraped at {addresses[endpoint.host]} but this endpoint at "
                              f"{endpoint.address or endpoint.host}", f"set address: {addresses[endpoint.host]}")
        labels = dict(extra.get(endpoint.host, {}))
        if engines[endpoint.engine].model_label is None:
            # The engine's series do not name their model (TensorRT-LLM 1.2.1 says "undefined", which Prometheus
            # keeps as exported_model_name): the inventory's model becomes the target's model_name.
            labels["model_name"] = endpoint.model
        add(endpoint.engine, endpoint.instance, endpoint.host, labels, field)
    return by_job


def _scrape_config(job: str, name: str, options: ScrapeOptions, dns: list[tuple[Host, Exporter]],
                   settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {"job_name": name}
    if job in ENGINES and catalog_mod.load().engines[job].metrics_path != "/metrics":
        config["metrics_path"] = catalog_mod.load().engines[job].metrics_path
    if job == "prober":
        # The prober's series name the endpoint's server in the host label: keep it (blackbox-style), the
        # prober's own host is its target's `instance`.
        config["honor_labels"] = True
    if job in options.job_intervals:
        config["scrape_interval"] = options.job_intervals[job]
    if job in options.job_clients:
        config.update(options.job_clients[job].model_dump())
    config["file_sd_configs"] = [{"files": [f"targets/{job}.yml"]}]
    if dns:
        config["dns_sd_configs"] = [
            {"names": [exporter.address or host.address or host.name], "type": "A",
             "port": exporter.port or EXPORTER_PORTS[job]} for host, exporter in dns]
        relabel = []
        for host, exporter in dns:
            dns_name = exporter.address or host.address or host.name
            # A name found by DNS resolves to a container address that changes on every restart:
            # keep the name as the instance, and give the target its host like file_sd does.
            common = {"source_labels": ["__meta_dns_name"], "regex": dns_name.replace(".", r"\.")}
            relabel.append({**common, "target_label": "instance",
                            "replacement": f"{dns_name}:{exporter.port or EXPORTER_PORTS[job]}"})
            relabel.append({**common, "target_label": settings.labels.host, "replacement": host.name})
            relabel += [{**common, "target_label": key, "replacement": value} for key, value in host.labels.items()]
        config["relabel_configs"] = relabel
    if job == "node" and (keep := metric_relabel_configs(settings, options.node_keep, options.node_keep_extra)):
        config["metric_relabel_configs"] = keep
    return config


def render(hosts: Iterable[Any], settings: Settings, options: Any = None,
           source: str = "llmobs.scrape") -> dict[str, str]:
    """{relative path: text} for prometheus.yml and targets/<job>.yml; raises ConfigError on bad input."""
    parsed, opts = parse_hosts(hosts), parse_options(options)
    by_job = _targets(parsed, settings)
    jobs = settings.jobs.model_dump()
    dns: dict[str, list[tuple[Host, Exporter]]] = {job: [] for job in JOB_ORDER}
    for host in parsed:
        for job, exporter in host.exporters.items():
            if exporter.discovery == "dns":
                dns[job].append((host, exporter))
    config: dict[str, Any] = {
        "global": {"scrape_interval": opts.scrape_interval, "scrape_timeout": opts.scrape_timeout,
                   "evaluation_interval": opts.evaluation_interval},
        "rule_files": list(opts.rule_files),
        "alerting": {"alertmanagers": [{**(opts.alertmanager_client.model_dump() if opts.alertmanager_client else {}),
                                        "static_configs": [{"targets": list(opts.alertmanagers)}]}]},
    }
    if opts.external_labels:
        config["global"]["external_labels"] = dict(opts.external_labels)
    config.update(otel.prometheus_config(settings.otel))
    if opts.remote_write:
        config["remote_write"] = [rw.model_dump(exclude_none=True) for rw in opts.remote_write]
    config["scrape_configs"] = [_scrape_config(job, jobs[job], opts, dns[job], settings) for job in JOB_ORDER]
    header = yamlfmt.generated_header(source)
    files = {"prometheus.yml": yamlfmt.dump(config, header)}
    for job in JOB_ORDER:
        files[f"targets/{job}.yml"] = yamlfmt.dump(by_job[job], header)
    return files
