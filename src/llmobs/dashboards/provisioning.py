"""Grafana file provisioning: the Prometheus and Alertmanager data sources and the dashboard provider.

The URLs, the scrape interval and the paths are parameters, so the lab (service names on one Compose
network) and the Ansible roles (any address) render the same files from the same code.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmobs.errors import from_validation_error
from llmobs.yamlfmt import dump, generated_header

PROMETHEUS_UID = "prometheus"
ALERTMANAGER_UID = "alertmanager"
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

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None, source: str | None = None) -> Provisioning:
        try:
            return cls.model_validate(values or {})
        except ValidationError as error:
            raise from_validation_error(error, source) from None


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
                "isDefault": True,
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
