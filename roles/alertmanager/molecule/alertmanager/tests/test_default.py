"""The alertmanager role's result, checked from inside the monitoring "server"."""

import json
import time

ALERTMANAGER = "http://alertmanager:9093"
SINK = "http://llmobs-mol-alertmanager-sink:9095/alerts"
CONTAINER = "llmobs-mol-alertmanager-alertmanager-alertmanager-1"


def test_container_runs_as_non_root(host):
    assert host.docker(CONTAINER).is_running
    assert host.check_output(f"docker exec {CONTAINER} id -u") != "0"


def test_live_configuration_and_templates_are_valid(host):
    result = host.run(f"docker exec {CONTAINER} amtool check-config /etc/alertmanager/alertmanager.yml")
    assert result.rc == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "1 templates" in result.stdout, result.stdout


def test_runs_alone_without_a_cluster(host):
    status = json.loads(host.check_output(f"curl -sf {ALERTMANAGER}/api/v2/status"))
    assert status["cluster"]["status"] == "disabled"
    assert "receiver: sink" in status["config"]["original"]


def test_a_critical_alert_reaches_the_webhook_receiver(host):
    alert = [{"labels": {"alertname": "MoleculeProbe", "severity": "critical", "host": "llmobs-mol-alertmanager"},
              "annotations": {"summary": "probe from the molecule verifier"}}]
    host.check_output(f"curl -sf -X POST -H 'Content-Type: application/json' -d '{json.dumps(alert)}' "
                      f"{ALERTMANAGER}/api/v2/alerts")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        received = json.loads(host.check_output(f"curl -sf {SINK}"))
        names = [a["labels"]["alertname"] for n in received for a in n["alerts"]]
        if "MoleculeProbe" in names:
            break
        time.sleep(2)
    assert "MoleculeProbe" in names, received
