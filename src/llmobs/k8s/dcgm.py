"""k8s/dcgm-exporter.yaml: dcgm-exporter on every GPU node, as the compose service runs it on a server.

The same pinned image (compose/services/dcgm-exporter.yaml), the kit's counters CSV (llmobs.dcgm_csv) in
a ConfigMap, the same `-c 5000` collect interval and SYS_ADMIN for the profiling fields; a Service and a
ServiceMonitor so the Prometheus Operator scrapes it under the kit's job name with the `host` label set
to the node's name (what the rules and dashboards group by).
"""

from __future__ import annotations

from typing import Any

from llmobs import dcgm_csv
from llmobs.conventions import PORTS
from llmobs.k8s.objects import APP_LABEL, host_relabelings, metadata
from llmobs.settings import Settings

NAME = "dcgm-exporter"
COUNTERS_KEY = "counters.csv"
_COUNTERS_DIR = "/etc/dcgm-exporter/llmobs"  # a directory mount (not subPath), so ConfigMap updates arrive
# kubelet's pod-resources socket: dcgm-exporter labels each GPU's series with the pod that holds it.
_POD_RESOURCES = "/var/lib/kubelet/pod-resources"


def objects(settings: Settings, image: str) -> list[dict[str, Any]]:
    """ConfigMap (counters), DaemonSet, Service and ServiceMonitor of dcgm-exporter."""
    return [counters_configmap(settings), daemonset(settings, image), service(settings), service_monitor(settings)]


def counters_configmap(settings: Settings) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(settings, f"{NAME}-counters", NAME),
            "data": {COUNTERS_KEY: dcgm_csv.render(settings)}}


def _container(image: str) -> dict[str, Any]:
    port = PORTS["dcgm"]
    return {
        "name": NAME,
        "image": image,
        "args": ["-f", f"{_COUNTERS_DIR}/{COUNTERS_KEY}", "-c", "5000"],
        "env": [
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "DCGM_EXPORTER_KUBERNETES", "value": "true"},
            {"name": "DCGM_EXPORTER_LISTEN", "value": f":{port}"},
        ],
        "ports": [{"name": "metrics", "containerPort": port, "protocol": "TCP"}],
        "securityContext": {"runAsNonRoot": False, "runAsUser": 0, "capabilities": {"add": ["SYS_ADMIN"]}},
        "readinessProbe": {"httpGet": {"path": "/health", "port": port}, "initialDelaySeconds": 30,
                           "periodSeconds": 30},
        "volumeMounts": [{"name": "counters", "mountPath": _COUNTERS_DIR, "readOnly": True},
                         {"name": "pod-resources", "mountPath": _POD_RESOURCES, "readOnly": True}],
    }


def daemonset(settings: Settings, image: str) -> dict[str, Any]:
    selector = {APP_LABEL: NAME}
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": metadata(settings, NAME, NAME),
        "spec": {
            "selector": {"matchLabels": selector},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": selector},
                "spec": {
                    "nodeSelector": dict(settings.kubernetes.gpu_node_selector),
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "priorityClassName": "system-node-critical",
                    "containers": [_container(image)],
                    "volumes": [
                        {"name": "counters", "configMap": {"name": f"{NAME}-counters"}},
                        {"name": "pod-resources", "hostPath": {"path": _POD_RESOURCES, "type": "Directory"}},
                    ],
                },
            },
        },
    }


def service(settings: Settings) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(settings, NAME, NAME),
            "spec": {"selector": {APP_LABEL: NAME}, "clusterIP": "None",
                     "ports": [{"name": "metrics", "port": PORTS["dcgm"], "targetPort": "metrics"}]}}


def service_monitor(settings: Settings) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": metadata(settings, NAME, NAME, monitor=True),
        "spec": {
            "selector": {"matchLabels": {APP_LABEL: NAME}},
            # 5 s collection, 15 s scrape: a fatal XID is in Prometheus within a scrape (as on bare metal).
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s",
                           "relabelings": host_relabelings(settings, settings.jobs.dcgm)}],
        },
    }
