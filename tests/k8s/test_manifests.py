"""k8s/ is valid offline: built-in kinds against the Kubernetes schemas (kubernetes-validate, strict), the
operator's kinds against their CRD schemas (tests/k8s/crds), each PrometheusRule spec with promtool, and
every object says what the bare-metal file it wraps says. The README's `kubectl apply -f` paths hold only
Kubernetes objects."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from llmobs import images, tools
from llmobs.k8s import ALERTMANAGER_FILE, DCGM_FILE, DCGM_IMAGE_VARIABLE, K8S_DIR
from llmobs.k8s.objects import ALERTMANAGER_CONFIG_KEY, DASHBOARD_LABEL

REPO = Path(__file__).resolve().parents[2]
CRDS = Path(__file__).parent / "crds"
KUBERNETES_VERSION = kubernetes_validate.latest_version()
# `kubectl apply` (client side) keeps the whole object in this annotation, which the API server caps.
LAST_APPLIED_LIMIT = 262_144


def _objects(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


MANIFESTS = sorted((REPO / K8S_DIR).rglob("*.yaml"))
OBJECTS = [(path.relative_to(REPO).as_posix(), item) for path in MANIFESTS for item in _objects(path)]


def _strict(schema: Any) -> Any:
    """The CRD schema rejecting unknown fields (kubectl's default field validation), not pruning them."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
        return schema
    return [_strict(item) for item in schema] if isinstance(schema, list) else schema


CRD_SCHEMAS = {(crd["apiVersion"], crd["kind"]): _strict(crd["schema"])
               for crd in (json.loads(path.read_text(encoding="utf-8")) for path in sorted(CRDS.glob("*.json")))}


def _by_kind(kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(path, item) for path, item in OBJECTS if item["kind"] == kind]


def _ids(items: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [f"{path}:{item['kind']}/{item['metadata']['name']}" for path, item in items]


def test_every_file_is_generated_and_holds_objects() -> None:
    assert len(MANIFESTS) >= 10, MANIFESTS
    assert {item["kind"] for _, item in OBJECTS} == {
        "ConfigMap", "DaemonSet", "Service", "ServiceMonitor", "PodMonitor", "PrometheusRule", "Secret"}


@pytest.mark.parametrize(("path", "item"), OBJECTS, ids=_ids(OBJECTS))
def test_object_is_valid(path: str, item: dict[str, Any]) -> None:
    key = (item["apiVersion"], item["kind"])
    if key in CRD_SCHEMAS:
        jsonschema.Draft7Validator(CRD_SCHEMAS[key]).validate(item)
    else:
        kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)
    assert item["metadata"]["namespace"] == "monitoring"
    assert len(json.dumps(item)) < LAST_APPLIED_LIMIT, f"{path}: too big for client-side `kubectl apply`"


def test_schemas_reject_what_the_api_server_would() -> None:
    """The schemas are not vacuous: a misspelt field and a wrong type are refused, built-in kind or CRD."""
    (_, daemonset), = _by_kind("DaemonSet")
    misspelt_daemonset = {**daemonset, "spec": {**daemonset["spec"], "updateStrategey": {}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt_daemonset, KUBERNETES_VERSION, strict=True)
    _, monitor = _by_kind("ServiceMonitor")[0]
    misspelt = {**monitor, "spec": {**monitor["spec"], "endpoint": monitor["spec"]["endpoints"]}}
    wrong_type = {**monitor, "spec": {**monitor["spec"], "endpoints": {"port": "metrics"}}}
    for bad in (misspelt, wrong_type):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft7Validator(CRD_SCHEMAS[("monitoring.coreos.com/v1", "ServiceMonitor")]).validate(bad)


RULES = _by_kind("PrometheusRule")


@pytest.mark.parametrize(("path", "item"), RULES, ids=_ids(RULES))
def test_prometheus_rule_spec_is_the_rule_file_and_promtool_accepts_it(path: str, item: dict[str, Any],
                                                                      tmp_path: Path) -> None:
    plain = REPO / "prometheus/rules" / f"{Path(path).stem}.yml"
    assert item["spec"] == yaml.safe_load(plain.read_text(encoding="utf-8"))
    promtool = next((t.path for t in tools.pinned() if t.name == "promtool" and t.path.is_file()), None)
    if promtool is None:
        pytest.skip(f"promtool is not in {tools.TOOLS_DIR} (`llmobs setup` unpacks it from Debian)")
    spec = tmp_path / "spec.yml"
    spec.write_text(yaml.safe_dump(item["spec"]), encoding="utf-8")
    checked = subprocess.run([str(promtool), "check", "rules", str(spec)], capture_output=True, text=True,
                             timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


DASHBOARDS = _by_kind("ConfigMap")


def test_dashboard_configmaps_carry_the_dashboards_for_the_sidecar() -> None:
    found = {}
    for _, item in DASHBOARDS:
        if item["metadata"]["labels"].get("grafana_dashboard"):
            assert DASHBOARD_LABEL.items() <= item["metadata"]["labels"].items()
            found.update(item["data"])
    committed = {path.name: path.read_text(encoding="utf-8") for path in (REPO / "grafana/dashboards").glob("*.json")}
    assert found == committed


def test_dcgm_exporter_runs_the_pinned_image_with_the_kit_counters() -> None:
    by_kind = {item["kind"]: item for item in _objects(REPO / DCGM_FILE)}
    container = by_kind["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == images.pins(REPO / "compose")[DCGM_IMAGE_VARIABLE]
    counters = (REPO / "compose/dcgm-exporter/counters.csv").read_text(encoding="utf-8")
    assert by_kind["ConfigMap"]["data"] == {"counters.csv": counters}
    counters_path = container["args"][container["args"].index("-f") + 1]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert counters_path == f"{mounts['counters']}/counters.csv"
    assert by_kind["Service"]["spec"]["selector"] == by_kind["DaemonSet"]["spec"]["selector"]["matchLabels"]
    selected = by_kind["ServiceMonitor"]["spec"]["selector"]["matchLabels"]
    assert selected.items() <= by_kind["Service"]["metadata"]["labels"].items()


def test_monitors_give_the_kit_host_label_and_job_names() -> None:
    for kind, job in (("ServiceMonitor", "dcgm"), ("PodMonitor", "vllm")):
        (_, monitor), = _by_kind(kind)
        endpoint = (monitor["spec"].get("endpoints") or monitor["spec"]["podMetricsEndpoints"])[0]
        targets = {r["targetLabel"]: r for r in endpoint["relabelings"]}
        assert targets["host"]["sourceLabels"] == ["__meta_kubernetes_pod_node_name"]
        assert targets["job"]["replacement"] == job


def test_alertmanager_secret_is_the_generated_configuration() -> None:
    (secret,) = _objects(REPO / ALERTMANAGER_FILE)
    assert secret["metadata"]["name"] == "alertmanager-main"
    config = yaml.safe_load(secret["stringData"][ALERTMANAGER_CONFIG_KEY])
    plain = yaml.safe_load((REPO / "alertmanager/alertmanager.yml").read_text(encoding="utf-8"))
    assert config["templates"] == ["/etc/alertmanager/config/*.tmpl"]
    assert {k: v for k, v in config.items() if k != "templates"} == {k: v for k, v in plain.items() if k != "templates"}
    templates = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "alertmanager/templates").glob("*.tmpl")}
    assert {k: v for k, v in secret["stringData"].items() if k != ALERTMANAGER_CONFIG_KEY} == templates


def test_readme_kubectl_commands_apply_only_kubernetes_objects() -> None:
    """Each `kubectl apply -f PATH` of the README names generated files, and kubectl (which reads every
    .yaml, .yml and .json of a directory) finds nothing there that is not a Kubernetes object."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    paths = re.findall(r"^kubectl apply -f (\S+)", readme, re.MULTILINE)  # the commands, not the prose
    assert paths == ["k8s/dcgm-exporter.yaml", "k8s/prometheus/rules/", "k8s/grafana/dashboards/",
                     "k8s/alertmanager.yaml"], paths
    for path in paths:
        target = REPO / path
        files = sorted(p for p in target.rglob("*") if p.suffix in {".yaml", ".yml", ".json"}) if target.is_dir() \
            else [target]
        assert files, path
        for file in files:
            for item in _objects(file):
                assert {"apiVersion", "kind", "metadata"} <= item.keys(), file
