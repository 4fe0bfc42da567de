"""Every role documents its interface in meta/argument_specs.yml, in step with defaults/main.yml.

Like prometheus-community's lint_arguments_spec.sh: the variables a role defaults are exactly the
options its spec lists (required options have no default), with the same default values. Every
`tasks_from:` call targets an entry point with its own spec, and compose_service's one variable,
compose_service_args, has its keys' defaults in its vars/main.yml, in step with each entry point's spec.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = sorted(path for path in (REPO / "roles").iterdir() if (path / "tasks" / "main.yml").exists())


def _entry_points(role: Path) -> dict:
    path = role / "meta" / "argument_specs.yml"
    assert path.exists(), f"{role.name}: meta/argument_specs.yml is missing"
    return yaml.safe_load(path.read_text())["argument_specs"]


def _spec(role: Path) -> dict:
    return _entry_points(role)["main"]["options"]


def _defaults(role: Path) -> dict:
    path = role / "defaults" / "main.yml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def test_roles_found() -> None:
    """Every role is one site.yml runs, or compose_service, which they run."""
    site = yaml.safe_load((REPO / "site.yml").read_text())
    listed = {role for roles in site[0]["vars"]["__site_roles"].values() for role in roles}
    played = {entry if isinstance(entry, str) else entry["role"] for play in site for entry in play.get("roles", [])}
    assert {r.name for r in ROLES} == listed | played | {"compose_service"}


def _tasks(path: Path) -> list[dict]:
    """Every task of a playbook or task file, those inside plays and blocks included."""
    found, stack = [], list(yaml.safe_load(path.read_text()) or [])
    while stack:
        item = stack.pop()
        found.append(item)
        stack += [*item.get("tasks", []), *item.get("block", []), *item.get("rescue", []), *item.get("always", [])]
    return found


def _tasks_from_calls() -> list[tuple[str, str, str]]:
    """(file, role, entry point) of every import_role/include_role with tasks_from, in site.yml and the roles."""
    site_checks = yaml.safe_load((REPO / "site.yml").read_text())[0]["vars"]["__site_controller_checks"]
    calls = []
    for path in [REPO / "site.yml", *sorted(REPO.glob("roles/*/tasks/*.yml"))]:
        for task in _tasks(path):
            for call in (task.get("ansible.builtin.import_role"), task.get("ansible.builtin.include_role")):
                if isinstance(call, dict) and "tasks_from" in call:
                    # site.yml runs the checks of the roles it lists: name "{{ item }}".
                    roles = site_checks if "{{" in call["name"] else [call["name"]]
                    calls += [(path.relative_to(REPO).as_posix(), role, call["tasks_from"]) for role in roles]
    return calls


def test_every_tasks_from_call_has_its_entry_point_spec() -> None:
    calls = _tasks_from_calls()
    assert len(calls) >= 20, calls
    missing = [(f, role, entry) for f, role, entry in calls if entry not in _entry_points(REPO / "roles" / role)]
    assert not missing, f"tasks_from without an argument spec entry point: {missing}"
    for role in ROLES:
        for entry in _entry_points(role):
            assert (role / "tasks" / f"{entry}.yml").is_file(), f"{role.name}: entry point {entry} has no task file"


def _compose_service_defaults() -> dict:
    return yaml.safe_load((REPO / "roles/compose_service/vars/main.yml").read_text())["__compose_service_defaults"]


@pytest.mark.parametrize("entry", list(_entry_points(REPO / "roles" / "compose_service")))
def test_compose_service_args_defaults_are_its_spec_defaults(entry: str) -> None:
    option = _entry_points(REPO / "roles" / "compose_service")[entry]["options"]["compose_service_args"]
    keys, defaults = option["options"], _compose_service_defaults()
    assert option["required"] and option["type"] == "dict"
    optional = {name: key.get("default") for name, key in keys.items() if not key.get("required")}
    assert all("default" in keys[name] for name in optional), f"{entry}: optional keys without a default"
    differing = {name: (value, defaults.get(name, "(not in vars/main.yml)")) for name, value in optional.items()
                 if defaults.get(name, object()) != value}
    assert not differing, f"{entry}: spec default != __compose_service_defaults: {differing}"
    if entry != "network":  # the network entry point takes the network only
        assert set(optional) == set(defaults), f"{entry}: keys with defaults differ from __compose_service_defaults"
    undocumented = [name for name, key in keys.items() if not key.get("description") or "type" not in key]
    assert not undocumented, f"{entry}: keys without a type or description: {undocumented}"


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_defaults_are_the_optional_spec_options(role: Path) -> None:
    spec, defaults = _spec(role), _defaults(role)
    optional = {name for name, option in spec.items() if not option.get("required")}
    assert set(defaults) - set(spec) == set(), f"{role.name}: defaults missing from argument_specs"
    assert optional - set(defaults) == set(), f"{role.name}: optional spec options without a default"
    required_with_default = {name for name, option in spec.items() if option.get("required")} & set(defaults)
    assert not required_with_default, f"{role.name}: required options must not have defaults"


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_spec_defaults_equal_role_defaults(role: Path) -> None:
    spec, defaults = _spec(role), _defaults(role)
    differing = {
        name: (option.get("default", "(no default in the spec)"), defaults[name])
        for name, option in spec.items()
        if name in defaults and option.get("default", object()) != defaults[name]
    }
    assert not differing, f"{role.name}: spec default != defaults/main.yml: {differing}"
    undocumented = [name for name, option in spec.items() if not option.get("description") or "type" not in option]
    assert not undocumented, f"{role.name}: options without a type or description: {undocumented}"


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_role_variables_carry_the_role_prefix(role: Path) -> None:
    foreign = [name for name in _spec(role) if not name.startswith(f"{role.name}_")]
    assert not foreign, f"{role.name}: options must start with {role.name}_: {foreign}"


def test_llmobs_fault_looks_where_the_lab_simulators_role_runs_them() -> None:
    from llmobs.lab import SIMULATOR_PROJECTS

    project = _defaults(REPO / "roles" / "lab_simulators")["lab_simulators_project"]
    assert project in SIMULATOR_PROJECTS, f"add {project!r} to llmobs.lab.SIMULATOR_PROJECTS"
