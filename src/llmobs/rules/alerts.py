"""Alerting rules from the catalog's alert families (catalog/alerts.yaml), rendered for the settings."""

from __future__ import annotations

from typing import Any

from llmobs import conventions, promql, templating
from llmobs.catalog import AlertRule, Catalog, Component, Severity
from llmobs.promql import by
from llmobs.rules.models import AlertingRule, Annotations, RuleGroup
from llmobs.settings import Settings, Thresholds

SOURCE = "src/llmobs/catalog/alerts.yaml"
# Filesystems that are never a model or data volume, whatever their mountpoint.
PSEUDO_FILESYSTEMS = ("tmpfs", "ramfs", "squashfs")


def filesystems(thresholds: Thresholds) -> str:
    """The node_exporter matchers of the watched model and data volumes (thresholds.disk_mountpoints)."""
    watched = promql.matches("mountpoint", promql.alternatives(thresholds.disk_mountpoints))
    return f"{watched}, {promql.none_of('fstype', PSEUDO_FILESYSTEMS)}"


def template_context(settings: Settings) -> dict[str, Any]:
    """What `<< ... >>` may use in alerts.yaml (documented at the top of that file)."""
    host = settings.labels.host
    host_ref = "{{ $labels." + host + " }}"
    return {
        "host": host,
        "gpu": by(host, "gpu", "UUID", "modelName"),
        "engine": by(host, "instance", "model_name"),
        "gpu_ref": "GPU {{ $labels.gpu }} ({{ $labels.UUID }}, {{ $labels.modelName }}) on " + host_ref,
        "engine_ref": "{{ $labels.model_name }} on {{ $labels.instance }} (" + host_ref + ")",
        "jobs": settings.jobs,
        "t": settings.thresholds,
        "filesystems": filesystems(settings.thresholds),
    }


def render_text(text: str, context: dict[str, Any], field: str) -> str:
    return templating.render(text, context, field, SOURCE,
                             fix="use only the names listed at the top of alerts.yaml").strip()


def runbook_url(settings: Settings, page: str, alert: str) -> str:
    return conventions.runbook_url(settings.alerting.runbook_base_url, page, alert)


def override_for(settings: Settings, alert: str, severity: str) -> tuple[str | None, bool]:
    """(`for` override, enabled) from `alerting.rules`; `Name/severity` beats `Name`."""
    duration, enabled = None, True
    for key in (alert, f"{alert}/{severity}"):
        override = settings.alerting.rules.get(key)
        if override:
            duration = override.for_ or duration
            enabled = override.enabled
    return duration, enabled


def alerting_rule(settings: Settings, alert: str, severity: Severity, *, default_for: str, component: Component,
                  page: str, expr: str, summary: str, description: str,
                  labels: dict[str, str] | None = None) -> AlertingRule | None:
    """One Prometheus alerting rule, or None when the settings disable it; `labels` are the rule's own."""
    duration, enabled = override_for(settings, alert, severity)
    if not enabled:
        return None
    return AlertingRule(
        alert=alert, expr=expr, for_=duration or default_for,
        labels={"severity": severity, "component": component, "team": settings.alerting.teams[component],
                **(labels or {})},
        annotations=Annotations(summary=summary, description=description,
                                runbook_url=runbook_url(settings, page, alert)))


def groups(settings: Settings, catalog: Catalog, known: set[str]) -> list[RuleGroup]:
    """One rule group per alert family, checked against the series that exist (`known`)."""
    context = template_context(settings)
    result = []
    for family in catalog.alerts.families:
        rules = [rendered for rule in family.alerts
                 if (rendered := _family_rule(settings, family.component, family.page, rule, context, known))]
        if rules:
            result.append(RuleGroup(name=conventions.alert_group(family.page), rules=tuple(rules)))
    return result


def _family_rule(settings: Settings, component: Component, page: str, rule: AlertRule, context: dict[str, Any],
                 known: set[str]) -> AlertingRule | None:
    field = f"alerts.yaml: {page}.{rule.alert}({rule.severity})"
    expr = render_text(rule.expr, context, f"{field}.expr")
    promql.check_known(expr, f"{field}.expr", known)
    return alerting_rule(settings, rule.alert, rule.severity, default_for=rule.for_, component=component, page=page,
                         expr=expr, summary=render_text(rule.summary, context, f"{field}.summary"),
                         description=render_text(rule.description, context, f"{field}.description"))
