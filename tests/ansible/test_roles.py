"""llmobs.roles: what compose_service, the prometheus and alertmanager roles and site.yml compute from
inventory data (each checked against the Jinja it replaced), and the role READMEs it generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bcrypt
import pytest
import yaml

from llmobs import deploy, roles
from llmobs.errors import ConfigError
from llmobs.settings import load_settings
from llmobs.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "compose" / "services"


class HostVars(dict):
    """hostvars as the filters see it: a mapping of hosts to mappings that template on access; a read of
    a variable the filter does not need fails the test."""

    def __init__(self, hosts: dict[str, dict], needed: set[str]):
        super().__init__({name: _Vars(variables, needed) for name, variables in hosts.items()})


class _Vars(dict):
    def __init__(self, variables: dict, needed: set[str]):
        super().__init__(variables)
        self.needed = needed

    def __getitem__(self, key: str):
        assert key in self.needed, f"read {key}, which no InventoryHost field needs"
        return super().__getitem__(key)


READ = {*roles.HOST_VARIABLES.values(), "ansible_host", "alertmanager_cluster_advertise_address"}


def test_inventory_hosts_read_each_host_variable_of_the_one_map() -> None:
    hostvars = HostVars({
        "mon-01": {"ansible_host": "10.0.0.10", "grafana_running": False, "unrelated": "{{ undefined }}",
                   "endpoint_prober_enabled": True, "otel_collector_running": True},
        "gpu-a01": {"ansible_host": "10.0.1.11", "llmobs_scrape_address": "gpu-a01.dc", "node_exporter_port": 9101,
                    "llmobs_host_labels": {"rack": "a"}, "dcgm_exporter_scrape_address": "10.9.9.9",
                    "vllm_endpoints": [{"model": "llama", "port": 8000, "gpus": [0, 1]}],
                    "llmobs_endpoints": [{"engine": "sglang", "model": "qwen", "port": 30000, "gpus": [2]}],
                    "gpu_preflight_expected_gpu_count": 8},
        "gpu-a02": {},
    }, READ)
    hosts = roles.inventory_hosts(hostvars, ["gpu-a01", "gpu-a02"], ["mon-01"])
    assert [h["name"] for h in hosts] == ["gpu-a01", "gpu-a02", "mon-01"]
    gpu, bare, mon = hosts
    assert gpu == {"name": "gpu-a01", "address": "gpu-a01.dc", "gpu": True, "monitoring": False, "grafana": True,
                   "prober": False, "otelcol": False, "labels": {"rack": "a"}, "exporters": None,
                   "vllm_endpoints": [{"model": "llama", "port": 8000, "gpus": [0, 1]}],
                   "endpoints": [{"engine": "sglang", "model": "qwen", "port": 30000, "gpus": [2]}], "gpu_count": 8,
                   "ports": {"node": 9101, "dcgm": None, "prometheus": None, "alertmanager": None, "grafana": None,
                             "prober": None, "otelcol": None},
                   "addresses": {"node": None, "dcgm": "10.9.9.9"}}
    assert bare["address"] == "gpu-a02" and bare["labels"] == {} and bare["vllm_endpoints"] == bare["endpoints"] == []
    assert bare["gpu_count"] is None
    assert mon["address"] == "10.0.0.10" and mon["grafana"] is False and mon["monitoring"] and not mon["gpu"]
    assert mon["prober"] is True and not bare["prober"]
    assert mon["otelcol"] is True and not bare["otelcol"]
    # What the filter builds is what deploy validates; the prober of mon-01 is scraped where it runs.
    assert [h.name for h in deploy._validated_hosts(hosts)] == ["gpu-a01", "gpu-a02", "mon-01"]
    prober_targets = deploy.prometheus_files({}, hosts, "mon-01")["targets/prober.yml"]
    assert "- endpoint-prober:9469" in prober_targets and "host: mon-01" in prober_targets
    # The Collector's own metrics, where the otel_collector role runs it.
    collector_targets = deploy.prometheus_files({}, hosts, "mon-01")["targets/otelcol.yml"]
    assert "- otel-collector:8888" in collector_targets and "host: mon-01" in collector_targets


def test_a_host_in_both_groups_is_listed_once() -> None:
    hosts = roles.inventory_hosts(HostVars({"box": {}}, READ), ["box"], ["box"])
    assert len(hosts) == 1 and hosts[0]["gpu"] and hosts[0]["monitoring"]


@pytest.mark.parametrize(("field", "variable"), [
    ("address", "llmobs_scrape_address"), ("ports.node", "node_exporter_port"),
    ("addresses.dcgm", "dcgm_exporter_scrape_address"), ("vllm_endpoints[0].gpus", "vllm_endpoints[0].gpus"),
    ("labels.rack", "llmobs_host_labels.rack"), ("exporters[0]", "llmobs_exporters[0]"),
])
def test_rejected_fields_are_named_by_their_host_variable(field: str, variable: str) -> None:
    assert roles.host_variable(field) == variable


def test_every_inventory_host_field_has_its_variable() -> None:
    fields = set(deploy.InventoryHost.model_fields) - {"name", "gpu", "monitoring", "ports", "addresses"}
    mapped = {field.split(".")[0] for field in roles.HOST_VARIABLES}
    assert fields | {"ports", "addresses"} == mapped


def test_alertmanager_peers_are_reached_at_the_address_they_advertise() -> None:
    hostvars = HostVars({"mon-02": {"ansible_host": "10.0.0.11"},
                         "mon-03": {"alertmanager_cluster_advertise_address": "192.168.0.3", "ansible_host": "x"},
                         "mon-04": {}}, READ)
    assert roles.alertmanager_peer_flags(hostvars, ["mon-02", "mon-03", "mon-04"], 9094) == [
        "--cluster.peer=10.0.0.11:9094", "--cluster.peer=192.168.0.3:9094", "--cluster.peer=mon-04:9094"]


def service(**overrides) -> dict:
    """compose_service_args of a role, over compose_service's defaults (roles/compose_service/vars/main.yml)."""
    defaults = yaml.safe_load((REPO / "roles/compose_service/vars/main.yml").read_text())["__compose_service_defaults"]
    return {**defaults, "name": "prometheus", "definition": str(SERVICES / "prometheus.yaml"),
            "dir": "/opt/llmobs/prometheus", "config_mount": "/etc/prometheus", **overrides}


