"""The preflight's verdicts as node_exporter textfile metrics, and the gpu-host-stack alerts they raise:
a fleet of recorded hosts (tests/fixtures/nvidia-smi), some regressed, through the real promtool."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from gpu_recordings import FIXTURES, HOSTS, probe, settings
from prometheus_client.parser import text_string_to_metric_families

from llmobs import catalog as catalog_mod
from llmobs import tools
from llmobs.preflight import judge, plan, textfile
from llmobs.rules import render_rule_files
from llmobs.settings import load_settings

REGRESSION_ALERTS = ("GpuPersistenceModeOff", "GpuFabricManagerDown", "GpuDriverVersionDrift",
                     "GpuPreflightRowRemapPending")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _report(host_probe: dict[str, Any], host: str) -> dict[str, Any]:
    return judge(host_probe, plan(settings()), host)


@pytest.mark.parametrize("host", HOSTS)
def test_each_recorded_host_becomes_metrics_the_catalog_names(host: str) -> None:
    report = _report(probe(host), host)
    samples = _samples(textfile.render(report))
    assert {name for name, _ in samples} <= set(textfile.NAMES)
    assert set(textfile.NAMES) <= {m.name for m in catalog_mod.load().metrics}
    verdicts = {dict(labels)["check"]: dict(labels)["verdict"] for name, labels in samples if name == textfile.CHECK}
    assert verdicts == report["verdicts"]
    assert samples[(textfile.GPUS, ())] == report["gpu_count"]


def test_recorded_h100_hgx_values() -> None:
    samples = _samples(textfile.render(_report(probe("h100-sxm-hgx"), "h100")))
    assert samples[(textfile.NVSWITCHES, ())] == 4
    assert samples[(textfile.FABRIC_MANAGER_RUNNING, ())] == 1
    assert samples[(textfile.PERSISTENCE_MODE_OFF_GPUS, ())] == 0
    assert samples[(textfile.ROW_REMAP_PENDING_GPUS, ())] == 0
    assert samples[(textfile.DRIVER_INFO, (("driver_version", "535.183.01"),))] == 1


def _fleet() -> dict[str, dict[str, Any]]:
    """Three recorded H100 HGX hosts (one intact, one without its fabric manager, one with the A10's pending
    row remap) and the recorded A100 HGX, whose persistence mode is off and whose driver (535.129.03) is
    not the fleet's (535.183.01)."""
    h100 = probe("h100-sxm-hgx")
    no_fabric_manager = {**copy.deepcopy(h100), "fabricmanager_pids": []}
    remap_pending = copy.deepcopy(h100)
    remap_pending["nvidia_smi_q"]["stdout"] = (FIXTURES / "extra" / "a10-remap-pending-q.txt").read_text()
    return {"gpu-h100-a": h100, "gpu-h100-b": no_fabric_manager, "gpu-h100-c": remap_pending,
            "gpu-a100": probe("a100-sxm4-hgx")}


def _input_series(fleet: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """Each host's textfile as node_exporter serves it: with the scrape's job, instance and host labels."""
    series = []
    for host, host_probe in fleet.items():
        for (name, labels), value in _samples(textfile.render(_report(host_probe, host))).items():
            full = {**dict(labels), "job": "node", "instance": f"{host}:9100", "host": host}
            text = ", ".join(f'{key}="{val}"' for key, val in full.items())
            series.append({"series": f"{name}{{{text}}}", "values": f"{value:g}x15"})
    return series


def test_a_regressed_nvidia_stack_raises_its_alert_on_that_host_only(tmp_path: Path) -> None:
    promtool = next((t.path for t in tools.pinned() if t.name == "promtool" and t.path.is_file()), None)
    if promtool is None:
        pytest.skip(f"promtool is not in {tools.TOOLS_DIR} (`llmobs setup` unpacks it from Debian)")
    (tmp_path / "alerts.yml").write_text(render_rule_files(load_settings())["alerts.yml"], encoding="utf-8")
    firing = f'ALERTS{{alertstate="firing", alertname=~"{"|".join(REGRESSION_ALERTS)}"}}'
    expected = [("GpuDriverVersionDrift", "gpu-a100"), ("GpuFabricManagerDown", "gpu-h100-b"),
                ("GpuPersistenceModeOff", "gpu-a100"), ("GpuPreflightRowRemapPending", "gpu-h100-c")]
    test = {"rule_files": ["alerts.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": _input_series(_fleet()),
        "promql_expr_test": [
            {"expr": f"count by (alertname, host) ({firing})", "eval_time": "10m",
             "exp_samples": [{"labels": f'{{alertname="{alert}", host="{host}"}}', "value": 1}
                             for alert, host in expected]},
            # Within the alerts' `for` (5m) nothing fires yet.
            {"expr": f"count({firing})", "eval_time": "3m", "exp_samples": []},
        ]}]}
    (tmp_path / "preflight.test.yml").write_text(yaml.safe_dump(test, sort_keys=False), encoding="utf-8")
    result = subprocess.run([str(promtool), "test", "rules", "preflight.test.yml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
