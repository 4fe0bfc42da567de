"""Every role documents its interface in meta/argument_specs.yml, in step with defaults/main.yml.

Like prometheus-community's lint_arguments_spec.sh: the variables a role defaults are exactly the
options its spec lists (required options have no default), with the same default values.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = sorted(path for path in (REPO / "roles").iterdir() if (path / "tasks" / "main.yml").exists())


def _spec(role: Path) -> dict:
    path = role / "meta" / "argument_specs.yml"
    assert path.exists(), f"{role.name}: meta/argument_specs.yml is missing"
    return yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]


def _defaults(role: Path) -> dict:
    path = role / "defaults" / "main.yml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def test_roles_found() -> None:
    assert {"prometheus", "alertmanager", "grafana", "node_exporter", "dcgm_exporter"} <= {r.name for r in ROLES}


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
