"""Site settings: thresholds, SLO targets, label names, alert routing and inventory, over the defaults.

A site passes only what it changes (from its inventory or a YAML file); `load_settings()` merges that
over `catalog/defaults.yaml`, validates the result against the catalog, and raises a ConfigError that
names the field and the fix. Nothing is written anywhere before this succeeds.
"""

from __future__ import annotations

import copy
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from llmobs import catalog as catalog_mod
from llmobs.conventions import Engine
from llmobs.endpoints import Endpoint as Endpoint  # re-exported for llmobs.deploy
from llmobs.endpoints import EngineEndpoint, HostEndpoint, VllmEndpoint, inventory_form
from llmobs.errors import ConfigError, ConfigErrors, from_validation_error
from llmobs.otel import Otel
from llmobs.pricing import Cost
from llmobs.prober_settings import ProberSettings, check_prober
from llmobs.types import Duration, LabelName, LabelValue, Strict, StrictAliased

# A share strictly between 0 and 1.
Ratio = Annotated[float, Field(gt=0, lt=1)]
# Secrets never live in the settings: a receiver names the variable (environment, Ansible vault) or the
# file that holds one.
VariableName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
FilePath = Annotated[str, Field(pattern=r"^/\S+$", description="absolute path inside the Alertmanager container")]
ReceiverName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]


class Labels(Strict):
    host: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", description="target label that names a server")


class Jobs(Strict):
    """Scrape job names (docs/architecture.md); the alert rules select targets by them."""

    dcgm: LabelValue
    node: LabelValue
    vllm: LabelValue
    sglang: LabelValue
    trtllm: LabelValue
    llamacpp: LabelValue
    prometheus: LabelValue
    alertmanager: LabelValue
    grafana: LabelValue
    prober: LabelValue
    otelcol: LabelValue


class Thresholds(Strict):
    gpu_temp_margin_warning_celsius: float = Field(gt=0, le=30)
    gpu_temp_margin_critical_celsius: float = Field(ge=0, le=30)
    gpu_throttle_ratio_warning: Ratio
    gpu_power_over_limit_ratio: float = Field(gt=1, le=2)
    nvlink_crc_errors_per_second_warning: float = Field(ge=0)
    pcie_replays_per_minute_warning: float = Field(ge=0)
    kv_cache_usage_warning: float = Field(gt=0, le=1)
    preemptions_per_second_warning: float = Field(gt=0)
    queue_waiting_requests_warning: int = Field(gt=0)
    engine_error_ratio_warning: Ratio
    engine_error_ratio_critical: Ratio
    disk_free_ratio_warning: Ratio
    disk_free_ratio_critical: Ratio
    disk_mountpoints: tuple[str, ...] = Field(min_length=1)
    gpu_missing_lookback: Duration
    engine_stuck_window: Duration

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.gpu_temp_margin_critical_celsius >= self.gpu_temp_margin_warning_celsius:
            raise ValueError("gpu_temp_margin_critical_celsius must be below gpu_temp_margin_warning_celsius")
        if self.engine_error_ratio_critical <= self.engine_error_ratio_warning:
            raise ValueError("engine_error_ratio_critical must be above engine_error_ratio_warning")
        if self.disk_free_ratio_critical >= self.disk_free_ratio_warning:
            raise ValueError("disk_free_ratio_critical must be below disk_free_ratio_warning")
        return self


# vLLM's --custom-histogram-buckets: {bucket family: boundaries}, e.g. {time_to_first_token: [0.5, 1, 3]}.
HistogramBuckets = dict[str, tuple[float, ...]]
_BUCKETS_HELP = "the engines' --custom-histogram-buckets ({family: boundaries}); latency targets must be among them"


class SloTargets(Strict):
    availability_objective: Ratio
    ttft_seconds: float = Field(gt=0)
    ttft_objective: Ratio
    inter_token_latency_seconds: float = Field(gt=0)
    inter_token_latency_objective: Ratio
    histogram_buckets: HistogramBuckets = Field(default_factory=dict, description=_BUCKETS_HELP)


class SloOverride(Strict):
    """Per-model SLO: any SloTargets field, the rest comes from `slo.defaults`."""

    availability_objective: Ratio | None = None
    ttft_seconds: float | None = Field(None, gt=0)
    ttft_objective: Ratio | None = None
    inter_token_latency_seconds: float | None = Field(None, gt=0)
    inter_token_latency_objective: Ratio | None = None
    histogram_buckets: HistogramBuckets | None = Field(None, description=_BUCKETS_HELP)


