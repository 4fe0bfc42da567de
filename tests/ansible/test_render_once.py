"""The controller renders a role's files once a run: site.yml's checks render Grafana's dashboards, Prometheus'
configuration and dcgm-exporter's counters CSV, and the role, which runs its own validate.yml again, renders
again only when its input differs from what they were rendered from (vars/main.yml: __<role>_render_input).

Runs site.yml's first play (its checks) on the example inventory, then each role's validate.yml twice on
the controller: with the same input (the render is skipped), then with a changed one (rendered again).
No host is contacted: every task of these plays runs on the controller.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from test_playbook import REPO, run_site

RENDERS = {"grafana": "grafana : Render and lint the dashboards and the provisioning",
           "prometheus": "prometheus : Render prometheus.yml, the targets and the rules",
           "dcgm_exporter": "dcgm_exporter : Render the counters CSV from the catalog"}
ROLES = "{{ ['grafana', 'prometheus'] if 'monitoring' in group_names else ['dcgm_exporter'] }}"


def _again(name: str, **changed: object) -> dict:
    """A play that runs each role's validate.yml as the role does, after `changed` (set as facts: the
    prometheus role reads other hosts' facts through hostvars)."""
    tasks = [{"name": "Change the input", "ansible.builtin.set_fact": changed}] if changed else []
    tasks.append({"name": "Each role's own checks", "ansible.builtin.include_role": {"name": "{{ item }}",
                                                                                       "tasks_from": "validate"},
                  "loop": ROLES})
    return {"name": name, "hosts": "all", "gather_facts": False, "tags": ["validate"], "tasks": tasks}


def _results(output: str, play: str) -> dict[str, set[str]]:
    """Per role, what its render task did in `play` (ok, skipping) on each host."""
    section = output.split(f"PLAY [{play}]", 1)[1].split("PLAY [", 1)[0]
    results: dict[str, set[str]] = {}
    for task in re.split(r"\n(?=TASK \[)", section):
        for role, name in RENDERS.items():
            if task.startswith(f"TASK [{name}"):
                results[role] = set(re.findall(r"^(ok|skipping|changed): \[", task, flags=re.M))
    return results


def test_the_roles_render_again_only_when_their_input_differs(tmp_path: Path) -> None:
    site = yaml.safe_load((REPO / "site.yml").read_text())
    playbook = tmp_path / "site.yml"
    changed = _again("A changed input", grafana_folder="Other", grafana_running=False,
                     dcgm_exporter_settings={"thresholds": {"kv_cache_usage_warning": 0.8}})
    playbook.write_text(yaml.safe_dump([site[0], _again("The same input"), changed]))
    # run_site runs `site.yml` of its working directory: this one, beside the repository's ansible.cfg, roles
    # and plugins.
    for name in ("ansible.cfg", "roles", "ansible"):
        (tmp_path / name).symlink_to(REPO / name)
    done = run_site(REPO / "inventories" / "example", None, "--tags", "validate", cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "UNREACHABLE" not in output, output[-5000:]
    assert _results(output, "The same input") == {role: {"skipping"} for role in RENDERS}, output[-8000:]
    assert _results(output, "A changed input") == {role: {"ok"} for role in RENDERS}, output[-8000:]
