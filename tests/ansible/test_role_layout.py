"""The roles share one layout, as prometheus-community's do: the same shape of tasks/main.yml (checks,
configure, run, remove), the same tags, compose_service called one way and only by the kit's roles.
(Argument specs and defaults: test_role_specs.py; the generated READMEs: `llmobs generate --check`.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = sorted(path.name for path in (REPO / "roles").iterdir() if (path / "tasks" / "main.yml").exists())
TAGGED = [role for role in ROLES if role != "compose_service"]  # compose_service runs under its caller's tags
SERVICE_ROLES = ["prometheus", "alertmanager", "grafana", "node_exporter", "dcgm_exporter", "victoria_metrics"]


def _main_tasks(role: str) -> list[dict]:
    return yaml.safe_load((REPO / "roles" / role / "tasks" / "main.yml").read_text())


def _compose_service_calls(role: str) -> list[dict]:
    return [task for task in _main_tasks(role)
            if (task.get("ansible.builtin.import_role") or task.get("ansible.builtin.include_role") or {}).get("name")
            == "compose_service"]


@pytest.mark.parametrize("role", TAGGED)
def test_every_task_carries_the_role_and_its_phase(role: str) -> None:
    allowed = {role, f"{role}_configure", f"{role}_run"}
    for task in _main_tasks(role):
        tags = set(task.get("tags", []))
        if tags == {"always"}:  # docker_host's facts, which every phase needs
            continue
        assert role in tags and tags <= allowed, f"{role}: {task['name']!r} has tags {sorted(tags)}"
        assert tags & {f"{role}_configure", f"{role}_run"} or task["name"].startswith("Remove"), (
            f"{role}: {task['name']!r} belongs to no phase")


def test_compose_service_has_no_tags_of_its_own() -> None:
    for path in (REPO / "roles" / "compose_service" / "tasks").glob("*.yml"):
        assert "tags:" not in path.read_text(), f"{path.name}: compose_service runs under its caller's tags"


@pytest.mark.parametrize("role", SERVICE_ROLES)
def test_service_roles_have_the_anchors_shape(role: str) -> None:
    """Checks -> configure -> run -> apply -> remove, each step one compose_service entry point."""
    tasks = _main_tasks(role)
    assert tasks[0].get("ansible.builtin.import_tasks") == "validate.yml", f"{role}: the checks come first"
    calls = _compose_service_calls(role)
    entries = [(task.get("ansible.builtin.import_role") or task["ansible.builtin.include_role"])["tasks_from"]
               for task in calls]
    assert entries[:2] == ["config", "run"] and entries[-1] == "absent" and set(entries[2:-1]) <= {"reload", "restart"}
    # The remove step is included: a run that deploys skips it as one task, not each of its tasks.
    assert all("ansible.builtin.import_role" in task for task in calls[:-1]), f"{role}: the deploy steps are imported"
    include = calls[-1].get("ansible.builtin.include_role")
    assert include and include.get("apply") == {"tags": [role]}, f"{role}: the remove step is included, tagged {role}"
    assert len(tasks) <= 7, f"{role}: tasks/main.yml should only sequence the phases"


@pytest.mark.parametrize("role", SERVICE_ROLES)
def test_service_roles_pass_compose_service_one_mapping_from_vars(role: str) -> None:
    """compose_service_args, whole, from vars/main.yml: role vars are visible play-wide, so a
    compose_service_* variable one role set would reach the next role's call."""
    for task in _compose_service_calls(role):
        assert task["vars"] == {"compose_service_args": f"{{{{ __{role}_compose_service }}}}"}, task["name"]
    described = yaml.safe_load((REPO / "roles" / role / "vars" / "main.yml").read_text())[f"__{role}_compose_service"]
    spec = yaml.safe_load((REPO / "roles/compose_service/meta/argument_specs.yml").read_text())
    keys = spec["argument_specs"]["config"]["options"]["compose_service_args"]["options"]
    assert set(described) <= set(keys), f"{role}: unknown compose_service_args keys {set(described) - set(keys)}"
    leaked = [path for path in (REPO / "roles" / role).rglob("*.yml") if "compose_service_" in
              path.read_text().replace("compose_service_args", "").replace("compose_service_results", "")]
    assert not leaked, f"{role}: compose_service variables set outside compose_service_args: {leaked}"


def test_compose_service_entry_points_start_with_the_guard() -> None:
    spec = yaml.safe_load((REPO / "roles/compose_service/meta/argument_specs.yml").read_text())["argument_specs"]
    for entry in spec:
        first = yaml.safe_load((REPO / "roles/compose_service/tasks" / f"{entry}.yml").read_text())[0]
        assert first.get("ansible.builtin.import_tasks") == "internal.yml", f"{entry}.yml does not start with the guard"


