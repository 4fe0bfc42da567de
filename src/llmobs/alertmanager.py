"""Alertmanager configuration and notification templates, generated from the settings.

Public API (the Ansible filter plugins and `llmobs generate` call these):

- `render_config(settings, secrets=None) -> str`: alertmanager.yml. Receivers name their secrets by
  variable (`*_secret`, resolved from `secrets`, by default the environment) or by file (`*_file`, read
  by Alertmanager itself); a missing variable is a ConfigError that names it, never its value.
- `render_templates(settings) -> {file name: text}`: alertmanager/templates/*.tmpl.

Routing: the Watchdog goes to the dead man's switch; then the site's routes in order (by severity,
team and label matchers); everything else to the default receiver. Every leaf is timed by severity
(critical notifies within seconds, warnings and info wait and batch). Inhibition: a host that is down
silences its GPU, engine and target alerts; a critical alert silences the same alert's warning (and
both silence its info).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from llmobs import promql, templating
from llmobs.catalog import SEVERITIES
from llmobs.errors import ConfigError, ConfigErrors
from llmobs.settings import (
    EmailReceiver,
    PagerdutyReceiver,
    Route,
    Settings,
    SlackReceiver,
    WebhookReceiver,
)
from llmobs.yamlfmt import dump, generated_header

CONFIG_FILE = "alertmanager/alertmanager.yml"
TEMPLATES_DIR = "alertmanager/templates"
DISCARD = "llmobs-discard"  # a receiver without integrations: what it gets is dropped
WATCHDOG = "Watchdog"
HOST_DOWN = "HostDown"  # silences the alerts of these components on its host
HOST_COMPONENTS = ("gpu", "engine", "host")
# An engine that is down fails its probes too: its own alert pages, the outside-in one of its endpoint (the
# prober's `instance` is the endpoint, the engine's scrape address) is the effect.
ENGINE_DOWN, PROBE_FAILING = "VllmEngineDown", "EndpointProbeFailing"
# Labels that identify "the same alert" for critical-inhibits-warning (absent on both sides = equal).
SAME_ALERT = ("alertname", "gpu", "instance", "model_name", "slo", "mountpoint")
TEMPLATES = ("llmobs.tmpl",)  # under src/llmobs/templates/alertmanager/
_HEADER = generated_header("the llmobs settings (alertmanager section)")
_FROM_FILE = "use %s so that Alertmanager reads it from a file"


class MissingSecretError(ConfigError):
    """A receiver's `*_secret` names a variable that has no value."""

    def __init__(self, field: str, variable: str, alternative: str):
        self.variable = variable
        super().__init__(field, f"the secret variable {variable} is not set",
                         f"set {variable} in the environment (llmobs generate) or pass it in `secrets` (the Ansible "
                         f"filter, from the vault), or {alternative}")


class _Secrets:
    """Resolves `*_secret` variables; collects every missing one so the user fixes them at once."""

    def __init__(self, values: Mapping[str, str]):
        self.values: Mapping[str, str] = values
        self.errors: list[ConfigError] = []

    def get(self, variable: str, field: str, alternative: str) -> str:
        value = self.values.get(variable)
        if not value:
            self.errors.append(MissingSecretError(field, variable, alternative))
            return ""
        return value


def _integration(receiver: Any, field: str, secrets: _Secrets) -> tuple[str, dict[str, Any]]:
    """(Alertmanager *_configs key, one config) of an integration."""
    if isinstance(receiver, WebhookReceiver):
        url = receiver.url or secrets.get(receiver.url_secret, f"{field}.url_secret",
                                             "point `url` at a bridge that holds the key itself")
        return "webhook_configs", {"url": url, "send_resolved": receiver.send_resolved,
                                   "max_alerts": receiver.max_alerts}
    if isinstance(receiver, SlackReceiver):
        config: dict[str, Any] = (
            {"api_url_file": receiver.api_url_file} if receiver.api_url_file else
            {"api_url": secrets.get(receiver.api_url_secret, f"{field}.api_url_secret", _FROM_FILE % "api_url_file")})
        return "slack_configs", {
            **config, "channel": receiver.channel, "send_resolved": receiver.send_resolved,
            "color": '{{ template "llmobs.slack.color" . }}', "title": '{{ template "llmobs.title" . }}',
            "text": '{{ template "llmobs.text" . }}',
        }
    if isinstance(receiver, EmailReceiver):
        config = {"to": receiver.to, "from": receiver.from_, "smarthost": receiver.smarthost,
                  "require_tls": receiver.require_tls, "send_resolved": receiver.send_resolved}
        if receiver.auth_username:
            config["auth_username"] = receiver.auth_username
        if receiver.auth_password_file:
            config["auth_password_file"] = receiver.auth_password_file
        elif receiver.auth_password_secret:
            config["auth_password"] = secrets.get(receiver.auth_password_secret, f"{field}.auth_password_secret",
                                                  _FROM_FILE % "auth_password_file")
        config["headers"] = {"Subject": '{{ template "llmobs.title" . }}'}
        config["html"] = '{{ template "llmobs.email.html" . }}'
        config["text"] = '{{ template "llmobs.text" . }}'
        return "email_configs", config
    if isinstance(receiver, PagerdutyReceiver):
        config = ({"routing_key_file": receiver.routing_key_file} if receiver.routing_key_file else
                  {"routing_key": secrets.get(receiver.routing_key_secret, f"{field}.routing_key_secret",
                                              _FROM_FILE % "routing_key_file")})
        return "pagerduty_configs", {
            **config, "send_resolved": receiver.send_resolved,
            "severity": '{{ template "llmobs.pagerduty.severity" . }}',
            "description": '{{ template "llmobs.title" . }}',
            "details": {"alerts": '{{ template "llmobs.text" . }}'},
        }
    raise TypeError(f"unknown receiver kind {receiver!r}")  # pragma: no cover - the settings union is closed


