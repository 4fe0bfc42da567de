"""The Kubernetes objects of the kit's generated files: PrometheusRules of prometheus/rules/, dashboard
ConfigMaps of grafana/dashboards/, the Alertmanager configuration Secret and the vLLM PodMonitor.

Each reuses the generator of the bare-metal file it wraps, so k8s/ says exactly what the servers get.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from typing import Any

from llmobs import alertmanager
from llmobs.rules.models import RuleFile
from llmobs.settings import Settings
from llmobs.yamlfmt import dump

APP_LABEL = "app.kubernetes.io/name"
PART_OF = {"app.kubernetes.io/part-of": "llm-observability-stack"}
# The Grafana sidecar (kube-prometheus-stack, grafana/helm-charts) loads ConfigMaps with this label.
DASHBOARD_LABEL = {"grafana_dashboard": "1"}
# The Prometheus Operator mounts every key of the Secret in one directory: templates lie beside the config.
ALERTMANAGER_CONFIG_KEY = "alertmanager.yaml"
ALERTMANAGER_CONFIG_DIR = "/etc/alertmanager/config"


def metadata(settings: Settings, name: str, app: str, monitor: bool = False,
             labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Name, namespace and labels; `monitor`: also the labels the operator's selectors match."""
    found = {APP_LABEL: app, **PART_OF, **(settings.kubernetes.monitor_labels if monitor else {}), **(labels or {})}
    return {"name": name, "namespace": settings.kubernetes.namespace, "labels": found}


def host_relabelings(settings: Settings, job: str) -> list[dict[str, Any]]:
    """The kit's `host` label (the node's name) and job name, which every rule and dashboard reads."""
    return [
        {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": settings.labels.host,
         "action": "replace"},
        {"targetLabel": "job", "replacement": job, "action": "replace"},
    ]


def vllm_pod_monitor(settings: Settings) -> dict[str, Any]:
    """Scrapes the vLLM pods (any namespace) by their labels and named metrics port."""
    k8s = settings.kubernetes
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
        "metadata": metadata(settings, "vllm", "vllm", monitor=True),
        "spec": {
            "namespaceSelector": {"any": True},
            "selector": {"matchLabels": dict(k8s.vllm_pod_labels)},
            "podMetricsEndpoints": [{"port": k8s.vllm_port, "path": "/metrics", "interval": "10s",
                                     "relabelings": host_relabelings(settings, settings.jobs.vllm)}],
        },
    }


def prometheus_rule(settings: Settings, name: str, rules: RuleFile) -> dict[str, Any]:
    """One PrometheusRule per rule file: its spec is the file's groups, unchanged."""
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": metadata(settings, name, "prometheus", monitor=True),
            "spec": {"groups": [group.to_dict() for group in rules.groups]}}


def dashboard_configmap(settings: Settings, file_name: str, text: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": metadata(settings, posixpath.splitext(file_name)[0], "grafana", labels=DASHBOARD_LABEL),
            "data": {file_name: text}}


def alertmanager_secret(settings: Settings) -> dict[str, Any]:
    """alertmanager-<name> with key alertmanager.yaml (what the operator's Alertmanager reads) and the
    templates as sibling keys; the secrets resolve as for alertmanager.yml (from the environment)."""
    config = alertmanager.config(settings, os.environ)
    config["templates"] = [f"{ALERTMANAGER_CONFIG_DIR}/{posixpath.basename(glob)}" for glob in config["templates"]]
    data = {ALERTMANAGER_CONFIG_KEY: dump(config), **alertmanager.render_templates(settings)}
    name = f"alertmanager-{settings.kubernetes.alertmanager_name}"
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": metadata(settings, name, "alertmanager"), "stringData": data}
