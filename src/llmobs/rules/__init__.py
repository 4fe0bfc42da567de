"""Prometheus rules generated from the catalog and the settings.

Public API (the Ansible filter plugins and `llmobs generate` call these with validated `Settings`; each
raises ConfigError before producing anything):

- `rule_files(settings) -> {file name: RuleFile}`: recording.yml (catalog recording rules, XID classes),
  slo.yml (per-model SLO rules), inventory.yml (llmobs:engine_gpu:info from the endpoints), prices.yml
  (the `cost` settings as series) and alerts.yml, every expression checked to read only series that exist.
- `render_rule_files(settings) -> {file name: YAML}` for `prometheus/rules/`.
- `panel_thresholds(settings) -> {series: [threshold, ...]}`: the alert thresholds the dashboards draw.
- `alert_list(settings) -> [AlertInfo]`: every alerting rule with its severity, component and team.

The promtool tests of these rules are llmobs.rules.testing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmobs import catalog as catalog_mod
from llmobs import conventions, promql
from llmobs.catalog import Catalog
from llmobs.conventions import RULES_DIR
from llmobs.rules import alerts, inventory, prices, recording, slo
from llmobs.rules.models import AlertingRule, RuleFile
from llmobs.settings import Settings
from llmobs.yamlfmt import generated_header

_HEADER = generated_header("src/llmobs/catalog and the settings")


def rule_files(settings: Settings, catalog: Catalog | None = None) -> dict[str, RuleFile]:
    """The rule groups of each rule file, every expression checked to read only existing series."""
    catalog = catalog or catalog_mod.load()
    host = settings.labels.host
    recorded = recording.groups(catalog, host, settings.thresholds.engine_stuck_window)
    files = {
        conventions.RECORDING_FILE: RuleFile(groups=(*recorded, inventory.xid_class_group(catalog))),
        conventions.SLO_FILE: RuleFile(groups=tuple(slo.recording_groups(settings, catalog.slos))),
        conventions.INVENTORY_FILE: RuleFile(groups=(inventory.engine_gpu_group(settings.all_endpoints, host),
                                                     inventory.probe_targets_group(settings))),
        conventions.PRICES_FILE: RuleFile(groups=(prices.prices_group(settings, catalog),)),
    }
    known = catalog.exposed_series_names() | catalog.generated_names(settings.slo.period) | {
        rule.record for file in files.values() for rule in file.recording_rules()}
    for name, file in files.items():
        for group in file.groups:
            for rule in group.rules:
                promql.check_known(rule.expr, f"{name}: {group.name}: {rule.name}", known)
    alerting = RuleFile(groups=(*alerts.groups(settings, catalog, known), *slo.alert_groups(settings, catalog.slos)))
    for rule in alerting.alerting_rules():
        promql.check_known(rule.expr, f"{conventions.ALERTS_FILE}: {rule.alert}({rule.severity})", known)
    return {**files, conventions.ALERTS_FILE: alerting}


def render_rule_files(settings: Settings, catalog: Catalog | None = None) -> dict[str, str]:
    """{file name: YAML text} of prometheus/rules/."""
    return {name: file.to_yaml(_HEADER) for name, file in rule_files(settings, catalog).items()}


def rule_file_artifacts(settings: Settings) -> dict[str, str]:
    """prometheus/rules/ for `llmobs generate`."""
    return {f"{RULES_DIR}/{name}": text for name, text in render_rule_files(settings).items()}


def alerting_rules(settings: Settings, catalog: Catalog | None = None) -> list[AlertingRule]:
    """Every alerting rule the settings enable, in file order."""
    return rule_files(settings, catalog)[conventions.ALERTS_FILE].alerting_rules()


@dataclass(frozen=True)
class AlertInfo:
    alert: str
    severity: str
    component: str
    team: str
    for_: str
    page: str
    summary: str


def alert_list(settings: Settings, catalog: Catalog | None = None) -> list[AlertInfo]:
    """Every alerting rule the settings enable, in file order, with its runbook page."""
    catalog = catalog or catalog_mod.load()
    return [AlertInfo(rule.alert, rule.severity, rule.component, rule.team, rule.for_, catalog.page_of(rule.alert),
                      rule.annotations.summary) for rule in alerting_rules(settings, catalog)]


def panel_thresholds(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """{series: [{alert, severity, value, direction, setting}]}: the lines a panel of `series` should draw
    so it shows exactly where the alerts fire (direction `above`: fires above value)."""
    result: dict[str, list[dict[str, Any]]] = {}
    for rule in catalog_mod.load().alert_rules():
        if rule.threshold:
            result.setdefault(rule.threshold.series, []).append({
                "alert": rule.alert, "severity": rule.severity, "direction": rule.threshold.direction,
                "setting": f"thresholds.{rule.threshold.setting}",
                "value": getattr(settings.thresholds, rule.threshold.setting),
            })
    return result