class Slo(Strict):
    period: str = Field(pattern=r"^\d+d$")
    defaults: SloTargets
    models: dict[str, SloOverride] = Field(default_factory=dict, description="per model_name")

    def targets_for(self, model_name: str) -> SloTargets:
        override = self.models.get(model_name)
        return self.defaults.model_copy(update=override.model_dump(exclude_none=True) if override else {})


class Kubernetes(Strict):
    """The Kubernetes quick start (k8s/, llmobs.k8s): where its objects go and how the operator finds them."""

    namespace: LabelValue = Field(description="namespace of every generated object (the Prometheus Operator's)")
    monitor_labels: dict[LabelName, LabelValue] = Field(
        default_factory=dict, description="labels the Prometheus' serviceMonitor/podMonitor/rule selectors match")
    gpu_node_selector: dict[str, LabelValue] = Field(description="nodes that run dcgm-exporter")
    vllm_pod_labels: dict[str, LabelValue] = Field(min_length=1, description="labels of the vLLM pods")
    vllm_port: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$",
                           description="name of the vLLM pods' metrics port (a Kubernetes port name)")
    alertmanager_name: LabelValue = Field(description="the Alertmanager resource; its Secret is alertmanager-<name>")


class AlertOverride(StrictAliased):
    for_: Duration | None = Field(None, alias="for", description="replaces the alert's `for`")
    enabled: bool = True


class Alerting(Strict):
    runbook_base_url: str = Field(min_length=1, description="runbook_url = <base>/<page>.md#<alert>")
    teams: dict[catalog_mod.Component, LabelValue] = Field(description="`team` label of each alert component")
    rules: dict[str, AlertOverride] = Field(
        default_factory=dict, description="per alert (`Name`) or alert and severity (`Name/warning`)")

    @model_validator(mode="after")
    def _every_component(self) -> Alerting:
        missing = sorted(set(catalog_mod.Component.__args__) - set(self.teams))
        if missing:
            raise ValueError(f"teams needs a team for every component; missing {missing}")
        return self


class WebhookReceiver(Strict):
    """Generic webhook; also WeCom/DingTalk/Feishu robots through a bridge that takes Alertmanager's JSON."""

    kind: Literal["webhook"]
    url: str | None = Field(None, pattern=r"^https?://\S+$", description="an address without credentials")
    url_secret: VariableName | None = Field(None, description="variable holding a URL that carries a key")
    send_resolved: bool = True
    max_alerts: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _one_url(self) -> WebhookReceiver:
        _exactly_one(self, "url", "url_secret")
        return self


class SlackReceiver(Strict):
    kind: Literal["slack"]
    channel: str = Field(min_length=1)
    api_url_secret: VariableName | None = None
    api_url_file: FilePath | None = None
    send_resolved: bool = True

    @model_validator(mode="after")
    def _one_url(self) -> SlackReceiver:
        _exactly_one(self, "api_url_secret", "api_url_file")
        return self


class EmailReceiver(StrictAliased):
    kind: Literal["email"]
    to: str = Field(pattern=r"^\S+@\S+$")
    from_: str = Field(alias="from", pattern=r"^\S+@\S+$")
    smarthost: str = Field(pattern=r"^[^:\s]+:[0-9]+$", description="host:port of the SMTP relay")
    auth_username: str | None = None
    auth_password_secret: VariableName | None = None
    auth_password_file: FilePath | None = None
    require_tls: bool = True
    send_resolved: bool = True

    @model_validator(mode="after")
    def _password_with_user(self) -> EmailReceiver:
        if self.auth_password_secret and self.auth_password_file:
            raise ValueError("give auth_password_secret or auth_password_file, not both")
        if (self.auth_password_secret or self.auth_password_file) and not self.auth_username:
            raise ValueError("a password needs auth_username")
        return self


class PagerdutyReceiver(Strict):
    kind: Literal["pagerduty"]
    routing_key_secret: VariableName | None = Field(None, description="Events API v2 integration key")
    routing_key_file: FilePath | None = None
    send_resolved: bool = True

    @model_validator(mode="after")
    def _one_key(self) -> PagerdutyReceiver:
        _exactly_one(self, "routing_key_secret", "routing_key_file")
        return self