def _timed(settings: Settings, severities: tuple[str, ...]) -> list[dict[str, Any]]:
    """Child routes that time each severity (they inherit the receiver of their parent)."""
    return [{"matchers": [str(promql.eq("severity", s))], **settings.alertmanager.timing[s].model_dump()}
            for s in SEVERITIES if s in severities]


def _route(settings: Settings, route: Route) -> dict[str, Any]:
    matchers = []
    if route.severity:
        matchers.append(str(promql.one_of("severity", route.severity)))
    if route.team:
        matchers.append(str(promql.one_of("team", route.team)))
    matchers += [str(promql.matches(label, regex)) for label, regex in route.matchers.items()]
    result: dict[str, Any] = {"receiver": route.receiver}
    if matchers:
        result["matchers"] = matchers
    if route.continue_:
        result["continue"] = True
    result["routes"] = _timed(settings, route.severity or SEVERITIES)
    return result


def config(settings: Settings, secrets: Mapping[str, str]) -> dict[str, Any]:
    """alertmanager.yml as a mapping; raises ConfigErrors naming every missing secret."""
    am = settings.alertmanager
    host = settings.labels.host
    resolver = _Secrets(secrets)
    receivers = []
    for name, integrations in am.receivers.items():
        entry: dict[str, Any] = {"name": name}
        for index, integration in enumerate(integrations):
            key, value = _integration(integration, f"alertmanager.receivers.{name}[{index}]", resolver)
            entry.setdefault(key, []).append(value)
        receivers.append(entry)
    if resolver.errors:
        raise ConfigErrors(resolver.errors)
    watchdog_receiver = am.watchdog.receiver or DISCARD
    if watchdog_receiver == DISCARD:
        receivers.append({"name": DISCARD})
    root_timing = am.timing["warning"].model_dump()
    return {
        "global": {"resolve_timeout": am.resolve_timeout},
        "templates": list(am.templates),
        "route": {
            "receiver": am.default_receiver,
            "group_by": list(settings.group_by),
            **root_timing,
            "routes": [
                # The dead man's switch: notified at every repeat interval, never grouped with others.
                {"matchers": [str(promql.eq("alertname", WATCHDOG))], "receiver": watchdog_receiver,
                 "group_wait": "0s", "group_interval": am.watchdog.repeat_interval,
                 "repeat_interval": am.watchdog.repeat_interval},
                *(_route(settings, route) for route in am.routes),
                *_timed(settings, SEVERITIES),
            ],
        },
        "inhibit_rules": [
            {"source_matchers": [str(promql.eq("alertname", HOST_DOWN))],
             "target_matchers": [str(promql.one_of("component", HOST_COMPONENTS)),
                                 str(promql.ne("alertname", HOST_DOWN))],
             "equal": [host]},
            # A critical GPU alert names the engine on its GPU (llmobs.rules.alerts): it is the page, and
            # the alerts of that engine's model on the host that follow (down, stuck, errors) are its effect.
            {"source_matchers": [str(promql.eq("component", "gpu")), str(promql.eq("severity", "critical")),
                                 str(promql.matches("engine_instance", ".+"))],
             "target_matchers": [str(promql.eq("component", "engine"))],
             "equal": [host, "model_name"]},
            {"source_matchers": [str(promql.eq("alertname", ENGINE_DOWN))],
             "target_matchers": [str(promql.eq("alertname", PROBE_FAILING))],
             "equal": [host, "instance"]},
            {"source_matchers": [str(promql.eq("severity", "critical"))],
             "target_matchers": [str(promql.eq("severity", "warning"))],
             "equal": [SAME_ALERT[0], host, *SAME_ALERT[1:]]},
            {"source_matchers": [str(promql.one_of("severity", ("critical", "warning")))],
             "target_matchers": [str(promql.eq("severity", "info"))],
             "equal": [SAME_ALERT[0], host, *SAME_ALERT[1:]]},
        ],
        "receivers": receivers,
    }


def render_config(settings: Settings, secrets: Mapping[str, str] | None = None) -> str:
    """alertmanager.yml; `secrets` maps variable names to values (default: the environment)."""
    return dump(config(settings, os.environ if secrets is None else secrets), _HEADER)


def artifacts(settings: Settings) -> dict[str, str]:
    """alertmanager/ for `llmobs generate` (secrets from the environment)."""
    files = {CONFIG_FILE: render_config(settings)}
    files.update({f"{TEMPLATES_DIR}/{name}": text for name, text in render_templates(settings).items()})
    return files


def render_templates(settings: Settings) -> dict[str, str]:
    """{file name: text} of alertmanager/templates/ (src/llmobs/templates/alertmanager/)."""
    return {name: templating.render_file(f"alertmanager/{name}", {"host": settings.labels.host})
            for name in TEMPLATES}


