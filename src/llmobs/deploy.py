"""What the Ansible roles deploy, computed from inventory data: the roles' filter plugins call these.

Each function takes plain data the way an inventory holds it (the site's `llmobs_settings`, the hosts
of the GPU and monitoring groups, role options), calls the generators of the package (rules, scrape
configuration, Alertmanager configuration, DCGM counters, dashboards) and returns the files to put in
place as {path relative to the service's config directory: text}. Bad input raises a ConfigError naming
the inventory variable, before any file is written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError

from llmobs import alertmanager, dcgm_csv, dockerhost, images, preflight, roles, rules, scrape, store, tracing, yamlfmt
from llmobs.conventions import COMPOSE_SERVICES, EXPORTER_PORTS, instance
from llmobs.dashboards import dashboard_artifacts
from llmobs.dashboards.provisioning import Provisioning
from llmobs.errors import ConfigError, ConfigErrors, from_validation_error
from llmobs.preflight import textfile, timer
from llmobs.settings import Endpoint, Settings, load_settings
from llmobs.types import Address, Strict, duration_seconds

SETTINGS_VARIABLE = "llmobs_settings"
# A service's <role>_port: 0 publishes it on an ephemeral host port, and Prometheus scrapes it at its own.
PublishedPort = Annotated[int, Field(ge=0, le=65535)]

# The compose service of each job on a monitoring host's docker network, and the port it listens on
# inside its container: the host's own Prometheus reaches its neighbours by these names (itself as localhost).
LOCAL_SERVICES = {job: ("localhost" if job == "prometheus" else service, EXPORTER_PORTS[job])
                  for job, service in COMPOSE_SERVICES.items()}


class InventoryHost(Strict):
    """What the prometheus role reads from one host of the inventory."""

    name: str = Field(min_length=1)
    address: Address = Field(description="llmobs_scrape_address, else ansible_host, else the name")
    gpu: bool = Field(description="in the GPU group: runs dcgm-exporter and the vLLM endpoints")
    monitoring: bool = Field(description="in the monitoring group: runs Prometheus, Alertmanager, Grafana")
    grafana: bool = Field(True, description="Grafana runs there (false where its image is missing)")
    prober: bool = Field(False, description="endpoint_prober_enabled: the endpoint prober runs there")
    otelcol: bool = Field(False, description="otel_collector_running: the OpenTelemetry Collector runs there")
    labels: dict[str, str] = Field(default_factory=dict, description="llmobs_host_labels")
    vllm_endpoints: tuple[Endpoint, ...] = ()
    endpoints: tuple[Endpoint, ...] = Field((), description="llmobs_endpoints: the engines it runs, each named")
    gpu_count: int | None = Field(None, ge=1, le=64,
                                  description="gpu_preflight_expected_gpu_count: the GPU indexes are below it")
    exporters: tuple[Literal["node", "dcgm"], ...] | None = Field(
        None, description="llmobs_exporters: the exporters it runs; unset: node, and dcgm on GPU hosts")
    ports: dict[str, PublishedPort | None] = Field(default_factory=dict, description="<role>_port per job")
    addresses: dict[str, str | None] = Field(default_factory=dict, description="<role>_scrape_address per job")


def _validated_hosts(hosts: list[Any]) -> list[InventoryHost]:
    parsed, errors = [], []
    for index, host in enumerate(hosts):
        name = host.get("name", f"hosts[{index}]") if isinstance(host, dict) else f"hosts[{index}]"
        try:
            parsed.append(InventoryHost.model_validate(host))
        except ValidationError as error:
            errors += [ConfigError(f"{name}: {roles.host_variable(item.field)}", item.problem, item.fix)
                       for item in from_validation_error(error).errors]
    errors += _gpus_out_of_range(parsed) + _listed_twice(parsed)
    if errors:
        raise ConfigErrors(errors)
    return parsed


def _listed_twice(hosts: list[InventoryHost]) -> list[ConfigError]:
    seen: set[str] = set()
    errors = []
    for index, host in enumerate(hosts):
        if host.name in seen:
            errors.append(ConfigError(f"hosts[{index}].name", f"{host.name!r} is listed twice",
                                      "list each host once in the inventory's GPU and monitoring groups"))
        seen.add(host.name)
    return errors


def _gpus_out_of_range(hosts: list[InventoryHost]) -> list[ConfigError]:
    """An engine on GPU 8 of an 8-GPU server: its GPU alerts and joins would never match."""
    return [ConfigError(f"{host.name}: vllm_endpoints[{index}].gpus", f"GPU {gpu} is not on a host of {host.gpu_count}"
                        f" GPUs", f"use indexes 0-{host.gpu_count - 1} (gpu_preflight_expected_gpu_count)")
            for host in hosts if host.gpu_count for index, endpoint in enumerate(host.vllm_endpoints)
            for gpu in endpoint.gpus if gpu >= host.gpu_count]


def site_settings(overrides: dict[str, Any] | None, variable: str = SETTINGS_VARIABLE) -> Settings:
    """The site's settings (the inventory's `variable`) merged over the defaults and validated: the one
    validation of a filter call; errors name the variable."""
    try:
        return load_settings(overrides)
    except ConfigError as error:
        raise error.renamed(variable) from None


def settings_validate(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The site's settings (`llmobs_settings`) merged over the defaults; raises naming the bad field."""
    return site_settings(overrides).model_dump(mode="json", by_alias=True)


