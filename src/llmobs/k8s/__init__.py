"""The Kubernetes quick start: k8s/, generated with everything else by `llmobs generate`.

Three `kubectl apply` commands install the kit on a cluster that runs the Prometheus Operator and the
NVIDIA GPU Operator (README, "Kubernetes"):

- k8s/dcgm-exporter.yaml: the counters ConfigMap, DaemonSet, Service and ServiceMonitor of dcgm-exporter,
  and the vLLM PodMonitor;
- k8s/prometheus/rules/: one PrometheusRule per file of prometheus/rules/, the same groups;
- k8s/grafana/dashboards/: one ConfigMap per dashboard of grafana/dashboards/, for the Grafana sidecar;
- k8s/alertmanager.yaml: alertmanager.yml (and its templates) as the operator's Alertmanager Secret.

prometheus/rules/ and grafana/dashboards/ hold what Prometheus and Grafana read on bare metal (rule
files, dashboard JSON), which are not Kubernetes objects: the objects wrapping them live at the same
paths under k8s/, so each command applies exactly the wrapped copy of one directory.
"""

from __future__ import annotations

import posixpath
from typing import Any

from llmobs import dashboards, rules
from llmobs.conventions import RULES_DIR
from llmobs.images import pins
from llmobs.k8s import dcgm, objects
from llmobs.settings import Settings
from llmobs.workspace import Workspace
from llmobs.yamlfmt import dump, generated_header

K8S_DIR = "k8s"
DCGM_FILE = f"{K8S_DIR}/dcgm-exporter.yaml"
ALERTMANAGER_FILE = f"{K8S_DIR}/alertmanager.yaml"
RULES_K8S_DIR = f"{K8S_DIR}/{RULES_DIR}"
DASHBOARDS_DIR = "grafana/dashboards"
DASHBOARDS_K8S_DIR = f"{K8S_DIR}/{DASHBOARDS_DIR}"
DCGM_IMAGE_VARIABLE = "DCGM_EXPORTER_IMAGE"
_HEADER = generated_header("src/llmobs/catalog and the settings (llmobs.k8s)")


def documents(items: list[dict[str, Any]]) -> str:
    """A multi-document YAML file of Kubernetes objects."""
    return _HEADER + "---\n".join(dump(item) for item in items)


def rule_name(file_name: str) -> str:
    """The PrometheusRule of a rule file: llmobs-<stem>."""
    return f"llmobs-{posixpath.splitext(file_name)[0]}"


def artifacts(settings: Settings, workspace: Workspace) -> dict[str, str]:
    """Every file under k8s/ {path: text}; the dcgm-exporter image is the compose file's pin."""
    image = pins(workspace.compose_dir)[DCGM_IMAGE_VARIABLE]
    files = {DCGM_FILE: documents([*dcgm.objects(settings, image), objects.vllm_pod_monitor(settings)]),
             ALERTMANAGER_FILE: documents([objects.alertmanager_secret(settings)])}
    for name, rule_file in rules.rule_files(settings).items():
        stem = posixpath.splitext(name)[0]
        files[f"{RULES_K8S_DIR}/{stem}.yaml"] = documents([objects.prometheus_rule(settings, rule_name(name),
                                                                                   rule_file)])
    for path, text in dashboards.dashboard_artifacts(settings).items():
        if posixpath.dirname(path) == DASHBOARDS_DIR:
            name = posixpath.basename(path)
            files[f"{DASHBOARDS_K8S_DIR}/{posixpath.splitext(name)[0]}.yaml"] = documents(
                [objects.dashboard_configmap(settings, name, text)])
    return dict(sorted(files.items()))
