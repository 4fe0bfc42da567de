"""Grafana file provisioning: the Prometheus and Alertmanager data sources and the dashboard provider,
the long-term store (VictoriaMetrics, PromQL over its whole retention) when the site runs one, and the
trace store (Jaeger, llmobs.tracing) when the site collects traces.

The URLs, the scrape interval and the paths are parameters, so the lab (service names on one Compose
network) and the Ansible roles (any address) render the same files from the same code.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from llmobs.errors import from_validation_error
from llmobs.yamlfmt import dump, generated_header

PROMETHEUS_UID = "prometheus"
ALERTMANAGER_UID = "alertmanager"
STORE_UID = "store"
TRACES_UID = "traces"
HEADER = generated_header("src/llmobs/dashboards/provisioning.py and the settings")

_URL = r"^https?://[^\s/]+(/\S*)?$"


class Provisioning(BaseModel):
    """Where Grafana finds Prometheus, Alertmanager and the dashboard files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prometheus_url: str = Field("http://prometheus:9090", pattern=_URL)
    alertmanager_url: str = Field("http://alertmanager:9093", pattern=_URL)
    # Grafana's $__rate_interval is max(4 x this, interval + this): the global scrape interval.
    scrape_interval: str = Field("15s", pattern=r"^\d+[smh]$")
    dashboards_path: str = Field("/etc/grafana/dashboards", pattern=r"^/\S*$",
                                 description="where the dashboard JSON is mounted inside the Grafana container")
    folder: str = Field("LLM observability", min_length=1)
    folder_uid: str = Field("llmobs", pattern=r"^[a-zA-Z0-9_-]{1,40}$")
    # The dashboards pick their data source with the ${datasource} variable: the store is one more choice.
    store_url: str | None = Field(None, pattern=_URL, description="the long-term store, e.g. http://mon-1:8428")
    traces_url: str | None = Field(None, pattern=_URL, description="the trace store's query API (Jaeger), "
                                                                   "e.g. http://jaeger:16686")
    default_datasource: Literal["prometheus", "store"] = Field(
        "prometheus", description="what the dashboards open on: store shows both Prometheus of an HA pair as one")

    @model_validator(mode="after")
    def _store_given(self) -> Provisioning:
        if self.default_datasource == "store" and not self.store_url:
            raise ValueError("default_datasource store needs store_url (where the long-term store answers)")
        return self

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None, source: str | None = None) -> Provisioning:
        try:
            return cls.model_validate(values or {})
        except ValidationError as error:
            raise from_validation_error(error, source) from None


def _store_datasource(provisioning: Provisioning) -> list[dict[str, Any]]:
    if not provisioning.store_url:
        return []
    return [{
        "name": "Long-term store",
        "uid": STORE_UID,
        "type": "prometheus",  # VictoriaMetrics answers Prometheus' query API
        "access": "proxy",
        "url": provisioning.store_url.rstrip("/"),
        "isDefault": provisioning.default_datasource == "store",
        "editable": False,
        "jsonData": {"httpMethod": "POST", "timeInterval": provisioning.scrape_interval,
                     "prometheusType": "Prometheus", "alertmanagerUid": ALERTMANAGER_UID},
    }]


def _traces_datasource(provisioning: Provisioning) -> list[dict[str, Any]]:
    if not provisioning.traces_url:
        return []
    # Grafana's core Jaeger datasource reads Jaeger's query API (/api/traces, /api/services).
    return [{"name": "Traces", "uid": TRACES_UID, "type": "jaeger", "access": "proxy",
             "url": provisioning.traces_url.rstrip("/"), "editable": False}]


def provisioning_files(provisioning: Provisioning) -> dict[str, str]:
    datasources = {
        "apiVersion": 1,
        "prune": True,
        "datasources": [
            {
                "name": "Prometheus",
                "uid": PROMETHEUS_UID,
                "type": "prometheus",
                "access": "proxy",
                "url": provisioning.prometheus_url.rstrip("/"),
                "isDefault": provisioning.default_datasource == "prometheus",
                "editable": False,
                "jsonData": {
                    "httpMethod": "POST",
                    "timeInterval": provisioning.scrape_interval,
                    "prometheusType": "Prometheus",
                    "alertmanagerUid": ALERTMANAGER_UID,
                },
            },
            {
                "name": "Alertmanager",
                "uid": ALERTMANAGER_UID,
                "type": "alertmanager",
                "access": "proxy",
                "url": provisioning.alertmanager_url.rstrip("/"),
                "editable": False,
                "jsonData": {"implementation": "prometheus", "handleGrafanaManagedAlerts": False},
            },
            *_store_datasource(provisioning),
            *_traces_datasource(provisioning),
        ],
    }
    dashboards = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "llmobs",
                "orgId": 1,
                "folder": provisioning.folder,
                "folderUid": provisioning.folder_uid,
                "type": "file",
                # Generated dashboards change through `llmobs generate`, not the UI.
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": provisioning.dashboards_path, "foldersFromFilesStructure": False},
            },
        ],
    }
    return {
        "grafana/provisioning/datasources/llmobs.yaml": dump(datasources, HEADER),
        "grafana/provisioning/dashboards/llmobs.yaml": dump(dashboards, HEADER),
    }
