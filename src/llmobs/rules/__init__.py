"""Prometheus rules generated from the catalog and the settings.

Public API (the Ansible filter plugins and `llmobs generate` call these; every function takes the
settings as a validated `Settings`, an override mapping such as an inventory's `llmobs_settings`, or
None for the defaults, and raises ConfigError before producing anything):

- `render_rule_files(settings, endpoints=None) -> {file name: YAML}` for `prometheus/rules/`:
  recording.yml (catalog recording rules, XID classes), slo.yml (per-model SLO rules), inventory.yml
  (llmobs:engine_gpu:info from `vllm_endpoints`, or from `endpoints` when given) and alerts.yml.
- `render_rule_tests(settings) -> {file name: YAML}`: promtool unit tests for `prometheus/tests/`.
- `panel_thresholds(settings) -> {series: [threshold, ...]}`: the alert thresholds the dashboards draw.
- `alert_list(settings) -> [AlertInfo]`: every alerting rule with its severity, component and team.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmobs import catalog as catalog_mod
from llmobs import conventions, promql
from llmobs.catalog import Catalog
from llmobs.conventions import RULES_DIR, TESTS_DIR
from llmobs.rules import alerts, inventory, recording, slo
from llmobs.settings import Settings, as_settings, load_settings
from llmobs.yamlfmt import dump, generated_header

__all__ = ["RULES_DIR", "TESTS_DIR", "alert_list", "panel_thresholds", "render_rule_files", "render_rule_tests",
           "rule_groups"]
_HEADER = generated_header("src/llmobs/catalog and the settings")


def resolve_settings(settings: Settings | dict[str, Any] | None, endpoints: Any = None) -> Settings:
    """Validated settings; `endpoints` (list or inventory mapping) replaces `vllm_endpoints`."""
    if endpoints is None:
        return as_settings(settings)
    data = settings.model_dump(by_alias=True) if isinstance(settings, Settings) else dict(settings or {})
    return load_settings({**data, "vllm_endpoints": endpoints})


def rule_groups(settings: Settings, catalog: Catalog | None = None) -> dict[str, list[dict[str, Any]]]:
    """The rule groups of each rule file, every expression checked to read only existing series."""
    catalog = catalog or catalog_mod.load()
    host = settings.labels.host
    business = [
        {"name": group.name, "rules": [
            {"record": r.record, "expr": r.expr, **({"labels": dict(r.labels)} if r.labels else {})}
            for r in group.rules
        ]}
        for group in recording.recording_groups(catalog, host)
    ]
    business.append(inventory.xid_class_group(catalog))
    spec = catalog.slos
    files = {
        conventions.RECORDING_FILE: business,
        conventions.SLO_FILE: slo.recording_groups(settings, spec),
        conventions.INVENTORY_FILE: [inventory.engine_gpu_group(settings.vllm_endpoints, host)],
    }
    known = catalog.exposed_series_names() | catalog.generated_names(settings.slo.period) | {
        rule["record"] for groups in files.values() for group in groups for rule in group["rules"]
    }
    for name, groups in files.items():
        for group in groups:
            for rule in group["rules"]:
                promql.check_known(rule["expr"], f"{name}: {group['name']}: {rule['record']}", known)
    files[conventions.ALERTS_FILE] = alerts.groups(settings, catalog, known) + slo.alert_groups(settings, spec)
    for group in files[conventions.ALERTS_FILE]:
        for rule in group["rules"]:
            promql.check_known(rule["expr"], f"alerts.yml: {rule['alert']}({rule['labels']['severity']})", known)
    return files


def render_rule_files(settings: Settings | dict[str, Any] | None = None, endpoints: Any = None,
                      catalog: Catalog | None = None) -> dict[str, str]:
    """{file name: YAML text} of prometheus/rules/."""
    files = rule_groups(resolve_settings(settings, endpoints), catalog)
    return {name: dump({"groups": groups}, _HEADER) for name, groups in files.items()}


def render_rule_tests(settings: Settings | dict[str, Any] | None = None) -> dict[str, str]:
    """{file name: YAML text} of prometheus/tests/ (promtool unit tests of the rendered rules)."""
    from llmobs.rules import unittests

    return unittests.render(as_settings(settings))


@dataclass(frozen=True)
class AlertInfo:
    alert: str
    severity: str
    component: str
    team: str
    for_: str
    page: str
    summary: str


def alert_list(settings: Settings | dict[str, Any] | None = None, catalog: Catalog | None = None) -> list[AlertInfo]:
    """Every alerting rule the settings enable, in file order."""
    settings = as_settings(settings)
    catalog = catalog or catalog_mod.load()
    return [
        AlertInfo(rule["alert"], rule["labels"]["severity"], rule["labels"]["component"], rule["labels"]["team"],
                  rule["for"], catalog.page_of(rule["alert"]), rule["annotations"]["summary"])
        for group in rule_groups(settings, catalog)[conventions.ALERTS_FILE] for rule in group["rules"]
    ]


def panel_thresholds(settings: Settings | dict[str, Any] | None = None) -> dict[str, list[dict[str, Any]]]:
    """{series: [{alert, severity, value, direction, setting}]}: the lines a panel of `series` should draw
    so it shows exactly where the alerts fire (direction `above`: fires above value)."""
    settings = as_settings(settings)
    result: dict[str, list[dict[str, Any]]] = {}
    for rule in catalog_mod.load().alert_rules():
        if rule.threshold:
            result.setdefault(rule.threshold.series, []).append({
                "alert": rule.alert, "severity": rule.severity, "direction": rule.threshold.direction,
                "setting": f"thresholds.{rule.threshold.setting}",
                "value": getattr(settings.thresholds, rule.threshold.setting),
            })
    return result