def prober_files(settings: dict[str, Any] | None, hosts: list[Any]) -> dict[str, str]:
    """settings.yml of the endpoint prober: the site's settings with every GPU host's endpoints, validated."""
    full = _settings_with_endpoints(settings, _validated_hosts(hosts))
    header = yamlfmt.generated_header("the endpoint_prober role (llmobs_settings and the endpoints)")
    return {"settings.yml": yamlfmt.dump(full.model_dump(mode="json", by_alias=True), header)}


def image_pin(definition: str, variable: str) -> str:
    """The upstream image a compose service file pins for `variable` (`${VARIABLE:-image}`)."""
    pinned = images.pins(Path(definition).parent)
    if variable not in pinned:
        raise ConfigError(variable, f"{definition} does not pin it", "add `image: ${" + variable + ":-<image>}`")
    return pinned[variable]


def compose_override(override: dict[str, Any], resets: list[str] | None = None) -> str:
    """A Compose override file: `override` merged over the service definition by Compose, and each dotted
    key of `resets` (e.g. `services.dcgm-exporter.deploy`) removed from it with `!reset`."""
    document = yamlfmt.plain(override or {})
    for path in resets or []:
        *parents, key = path.split(".")
        node = document
        for part in parents:
            node = node.setdefault(part, {})
        node[key] = yamlfmt.RESET
    header = "# Written by the llmobs Ansible roles: what differs on this host from the kit's service file.\n"
    return yamlfmt.dump(document, header)


def _settings_with_endpoints(overrides: dict[str, Any] | None, hosts: list[InventoryHost]) -> Settings:
    """The site settings with `vllm_endpoints` and `endpoints` taken from the hosts (each scraped at its
    host's address unless the endpoint names another)."""
    def declared(field: str) -> list[dict[str, Any]]:
        return [{"host": host.name, **e.model_dump(), "address": e.address or host.address}
                for host in hosts if host.gpu for e in getattr(host, field)]

    return site_settings({**(overrides or {}), "vllm_endpoints": declared("vllm_endpoints"),
                          "endpoints": declared("endpoints")},
                         f"{SETTINGS_VARIABLE} (with every GPU host's vllm_endpoints and llmobs_endpoints)")


def _scrape_hosts(hosts: list[InventoryHost], me: str) -> tuple[list[scrape.Host], list[str]]:
    """The hosts as the Prometheus on host `me` scrapes them, and the Alertmanagers it alerts."""
    scrape_hosts, alertmanagers = [], []
    for host in hosts:
        jobs = list(host.exporters) if host.exporters is not None else ["node"] + (["dcgm"] if host.gpu else [])
        if host.monitoring:
            jobs += (["prometheus", "alertmanager"] + (["grafana"] if host.grafana else [])
                     + (["prober"] if host.prober else []) + (["otelcol"] if host.otelcol else []))
        exporters = {}
        for job in jobs:
            if host.name == me:  # same host: the service's name on the kit's docker network
                address, port = LOCAL_SERVICES[job]
            else:
                address, port = host.addresses.get(job) or host.address, host.ports.get(job)
            exporters[job] = {"address": address, "port": port}
        scrape_hosts.append({"name": host.name, "address": host.address, "exporters": exporters,
                             "labels": host.labels})
        if host.monitoring:
            am = exporters["alertmanager"]
            alertmanagers.append(instance(am["address"], am["port"] or EXPORTER_PORTS["alertmanager"]))
    return scrape.parse_hosts(scrape_hosts), alertmanagers


