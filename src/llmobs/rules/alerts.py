"""Alerting rules from the catalog's alert families (catalog/alerts.yaml), rendered for the settings."""

from __future__ import annotations

from typing import Any

import jinja2

from llmobs.catalog import AlertRule, Catalog
from llmobs.errors import ConfigError
from llmobs.rules import promql
from llmobs.settings import Settings

# Angle delimiters: Prometheus' own {{ }} templates in the annotations pass through untouched.
_ENV = jinja2.Environment(
    variable_start_string="<<", variable_end_string=">>", block_start_string="<%", block_end_string="%>",
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
    finalize=lambda value: f"{value:g}" if isinstance(value, float) else value,  # 5.0 -> 5
)


def template_context(settings: Settings) -> dict[str, Any]:
    """What `<< ... >>` may use in alerts.yaml (documented at the top of that file)."""
    host = settings.labels.host
    t = settings.thresholds
    host_ref = "{{ $labels." + host + " }}"
    return {
        "host": host,
        "gpu": f"{host}, gpu, UUID, modelName",
        "engine": f"{host}, instance, model_name",
        "gpu_ref": "GPU {{ $labels.gpu }} ({{ $labels.UUID }}, {{ $labels.modelName }}) on " + host_ref,
        "engine_ref": "{{ $labels.model_name }} on {{ $labels.instance }} (" + host_ref + ")",
        "jobs": settings.jobs,
        "t": t,
        "filesystems": f"mountpoint=~{promql.regex_alternatives(t.disk_mountpoints)}, fstype!~\"tmpfs|ramfs|squashfs\"",
    }


def render_text(text: str, context: dict[str, Any], field: str) -> str:
    try:
        return _ENV.from_string(text).render(context).strip()
    except jinja2.TemplateError as error:
        raise ConfigError(field, f"template error: {error}", "use only the names listed at the top of alerts.yaml",
                          "src/llmobs/catalog/alerts.yaml") from None


def runbook_url(settings: Settings, page: str, alert: str) -> str:
    return f"{settings.alerting.runbook_base_url.rstrip('/')}/{page}.md#{alert.lower()}"


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
            result.append({"name": f"llmobs.alerts.{family.page}", "rules": rules})
    return result