WEB = {"tls_cert": "", "tls_key": "", "basic_auth_users": {"admin": "s3cret-password"}}


def test_override_adds_the_web_flag_between_the_roles_flags_and_the_sites() -> None:
    override = roles.compose_service_override(service(flags=["--storage.tsdb.retention.size=1GB"],
                                                      extra_args=["--log.level=debug"], web=WEB, network="mol"))
    command = override["services"]["prometheus"]["command"]
    defined = yaml.safe_load((SERVICES / "prometheus.yaml").read_text())["services"]["prometheus"]["command"]
    assert command == [*defined, "--storage.tsdb.retention.size=1GB", "--web.config.file=/etc/prometheus/web.yml",
                       "--log.level=debug"]
    assert "volumes" not in override["services"]["prometheus"], "the service file mounts config/ already"
    assert override["networks"] == {"default": {"name": "mol", "external": True}}


def test_override_without_flags_leaves_the_service_files_command() -> None:
    assert roles.compose_service_override(service()) == {
        "services": {"prometheus": {}}, "networks": {"default": {"name": "llmobs", "external": True}}}


def test_override_of_a_string_command_and_the_callers_own_keys() -> None:
    ports = ["0.0.0.0:9094:9094/tcp"]
    override = roles.compose_service_override(service(
        name="alertmanager", definition=str(SERVICES / "alertmanager.yaml"), config_mount="/etc/alertmanager",
        flags=["--data.retention=120h"], override={"services": {"alertmanager": {"ports": ports}}}))
    entry = override["services"]["alertmanager"]
    assert list(entry) == ["command", "ports"] and entry["ports"] == ports
    assert entry["command"].endswith("--cluster.listen-address=} --data.retention=120h")


def test_override_mounts_the_web_config_where_the_service_file_does_not() -> None:
    override = roles.compose_service_override(service(
        name="dcgm-exporter", definition=str(SERVICES / "dcgm-exporter.yaml"), dir="/opt/dcgm",
        config_mount="/etc/dcgm-exporter/llmobs", web_flag="--web-config-file", web=WEB,
        override={"services": {"dcgm-exporter": {"network_mode": "host"}}}))
    entry = override["services"]["dcgm-exporter"]
    assert entry["command"][-1] == "--web-config-file=/etc/dcgm-exporter/llmobs/web.yml"
    assert entry["volumes"] == ["/opt/dcgm/config:/etc/dcgm-exporter/llmobs:ro"]
    assert list(entry) == ["command", "volumes", "network_mode"]


def test_secret_files_hold_the_sites_secrets_and_the_web_config() -> None:
    files = roles.compose_service_secret_files(service(
        secret_files={"secrets/scrape-node-password": "p"}, secrets={"remote-write-password": "rw"},
        web={"tls_cert": "CERT", "tls_key": "KEY", "basic_auth_users": {"admin": "s3cret-password"}}), "mon-01")
    assert set(files) == {"secrets/scrape-node-password", "secrets/remote-write-password", "web.yml",
                          "tls/server.crt", "tls/server.key"}
    web = yaml.safe_load(files["web.yml"])
    assert web["tls_server_config"] == {"cert_file": "/etc/prometheus/tls/server.crt",
                                        "key_file": "/etc/prometheus/tls/server.key"}
    digest = web["basic_auth_users"]["admin"]
    assert bcrypt.checkpw(b"s3cret-password", digest.encode()) and "s3cret-password" not in files["web.yml"]
    again = roles.compose_service_secret_files(service(web=WEB), "mon-01")
    other_host = roles.compose_service_secret_files(service(web=WEB), "mon-02")
    assert yaml.safe_load(again["web.yml"])["basic_auth_users"]["admin"] == digest, "a second run changes nothing"
    assert yaml.safe_load(other_host["web.yml"])["basic_auth_users"]["admin"] != digest