# Where the prometheus role mounts its secret files (prometheus_secret_files, scrape credentials).
PROMETHEUS_SECRETS = "/etc/prometheus/secrets"


class ScrapeAuth(Strict):
    """prometheus_scrape_auth.<job>: how Prometheus reaches targets that serve TLS or basic auth."""

    username: str | None = Field(None, min_length=1)
    password: str | None = Field(None, min_length=1, description="written to a secret file, never to prometheus.yml")
    tls: bool = False
    ca_cert: str | None = Field(None, pattern=r"-----BEGIN CERTIFICATE-----", description="PEM of the CA")
    insecure_skip_verify: bool = False
    server_name: str | None = None


_SCRAPE_AUTH = TypeAdapter(dict[str, ScrapeAuth])


def _scrape_auth(auth: dict[str, Any] | None) -> dict[str, ScrapeAuth]:
    try:
        return _SCRAPE_AUTH.validate_python(auth or {})
    except ValidationError as error:
        raise from_validation_error(error).renamed("prometheus_scrape_auth") from None


def _client(job: str, auth: ScrapeAuth) -> dict[str, Any]:
    client: dict[str, Any] = {"scheme": "https" if auth.tls else "http"}
    if auth.username:
        client["basic_auth"] = {"username": auth.username,
                                "password_file": f"{PROMETHEUS_SECRETS}/scrape-{job}-password"}
    tls = {key: value for key, value in {
        "ca_file": f"{PROMETHEUS_SECRETS}/scrape-{job}-ca.crt" if auth.ca_cert else None,
        "insecure_skip_verify": auth.insecure_skip_verify or None, "server_name": auth.server_name}.items() if value}
    if tls:
        client["tls_config"] = tls
    return client


def prometheus_scrape_secrets(auth: dict[str, Any] | None) -> dict[str, str]:
    """The secret files of prometheus_scrape_auth (passwords, CA certificates), relative to the config dir."""
    files = {}
    for job, item in _scrape_auth(auth).items():
        if item.password:
            files[f"secrets/scrape-{job}-password"] = item.password
        if item.ca_cert:
            files[f"secrets/scrape-{job}-ca.crt"] = item.ca_cert
    return files


def _with_replica(remote_write: Any, replica: dict[str, str]) -> Any:
    """A remote_write entry that adds the replica label to what it sends (deduplication of an HA pair in
    Mimir, Thanos or VictoriaMetrics), while alerts leave without it so Alertmanager deduplicates them."""
    if not replica or not isinstance(remote_write, dict):
        return remote_write
    added = [{"action": "replace", "target_label": label, "replacement": value} for label, value in replica.items()]
    return {**remote_write, "write_relabel_configs": added + list(remote_write.get("write_relabel_configs") or [])}


# Fields of scrape.ScrapeOptions -> the prometheus role's variable that sets them (the rest: the intervals).
_OPTION_VARIABLES = {
    "prometheus.remote_write": "prometheus_remote_write", "prometheus.external_labels": "prometheus_external_labels",
    "prometheus.job_clients": "prometheus_scrape_auth",
    "prometheus.alertmanager_client": "prometheus_scrape_auth.alertmanager",
    "prometheus.node_keep": "prometheus_node_keep", "prometheus.node_keep_extra": "prometheus_node_keep_extra",
    "prometheus": "prometheus_scrape_options",
}


def _check_replica(replica: dict[str, str], external_labels: dict[str, str]) -> None:
    """The pair's external labels must be identical: a replica label there would reach Alertmanager (which
    could no longer deduplicate the pair's alerts) and the store (which could no longer deduplicate its series)."""
    for label in sorted(set(replica) & set(external_labels)):
        raise ConfigError(f"prometheus_external_labels.{label}", "is also the HA pair's replica label",
                          "set the replica only in prometheus_replica; keep external labels identical on both")


def _store_write(options: Any, hosts: list[InventoryHost], me: str) -> list[dict[str, Any]]:
    parsed = store.parse(options)
    if parsed is None:
        return []
    return [store.remote_write(parsed, me, {host.name: host.address for host in hosts if host.monitoring})]


