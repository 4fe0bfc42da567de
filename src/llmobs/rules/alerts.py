"""Alerting rules from the catalog's alert families (catalog/alerts.yaml), rendered for the settings."""

from __future__ import annotations

from typing import Any

from llmobs import conventions, promql, templating
from llmobs.catalog import AlertRule, Catalog
from llmobs.promql import by
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


def alert_rule(settings: Settings, rule: AlertRule, component: str, page: str, expr: str,
               summary: str, description: str) -> dict[str, Any] | None:
    """One Prometheus alerting rule, or None when the settings disable it."""
    duration, enabled = override_for(settings, rule.alert, rule.severity)
    if not enabled:
        return None
    return {
        "alert": rule.alert,
        "expr": expr,
        "for": duration or rule.for_,
        "labels": {"severity": rule.severity, "component": component, "team": settings.alerting.teams[component]},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": runbook_url(settings, page, rule.alert),
        },
    }


def groups(settings: Settings, catalog: Catalog, known: set[str]) -> list[dict[str, Any]]:
    """One rule group per alert family, checked against the series that exist (`known`)."""
    context = template_context(settings)
    result = []
    for family in catalog.alerts.families:
        rules = []
        for rule in family.alerts:
            field = f"alerts.yaml: {family.page}.{rule.alert}({rule.severity})"
            expr = render_text(rule.expr, context, f"{field}.expr")
            promql.check_known(expr, f"{field}.expr", known)
            rendered = alert_rule(
                settings, rule, family.component, family.page, expr,
                render_text(rule.summary, context, f"{field}.summary"),
                render_text(rule.description, context, f"{field}.description"),
            )
            if rendered:
                rules.append(rendered)
        if rules:
            result.append({"name": conventions.alert_group(family.page), "rules": rules})
    return result