def test_bcrypt_hashes_are_those_ansible_password_hash_made() -> None:
    """Hosts deployed before this package wrote web.yml keep their file (no reload on upgrade)."""
    playbook = Path(sys.executable).with_name("ansible")
    done = subprocess.run([str(playbook), "localhost", "-c", "local", "-m", "ansible.builtin.debug", "-a",
                           "msg={{ 'pw-1' | password_hash('bcrypt', salt=('mon-01' | hash('sha256'))[:22]) }}"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert roles._bcrypt("pw-1", "mon-01") in done.stdout


def test_no_web_config_without_tls_or_basic_auth() -> None:
    assert roles.compose_service_secret_files(service(web={"tls_cert": "", "basic_auth_users": {}}), "h") == {}
    assert roles.compose_service_validators(service(web_validator=["/bin/promtool", "check", "web-config"])) == []


def test_the_web_config_is_validated_where_the_image_has_a_checker() -> None:
    check = {"entrypoint": "/bin/promtool", "args": ["check", "config", "/etc/prometheus/prometheus.yml"]}
    validators = roles.compose_service_validators(service(validate=[check], web=WEB,
                                                          web_validator=["/bin/promtool", "check", "web-config"]))
    assert validators == [check, {"entrypoint": "/bin/promtool",
                                  "args": ["check", "web-config", "/etc/prometheus/web.yml"]}]


def test_the_api_is_called_as_the_first_basic_auth_user_unless_the_caller_says() -> None:
    api = {"url": "http://prometheus:9090", "ready_path": "/-/ready"}
    users = {"tls_cert": "", "basic_auth_users": {"first": "p1", "second": "p2"}}
    assert roles.compose_service_api(service(api=api, web=users)) == {**api, "username": "first", "password": "p1"}
    own = {**api, "username": "admin", "password": "grafana-pw"}
    assert roles.compose_service_api(service(api=own, web=users)) == own
    assert roles.compose_service_api(service(api=api)) == api


def test_env_file_lines_sorted_and_quoted() -> None:
    assert roles.compose_env_file({"B": 9090, "A_IMAGE": "prom/prometheus:v3", "c": True}, "prometheus") == (
        "A_IMAGE='prom/prometheus:v3'\nB='9090'\nc='True'\n")
    assert roles.compose_env_file({}, "x") == ""


def test_env_values_a_env_file_cannot_carry_are_refused_by_name_never_shown() -> None:
    with pytest.raises(ConfigError) as error:
        roles.compose_env_file({"GRAFANA_ADMIN_PASSWORD": "it's-secret", "OK": "fine", "TWO": "a\nb"}, "grafana")
    message = str(error.value)
    assert "GRAFANA_ADMIN_PASSWORD (the .env of grafana)" in message and "TWO (the .env of grafana)" in message
    assert "OK" not in message
    assert "it's-secret" not in message and "single quote or a line break" in message


def test_argument_spec_without_defaults_keeps_everything_else() -> None:
    options = {"x_port": {"type": "int", "default": 9100, "description": "d"}, "x_name": {"type": "str"}}
    assert roles.argument_spec_without_defaults(options) == {"x_port": {"type": "int", "description": "d"},
                                                            "x_name": {"type": "str"}}


def test_every_role_gets_a_readme_naming_each_of_its_variables() -> None:
    readmes = roles.role_readmes(load_settings(None), Workspace(REPO))
    specs = sorted(REPO.glob("roles/*/meta/argument_specs.yml"))
    assert set(readmes) == {f"roles/{spec.parent.parent.name}/README.md" for spec in specs}
    for spec in specs:
        text = readmes[f"roles/{spec.parent.parent.name}/README.md"]
        for name in yaml.safe_load(spec.read_text())["argument_specs"]["main"]["options"]:
            assert f"| `{name}` |" in text, f"{spec}: {name} is not in the README"
        assert "C(" not in text and "O(" not in text, "ansible-doc markup left in the README"
    assert "| `compose_service_args.web.basic_auth_users` |" in readmes["roles/compose_service/README.md"]
    assert "| `network` |" in readmes["roles/compose_service/README.md"], "entry points are listed"