Integration = Annotated[
    WebhookReceiver | SlackReceiver | EmailReceiver | PagerdutyReceiver, Field(discriminator="kind")
]


def _exactly_one(model: BaseModel, *fields: str) -> None:
    if sum(getattr(model, f) is not None for f in fields) != 1:
        raise ValueError(f"give exactly one of {', '.join(fields)}")


class Timing(Strict):
    group_wait: Duration
    group_interval: Duration
    repeat_interval: Duration


class Route(StrictAliased):
    """Alerts that match every given condition go to `receiver` (first matching route wins)."""

    receiver: ReceiverName
    severity: tuple[catalog_mod.Severity, ...] = ()
    team: tuple[LabelValue, ...] = ()
    matchers: dict[LabelName, str] = Field(default_factory=dict, description="label: regular expression")
    continue_: bool = Field(False, alias="continue", description="also try the routes after this one")


class Watchdog(Strict):
    receiver: ReceiverName | None = Field(None, description="the dead man's switch; unset: discarded")
    repeat_interval: Duration


class AlertmanagerSettings(Strict):
    resolve_timeout: Duration
    group_by: tuple[LabelName, ...] | None = Field(None, description="unset: alertname, host label, model_name")
    timing: dict[catalog_mod.Severity, Timing]
    receivers: dict[ReceiverName, tuple[Integration, ...]] = Field(
        description="name: integrations; a receiver without integrations discards what it gets")
    default_receiver: ReceiverName
    routes: tuple[Route, ...] = ()
    watchdog: Watchdog
    templates: tuple[str, ...] = Field(min_length=1, description="globs, relative to alertmanager.yml")

    @model_validator(mode="after")
    def _every_severity_timed(self) -> AlertmanagerSettings:
        missing = sorted(set(catalog_mod.SEVERITIES) - set(self.timing))
        if missing:
            raise ValueError(f"timing needs every severity; missing {missing}")
        return self

    def unknown_receivers(self) -> list[tuple[str, str]]:
        """(field, receiver) for every reference to a receiver that is not defined."""
        references = [("alertmanager.default_receiver", self.default_receiver)]
        references += [(f"alertmanager.routes[{i}].receiver", r.receiver) for i, r in enumerate(self.routes)]
        if self.watchdog.receiver:
            references.append(("alertmanager.watchdog.receiver", self.watchdog.receiver))
        return [(field, name) for field, name in references if name not in self.receivers]


class Settings(Strict):
    labels: Labels
    jobs: Jobs
    thresholds: Thresholds
    slo: Slo
    alerting: Alerting
    alertmanager: AlertmanagerSettings
    vllm_endpoints: tuple[VllmEndpoint, ...] = ()
    endpoints: tuple[EngineEndpoint, ...] = ()
    cost: Cost
    kubernetes: Kubernetes
    prober: ProberSettings
    otel: Otel

    _endpoint_forms = field_validator("vllm_endpoints", "endpoints", mode="before")(inventory_form)

    def endpoint_fields(self) -> list[tuple[str, HostEndpoint]]:
        """(field, endpoint) of every declared engine: vllm_endpoints, then endpoints."""
        return ([(f"vllm_endpoints[{i}]", e) for i, e in enumerate(self.vllm_endpoints)]
                + [(f"endpoints[{i}]", e) for i, e in enumerate(self.endpoints)])

    @property
    def all_endpoints(self) -> tuple[HostEndpoint, ...]:
        """Every declared engine, whichever list declares it."""
        return (*self.vllm_endpoints, *self.endpoints)

    def engine_of(self, model: str) -> set[Engine]:
        """The engines the inventory runs `model` on."""
        return {e.engine for e in self.all_endpoints if e.model == model}

    def with_endpoints(self, endpoints: Any) -> Settings:
        """These settings with other `vllm_endpoints` (a list or the inventory's mapping), validated anew."""
        return load_settings({**self.model_dump(mode="json", by_alias=True, exclude={"vllm_endpoints"}),
                              "vllm_endpoints": endpoints})

    @property
    def group_by(self) -> tuple[str, ...]:
        """Alertmanager grouping: per alert and host (and model for engine and SLO alerts)."""
        return self.alertmanager.group_by or ("alertname", self.labels.host, "model_name")


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    return copy.deepcopy(override)