def test_compose_service_refuses_a_play_that_calls_it_directly(tmp_path: Path) -> None:
    playbook = tmp_path / "direct.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Call the internal role directly", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Create a network", "ansible.builtin.include_role": {
            "name": "compose_service", "tasks_from": "network"}, "vars": {"compose_service_args": {"network": "x"}}}],
    }]))
    done = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
                           str(playbook)], cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
                          env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(Path.home()),
                               "PYTHONPATH": str(REPO / "src"), "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
                               "ANSIBLE_FILTER_PLUGINS": str(REPO / "ansible" / "filter_plugins"), "NO_COLOR": "1"})
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert "compose_service is internal to the kit" in output, output[-3000:]
    assert "Look for the docker network" not in output, "the guard let the entry point run"


def test_compose_service_checks_its_entry_points_arguments(tmp_path: Path) -> None:
    """The argument spec of the entry point is enforced: an unknown key stops the call before the guard."""
    role = tmp_path / "roles" / "prometheus" / "tasks"
    role.mkdir(parents=True)
    (role / "main.yml").write_text(yaml.safe_dump([{"name": "Call with a misspelt key", "ansible.builtin.import_role": {
        "name": "compose_service", "tasks_from": "network"}, "vars": {"compose_service_args": {"netwrok": "x"}}}]))
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"name": "A role called prometheus", "hosts": "localhost",
                                         "gather_facts": False, "roles": ["prometheus"]}]))
    done = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
                           str(playbook)], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
                          env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(Path.home()),
                               "PYTHONPATH": str(REPO / "src"),
                               "ANSIBLE_ROLES_PATH": f"{tmp_path / 'roles'}:{REPO / 'roles'}",
                               "ANSIBLE_FILTER_PLUGINS": str(REPO / "ansible" / "filter_plugins"), "NO_COLOR": "1"})
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "netwrok" in output, output[-3000:]


def test_a_value_the_env_file_cannot_carry_stops_the_role_before_anything_is_written(tmp_path: Path) -> None:
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"name": "node_exporter with a quote in a path", "hosts": "localhost",
                                         "gather_facts": False, "roles": ["node_exporter"]}]))
    target = tmp_path / "node-exporter"
    done = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
                           str(playbook), "-e", json.dumps({"node_exporter_rootfs": "/srv/it's",
                                                                "node_exporter_dir": str(target)})],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
                          env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(Path.home()),
                               "PYTHONPATH": str(REPO / "src"), "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
                               "ANSIBLE_FILTER_PLUGINS": str(REPO / "ansible" / "filter_plugins"), "NO_COLOR": "1"})
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "LLMOBS_HOST_ROOTFS (the .env of node-exporter)" in output, output[-3000:]
    assert "single quote or a line break" in output and "Look at the image, configuration" not in output
    assert not target.exists(), "something was written before the check"


@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_its_readme(role: str) -> None:
    readme = REPO / "roles" / role / "README.md"
    assert readme.is_file() and "Generated by `llmobs generate`" in readme.read_text()


def _calls_compose_service(role: str) -> bool:
    return any("name: compose_service" in path.read_text() for path in (REPO / "roles" / role / "tasks").glob("*.yml"))


def test_the_guard_admits_exactly_the_roles_that_call_compose_service() -> None:
    callers = yaml.safe_load((REPO / "roles/compose_service/vars/main.yml").read_text())["__compose_service_callers"]
    assert sorted(callers) == [role for role in ROLES if role != "compose_service" and _calls_compose_service(role)]


def _same_as_base(scenario: object, base: object, path: str = "") -> list[str]:
    """The keys of a scenario's molecule.yml that repeat the shared base's value (molecule merges
    mappings key by key, so a repeated key says nothing)."""
    if isinstance(scenario, dict) and isinstance(base, dict):
        return [found for key, value in scenario.items() if key in base
                for found in _same_as_base(value, base[key], f"{path}.{key}")]
    return [path] if scenario == base else []


SCENARIO_FILES = [*sorted(REPO.glob("roles/*/molecule/*/molecule.yml")), REPO / "molecule/site/molecule.yml"]


@pytest.mark.parametrize("scenario", SCENARIO_FILES, ids=lambda p: p.parent.relative_to(REPO).as_posix())
def test_every_scenario_states_only_its_differences_from_the_shared_base(scenario: Path) -> None:
    base = yaml.safe_load((REPO / ".config/molecule/config.yml").read_text())
    repeated = _same_as_base(yaml.safe_load(scenario.read_text()) or {}, base)
    assert not repeated, f"{scenario.relative_to(REPO)} repeats the base (.config/molecule/config.yml): {repeated}"