def store_environment(options: dict[str, Any] | None, scrape_options: dict[str, Any] | None = None) -> dict[str, str]:
    """The compose variables of the store on its host (llmobs_store; the Prometheus scrape intervals
    bound its deduplication interval)."""
    parsed = store.parse(options)
    if parsed is None:
        raise ConfigError(store.STORE_VARIABLE, "is not set", "set llmobs_store.host to the host that runs the store")
    try:
        intervals = scrape.parse_options(scrape_options or {})
    except ConfigError as error:
        raise error.renamed(_OPTION_VARIABLES) from None
    shortest = min([intervals.scrape_interval, *intervals.job_intervals.values()], key=duration_seconds)
    return store.compose_environment(parsed, shortest)


def prometheus_files(settings: dict[str, Any] | None, hosts: list[Any], me: str,
                     options: dict[str, Any] | None = None) -> dict[str, str]:
    """prometheus.yml, targets/<job>.yml and rules/*.yml for the Prometheus on host `me`.

    `hosts` lists every GPU and monitoring host (InventoryHost). `options`: `scrape` (scrape.ScrapeOptions
    intervals), `external_labels`, `remote_write`, `replica` ({label: value}, HA pairs only),
    `scrape_auth` (ScrapeAuth per job; `alertmanager` also sets how alerts are sent), `store`
    (llmobs.store.StoreOptions: one more remote_write, to the long-term store, without the replica label) and
    `node_keep`, `node_keep_extra` (the node job's keep-list, llmobs.node_keep).
    """
    parsed = _validated_hosts(hosts)
    if me not in {host.name for host in parsed if host.monitoring}:
        raise ConfigError("prometheus host", f"{me} is not in the monitoring group", "run the role on monitoring hosts")
    full = _settings_with_endpoints(settings, parsed)
    scrape_hosts, alertmanagers = _scrape_hosts(parsed, me)
    opts = options or {}
    replica = opts.get("replica") or {}
    _check_replica(replica, opts.get("external_labels") or {})
    clients = {job: _client(job, auth) for job, auth in _scrape_auth(opts.get("scrape_auth")).items()}
    scrape_options = {
        **(opts.get("scrape") or {}),
        "external_labels": opts.get("external_labels") or {},
        "remote_write": [_with_replica(entry, replica) for entry in opts.get("remote_write") or []]
        + _store_write(opts.get("store"), parsed, me),
        "alertmanagers": alertmanagers,
        "job_clients": clients,
        "alertmanager_client": clients.get("alertmanager"),
        **{key: opts[key] for key in ("node_keep", "node_keep_extra") if opts.get(key) is not None},
    }
    try:
        options = scrape.parse_options(scrape_options)
    except ConfigError as error:
        raise error.renamed(_OPTION_VARIABLES) from None
    files = scrape.render(scrape_hosts, full, options, source="the Ansible inventory")
    files.update({f"rules/{name}": text for name, text in rules.render_rule_files(full).items()})
    return files


def _alertmanager_files(settings: Settings, secrets: dict[str, str] | None) -> dict[str, str]:
    try:
        config = alertmanager.render_config(settings, secrets or {})
    except ConfigError as error:
        raise ConfigErrors([_secret_fix(e) for e in error.all]).renamed(SETTINGS_VARIABLE) from None
    templates = alertmanager.render_templates(settings)
    return {"alertmanager.yml": config, **{f"templates/{name}": text for name, text in templates.items()}}


def _secret_fix(error: ConfigError) -> ConfigError:
    """A missing receiver secret comes from the vault through alertmanager_secrets."""
    if isinstance(error, alertmanager.MissingSecretError):
        return ConfigError(error.field, error.problem,
                           f"add {error.variable} to alertmanager_secrets, its value kept in Ansible Vault")
    return error


def alertmanager_files(settings: dict[str, Any] | None, secrets: dict[str, str] | None = None) -> dict[str, str]:
    """alertmanager.yml (holding the receivers' secrets, from `secrets`: variable -> value) and
    templates/*.tmpl, relative to the Alertmanager config directory."""
    return _alertmanager_files(site_settings(settings), secrets)