def defaults() -> dict[str, Any]:
    text = resources.files(catalog_mod).joinpath("defaults.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _scope_engines(settings: Settings, model: str | None) -> set[Engine]:
    """The engines an SLO scope covers: a model's own, or (defaults) vLLM and every engine of a model
    without its own targets."""
    if model is not None:
        return settings.engine_of(model) or {"vllm"}
    return {"vllm"} | {e.engine for e in settings.all_endpoints if e.model not in settings.slo.models}


def _check_declared_buckets(scope: str, targets: SloTargets, catalog: catalog_mod.Catalog) -> list[ConfigError]:
    """Declared bucket families must be vLLM's, their boundaries strictly ascending."""
    errors = []
    engines = sorted({metric.buckets for metric in catalog.metrics if metric.engine and metric.buckets})
    for family, bounds in targets.histogram_buckets.items():
        field = f"{scope}.histogram_buckets.{family}"
        if family not in engines:
            errors.append(ConfigError(field, "not a bucket family of vLLM", f"use one of {', '.join(engines)}"))
        elif not bounds or any(b <= a for a, b in pairwise(bounds)):
            errors.append(ConfigError(field, f"boundaries {list(bounds)} are not strictly ascending",
                                      "list them as given to vLLM's --custom-histogram-buckets, smallest first"))
    return errors


def _check_slo_buckets(settings: Settings, catalog: catalog_mod.Catalog) -> list[ConfigError]:
    """Latency SLO targets must be real bucket boundaries of each engine's histogram (its own, or those the
    settings declare for --custom-histogram-buckets), or `le` selects no series at all."""
    errors = []
    scopes = [("slo.defaults", None, settings.slo.defaults)] + [
        (f"slo.models.{name}", name, settings.slo.targets_for(name)) for name in settings.slo.models
    ]
    for scope, model, targets in scopes:
        declared_errors = _check_declared_buckets(scope, targets, catalog)
        errors += declared_errors
        if declared_errors:
            continue
        for slo in catalog.slos.slos:
            if slo.latency is None:
                continue
            value = getattr(targets, slo.latency.threshold)
            for engine in sorted(_scope_engines(settings, model)):
                metric = catalog.slo_histogram(slo, engine)
                if metric is not None:
                    errors += _check_boundary(scope, slo.latency.threshold, value, metric, targets, catalog)
    return errors


def _check_boundary(scope: str, threshold: str, value: float, metric: catalog_mod.Metric, targets: SloTargets,
                    catalog: catalog_mod.Catalog) -> list[ConfigError]:
    declared = metric.buckets in targets.histogram_buckets
    bounds = targets.histogram_buckets.get(metric.buckets) or catalog.buckets_of(metric)
    if value in bounds:
        return []
    nearest = min(bounds, key=lambda b: abs(b - value))
    where = (f"one of the boundaries declared in {scope}.histogram_buckets.{metric.buckets}" if declared
             else f"a bucket boundary of {metric.name}")
    return [ConfigError(
        f"{scope}.{threshold}", f"{value} is not {where}",
        f"use a boundary such as {nearest} (boundaries: {', '.join(map(str, bounds))})"
        + ("" if declared else f", or declare the engines' --custom-histogram-buckets in "
                               f"{scope}.histogram_buckets.{metric.buckets}"))]


def _check_engine_slos(settings: Settings, catalog: catalog_mod.Catalog) -> list[ConfigError]:
    """An SLO target for a model whose engine lacks the SLO's signal would be an SLO that never measures."""
    errors = []
    for model, override in settings.slo.models.items():
        given = set(override.model_dump(exclude_none=True))
        for slo in catalog.slos.slos:
            fields = sorted(given & {slo.objective, *([slo.latency.threshold] if slo.latency else [])})
            has = catalog.slo_engines(slo)
            lacking = sorted(settings.engine_of(model) - has)
            if fields and lacking:
                titles = ", ".join(catalog.engines[e].title for e in lacking)
                errors.append(ConfigError(
                    f"slo.models.{model}.{fields[0]}",
                    f"{model} runs on {titles}, whose metrics have no {slo.title.lower()} signal, so the kit "
                    f"generates no {slo.name} SLO for it",
                    f"remove {', '.join(fields)} from slo.models.{model}, or serve the model with "
                    f"{' or '.join(sorted(has))}"))
    return errors


def _check_references(settings: Settings, catalog: catalog_mod.Catalog) -> list[ConfigError]:
    """Names the settings use that must exist elsewhere: receivers, teams, alerts."""
    errors = []
    am = settings.alertmanager
    for field, name in am.unknown_receivers():
        errors.append(ConfigError(field, f"unknown receiver {name!r}",
                                  f"use one of {sorted(am.receivers)} or define it under alertmanager.receivers"))
    teams = sorted(set(settings.alerting.teams.values()))
    for index, route in enumerate(am.routes):
        for team in route.team:
            if team not in teams:
                errors.append(ConfigError(f"alertmanager.routes[{index}].team", f"no alert carries team {team!r}",
                                          f"use one of {teams} (alerting.teams)"))
    severities = {rule.alert: set() for rule in catalog.alert_rules()}
    for rule in catalog.alert_rules():
        severities[rule.alert].add(rule.severity)
    for slo in catalog.slos.slos:
        severities[slo.alert] = {w.severity for w in catalog.slos.alert_windows}
    for key in settings.alerting.rules:
        alert, _, severity = key.partition("/")
        if alert not in severities or (severity and severity not in severities[alert]):
            known = [f"{alert}/{s}" for s in sorted(severities[alert])] if alert in severities else sorted(severities)
            errors.append(ConfigError(f"alerting.rules.{key}", "not an alert (or severity) of the kit",
                                      f"use one of {known}"))
    return errors


def _check_endpoints(settings: Settings) -> list[ConfigError]:
    """Each instance once, each GPU to one engine: the GPU-to-engine joins need one match per GPU."""
    errors = []
    instances: dict[str, str] = {}
    owners: dict[tuple[str, int], str] = {}
    for field, endpoint in settings.endpoint_fields():
        if endpoint.instance in instances:
            errors.append(ConfigError(field, f"repeats instance {endpoint.instance} of {instances[endpoint.instance]}",
                                      "give each endpoint its own port"))
        instances.setdefault(endpoint.instance, field)
        for gpu in endpoint.gpus:
            owner = owners.setdefault((endpoint.host, gpu), endpoint.instance)
            if owner != endpoint.instance:
                errors.append(ConfigError(f"{field}.gpus", f"GPU {gpu} of {endpoint.host} is already"
                                          f" used by {owner}", "give each GPU to one engine"))
    return errors


def _check_costs(settings: Settings, catalog: catalog_mod.Catalog) -> list[ConfigError]:
    """GPU models the catalog knows (the rules match DCGM's modelName), each host in one site at most."""
    cost, known = settings.cost, sorted(catalog.gpu_models)
    scopes = [("cost", cost), *((f"cost.sites.{name}", site) for name, site in cost.sites.items()),
              *((f"cost.hosts.{name}", host) for name, host in cost.hosts.items())]
    errors = [ConfigError(f"{scope}.gpus.{model}", "not a GPU model of the catalog",
                          f"use one of {known} (or add the model to src/llmobs/catalog/gpus.yaml)")
              for scope, entry in scopes for model in entry.gpus if model not in catalog.gpu_models]
    errors += [ConfigError(f"cost.sites.{sites[1]}.hosts", f"{host} is also in site {sites[0]}",
                           "list each host in one site (a host's own prices go under cost.hosts)")
               for host, sites in cost.site_of().items() if len(sites) > 1]
    return errors


def load_settings(overrides: dict[str, Any] | None = None, source: str | None = None) -> Settings:
    """Merge `overrides` over the defaults and validate them against the catalog."""
    if overrides is not None and not isinstance(overrides, dict):
        raise ConfigError("(top level)", f"settings must be a mapping, got {type(overrides).__name__}",
                          "pass a YAML mapping such as `thresholds: {...}`", source)
    merged = _merge(defaults(), overrides or {})
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as error:
        raise from_validation_error(error, source) from None
    catalog = catalog_mod.load()
    errors = (_check_slo_buckets(settings, catalog) + _check_engine_slos(settings, catalog)
              + _check_references(settings, catalog) + _check_endpoints(settings) + _check_costs(settings, catalog)
              + check_prober(settings.prober, settings.all_endpoints))
    if errors:
        for error in errors:
            error.source = source
        raise ConfigErrors(errors)
    return settings


def load_settings_file(path: Path | None) -> Settings:
    if path is None:
        return load_settings()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(str(path), f"not valid YAML: {error}", "fix the YAML syntax", str(path)) from None
    return load_settings(data or {}, source=str(path))
