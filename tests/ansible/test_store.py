"""The long-term store option (llmobs.store): what the filters render for an HA pair writing to one store,
checked with the real promtool; the store running under faults is tests/ha."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from llmobs import deploy, images
from llmobs.dashboards.provisioning import STORE_UID

MON1 = {"name": "mon-01", "address": "10.0.0.10", "gpu": False, "monitoring": True}
MON2 = {"name": "mon-02", "address": "10.0.0.11", "gpu": False, "monitoring": True}
GPU1 = {"name": "gpu-a01", "address": "10.0.1.11", "gpu": True, "monitoring": False,
        "vllm_endpoints": [{"model": "llama", "port": 8000, "gpus": [0]}]}
MIMIR = {"url": "https://mimir.example/api/v1/push"}


def _remote_write(me: str) -> list[dict]:
    options = {"replica": {"replica": me}, "remote_write": [MIMIR],
               "store": {"host": "mon-01", "queue_config": {"max_backoff": "5s"}}}
    files = deploy.prometheus_files({}, [MON1, MON2, GPU1], me, options)
    return yaml.safe_load(files["prometheus.yml"])["remote_write"]


def test_both_replicas_write_the_same_series_to_the_store_and_their_replica_elsewhere() -> None:
    on_store_host, on_other = _remote_write("mon-01"), _remote_write("mon-02")
    assert on_store_host[1] == {"name": "llmobs-store", "url": "http://victoria-metrics:8428/api/v1/write",
                                "queue_config": {"max_backoff": "5s"}}
    assert on_other[1]["url"] == "http://10.0.0.10:8428/api/v1/write"
    assert "write_relabel_configs" not in on_other[1], "the store deduplicates identical series: no replica"
    assert on_other[0]["write_relabel_configs"][0]["replacement"] == "mon-02", "Mimir tells the pair apart"


def test_the_rendered_configuration_passes_promtool(tmp_path: Path) -> None:
    if not shutil.which("promtool"):
        pytest.skip("promtool is not installed (run `llmobs setup`)")
    files = deploy.prometheus_files({}, [MON1, MON2, GPU1], "mon-02", {"store": {"host": "mon-01"}})
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    result = subprocess.run(["promtool", "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_store_deduplicates_at_the_shortest_scrape_interval() -> None:
    assert deploy.store_environment({"host": "mon-01", "retention": "90d"}) == {
        "LLMOBS_STORE_RETENTION": "90d", "LLMOBS_STORE_DEDUP": "10s", "LLMOBS_STORE_PORT": "8428"}
    slower = {"scrape_interval": "30s", "job_intervals": {}}
    assert deploy.store_environment({"host": "mon-01"}, slower)["LLMOBS_STORE_DEDUP"] == "30s"


def test_grafana_gets_the_store_as_a_datasource_of_the_dashboards() -> None:
    files = deploy.grafana_files({}, {"store_url": "http://mon-01:8428", "default_datasource": "store"})
    sources = yaml.safe_load(files["provisioning/datasources/llmobs.yaml"])["datasources"]
    store = next(source for source in sources if source["uid"] == STORE_UID)
    assert store["url"] == "http://mon-01:8428" and store["isDefault"] and store["type"] == "prometheus"
    assert [source["name"] for source in sources if source.get("isDefault")] == ["Long-term store"]


def test_the_store_image_is_pinned_with_its_debian_stand_in() -> None:
    pinned = images.pins()["VICTORIA_METRICS_IMAGE"]
    package, = images.standin_packages()["VICTORIA_METRICS_IMAGE"]
    assert pinned.startswith("victoriametrics/victoria-metrics:v1.112.")
    assert (package.suite, package.name, package.upstream_version) == ("trixie", "victoria-metrics", "1.112.0")
