"""site.yml against the example inventory: syntax, and bad input stopping the play before any host
is contacted, naming the variable and what is expected.

The example's hosts do not exist; every SSH connection is made to fail at once (a ProxyCommand that
exits), so a run that gets past the checks stops as UNREACHABLE. A bad-input run must fail in the first
play, never reach a host (no UNREACHABLE), and name the variable.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
EXAMPLE = REPO / "inventories" / "example"
VAULT_PASSWORD = EXAMPLE / "vault-password.txt"
UNREACHABLE_HOSTS = {"ansible_ssh_common_args": "-o ProxyCommand=false -o BatchMode=yes"}
FIRST_LATER_PLAY = "PLAY [Check the NVIDIA driver stack of the GPU hosts]"


def run_site(inventory: Path, extra_vars: dict | None = None, *args: str,
             cwd: Path = REPO) -> subprocess.CompletedProcess:
    """site.yml of `cwd` (the repository's, or a test's playbook beside its own ansible.cfg)."""
    command = [PLAYBOOK, "-i", str(inventory), "site.yml", "--vault-password-file", str(VAULT_PASSWORD),
               "-e", json.dumps({**UNREACHABLE_HOSTS, **(extra_vars or {})}), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "NO_COLOR": "1",
                               # The filter plugins import the llmobs package of this checkout.
                               "PYTHONPATH": str(REPO / "src"),
                               "ANSIBLE_NOCOLOR": "1", "HOME": str(Path.home())})


def ha_inventory(tmp: Path) -> Path:
    """A copy of the example inventory with a second monitoring host: an HA pair."""
    copy = tmp / "inventory"
    shutil.copytree(EXAMPLE, copy)
    hosts = yaml.safe_load((copy / "hosts.yml").read_text())
    hosts["all"]["children"]["monitoring"]["hosts"]["mon-02"] = {"ansible_host": "10.20.0.11"}
    (copy / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return copy


def inventory_without(tmp: Path, group_file: str, variable: str) -> Path:
    """A copy of the example inventory with `variable` removed from group_vars/<group_file>."""
    copy = tmp / "inventory"
    shutil.copytree(EXAMPLE, copy)
    path = copy / "group_vars" / group_file
    data = yaml.safe_load(path.read_text())
    del data[variable]
    path.write_text(yaml.safe_dump(data))
    return copy


@pytest.mark.parametrize("inventory", ["lab", "example"])
def test_syntax_check(inventory: str) -> None:
    done = subprocess.run([PLAYBOOK, "--syntax-check", "-i", f"inventories/{inventory}", "site.yml"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


# (case id, extra vars, variable the error must name, what it must say)
BAD_INPUT = [
    ("wrong type", {"node_exporter_port": "nine thousand"}, "node_exporter_port", "unable to convert to int"),
    ("unknown GPU model", {"gpu_preflight_expected_model": "H200-NVL"}, "gpu_preflight_expected_model",
     "H100-SXM"),
    ("malformed endpoint", {"vllm_endpoints": [{"model": "llama", "port": 70000, "gpus": [0]}]},
     "vllm_endpoints[0].port", "less than or equal to 65535"),
    ("endpoint without GPUs", {"vllm_endpoints": [{"model": "llama", "port": 8000}]},
     "vllm_endpoints[0].gpus", "Field required"),
    ("threshold out of range", {"llmobs_settings": {"thresholds": {"kv_cache_usage_warning": 1.5}}},
     "llmobs_settings.thresholds.kv_cache_usage_warning", "less than or equal to 1"),
    ("latency target off the buckets", {"llmobs_settings": {"slo": {"defaults": {"ttft_seconds": 0.7}}}},
     "slo.defaults.ttft_seconds", "not a bucket boundary"),
    ("missing receiver secret", {"alertmanager_secrets": {"SLACK_API_URL": "https://hooks.slack.com/x"}},
     "PAGERDUTY_ROUTING_KEY", "add PAGERDUTY_ROUTING_KEY to alertmanager_secrets"),
    ("weak Grafana password", {"grafana_admin_password": "admin"}, "grafana_admin_password", "at least 12"),
    ("store on no monitoring host", {"llmobs_store": {"host": "mon-09"}}, "llmobs_store.host",
     "is not a monitoring host"),
    ("node keep-list opt-out misspelt", {"prometheus_node_keep": "everything"}, "prometheus_node_keep",
     "must be one of: read, all"),
]


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess]:
    """Every bad-input run and the missing-password run, four at a time."""
    missing_password = inventory_without(tmp_path_factory.mktemp("no-password"), "monitoring.yml",
                                         "grafana_admin_password")
    jobs = {case: (EXAMPLE, extra) for case, extra, _, _ in BAD_INPUT}
    jobs["missing Grafana password"] = (missing_password, {})
    jobs["HA pair on loopback"] = (ha_inventory(tmp_path_factory.mktemp("ha")), {})
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {case: pool.submit(run_site, inventory, extra) for case, (inventory, extra) in jobs.items()}
        return {case: future.result() for case, future in futures.items()}


@pytest.mark.parametrize(("case", "variable", "expected"),
                         [(case, variable, expected) for case, _, variable, expected in BAD_INPUT]
                         + [("missing Grafana password", "grafana_admin_password", "missing required arguments"),
                            ("HA pair on loopback", "alertmanager_listen_address", "cannot reach each other")],
                         ids=[case for case, *_ in BAD_INPUT] + ["missing Grafana password", "HA pair on loopback"])
def test_bad_input_stops_before_any_host_is_contacted(bad_input_runs, case: str, variable: str,
                                                     expected: str) -> None:
    done = bad_input_runs[case]
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert variable in output and expected in output, output[-5000:]
    assert "UNREACHABLE" not in output and FIRST_LATER_PLAY not in output, "a host was contacted:\n" + output[-3000:]


def test_secrets_never_reach_the_output(bad_input_runs) -> None:
    secrets = yaml.safe_load(subprocess.run(
        [str(Path(sys.executable).with_name("ansible-vault")), "view", "--vault-password-file", str(VAULT_PASSWORD),
         str(EXAMPLE / "group_vars" / "all" / "vault.yml")], capture_output=True, text=True, check=True).stdout)
    for case, done in bad_input_runs.items():
        for name, value in secrets.items():
            assert value not in done.stdout + done.stderr, f"{name} appears in the output of the {case!r} run"


def on_private_addresses(tmp: Path) -> tuple[Path, dict]:
    """The HA pair with the long-term store on mon-01 (the victoria_metrics role's checks run there)."""
    return ha_inventory(tmp), {"prometheus_listen_address": "{{ ansible_host }}",
                               "alertmanager_listen_address": "{{ ansible_host }}",
                               "victoria_metrics_listen_address": "{{ ansible_host }}",
                               "llmobs_store": {"host": "mon-01", "retention": "90d"}}


@pytest.mark.parametrize("inventory", [lambda tmp: (EXAMPLE, {}), on_private_addresses], ids=["example", "HA pair"])
def test_example_inventory_passes_the_checks(inventory, tmp_path: Path) -> None:
    done = run_site(*inventory(tmp_path))
    output = done.stdout + done.stderr
    # The checks pass, then the (unreachable) hosts are contacted.
    assert FIRST_LATER_PLAY in output and "UNREACHABLE" in output, output[-5000:]
    first_play = output.split(FIRST_LATER_PLAY)[0]
    assert "FAILED" not in first_play and "fatal" not in first_play, first_play[-5000:]