def alertmanager_check(settings: dict[str, Any] | None, secrets: dict[str, str] | None = None) -> dict[str, Any]:
    """What alertmanager_files would configure, without any secret value: safe to show in a log."""
    validated = site_settings(settings)
    _alertmanager_files(validated, secrets)
    receivers = validated.alertmanager.receivers
    return {"receivers": {name: [integration.kind for integration in integrations]
                          for name, integrations in receivers.items()},
            "default_receiver": validated.alertmanager.default_receiver,
            "secrets_given": sorted(secrets or {})}


def grafana_files(settings: dict[str, Any] | None, provisioning: dict[str, Any] | None = None) -> dict[str, str]:
    """Dashboards and provisioning, relative to the Grafana config directory (dashboards/, provisioning/)."""
    try:
        files = dashboard_artifacts(load_settings(settings), Provisioning.from_mapping(provisioning))
    except ConfigError as error:
        raise error.renamed("grafana") from None
    return {path.removeprefix("grafana/"): text for path, text in files.items()}


def dcgm_files(settings: dict[str, Any] | None) -> dict[str, str]:
    """counters.csv: dcgm-exporter's default fields and every field the kit's rules and dashboards read."""
    return {"counters.csv": dcgm_csv.render(site_settings(settings))}


def tracing_enabled(settings: dict[str, Any] | None) -> bool:
    """Whether the site collects traces (`llmobs_settings.otel.traces.enabled`): site.yml runs otel_collector."""
    return site_settings(settings).otel.traces.enabled


def tracing_files(settings: dict[str, Any] | None, store_endpoint: str = tracing.STORE_ENDPOINT) -> dict[str, str]:
    """collector.yaml and jaeger.yaml, relative to their config directories, checked by llmobs.tracing.check
    (a bad one stops the play, naming the field, before anything is written on a host)."""
    traces = site_settings(settings).otel.traces
    try:
        files = tracing.files(traces, store_endpoint)
    except ConfigError as error:
        raise error.renamed("otel_collector") from None
    return {path.removeprefix("otel/"): text for path, text in files.items()}


def tracing_vllm_args(settings: dict[str, Any] | None, collector_address: str) -> list[str]:
    """The vLLM flags that send an engine's traces to the Collector at `collector_address`."""
    return tracing.vllm_args(site_settings(settings).otel.traces, collector_address)


def reached_at(listen_address: str, host_address: str) -> str:
    """The host part of the URL users reach a service at, from the address it is published on: the host's
    own address for every interface, localhost for loopback (an SSH tunnel), else that address."""
    if listen_address in ("0.0.0.0", "::", ""):
        address = host_address
    elif listen_address.startswith("127.") or listen_address in ("::1", "localhost"):
        return "localhost"
    else:
        address = listen_address
    return f"[{address}]" if ":" in address else address


# The filters the roles use: `{{ x | llmobs_<name>(...) }}` calls FILTERS[name](x, ...).
FILTERS: dict[str, Callable[..., Any]] = {
    "settings_validate": settings_validate,
    "image_pin": image_pin,
    "reached_at": reached_at,
    "compose_override": compose_override,
    "prometheus_files": prometheus_files,
    "prometheus_scrape_secrets": prometheus_scrape_secrets,
    "store_environment": store_environment,
    "alertmanager_check": alertmanager_check,
    "alertmanager_files": alertmanager_files,
    "grafana_files": grafana_files,
    "prober_files": prober_files,
    "dcgm_files": dcgm_files,
    "tracing_enabled": tracing_enabled,
    "tracing_files": tracing_files,
    "tracing_vllm_args": tracing_vllm_args,
    "gpu_preflight_plan": preflight.plan,
    "gpu_preflight_report": preflight.judge,
    "gpu_preflight_textfile": textfile.render,
    "gpu_preflight_timer": timer.timer_files,
    "docker_daemon_json": dockerhost.daemon_json,
    # What compose_service, the prometheus and alertmanager roles and site.yml compute (llmobs.roles).
    "inventory_hosts": roles.inventory_hosts,
    "alertmanager_peer_flags": roles.alertmanager_peer_flags,
    "compose_service_override": roles.compose_service_override,
    "compose_service_secret_files": roles.compose_service_secret_files,
    "compose_service_validators": roles.compose_service_validators,
    "compose_service_api": roles.compose_service_api,
    "compose_env_file": roles.compose_env_file,
    "argument_spec_without_defaults": roles.argument_spec_without_defaults,
}
