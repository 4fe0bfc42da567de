"""ansible-playbook imports the llmobs package and loads its catalog once, in its own process, before the
first task (ansible/vars_plugins/llmobs_preload.py): every task's worker is forked from that process and
inherits both, where a worker of its own would import the package again for each task that uses a filter
(0.7-1.4 s here) and parse the catalog again for each that reads it (0.35-0.55 s).
Read from the repository's ansible.cfg and from the molecule base config of every scenario."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "ansible" / "vars_plugins" / "llmobs_preload.py"


def _imports_of_the_main_process(tmp_path: Path, *env: str) -> str:
    """`python -X importtime` of ansible-playbook running one filter task (the workers' stderr is not kept)."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"name": "One task with a filter", "hosts": "localhost", "gather_facts": False,
                                         "tasks": [{"name": "Use a filter",
                                                    "ansible.builtin.debug": {"msg": "{{ [1] | length }}"}}]}]))
    done = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
                           str(playbook)], cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
                          env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(Path.home()),
                               "PYTHONPATH": str(REPO / "src"), "PYTHONPROFILEIMPORTTIME": "1", "NO_COLOR": "1",
                               **dict(item.split("=", 1) for item in env)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stderr


def test_the_main_process_imports_the_package_with_the_repository_config(tmp_path: Path) -> None:
    assert "| llmobs.deploy\n" in _imports_of_the_main_process(tmp_path)


def test_without_the_plugin_it_does_not(tmp_path: Path) -> None:
    """The check above can fail: with the plugin's directory replaced, the main process imports no llmobs."""
    assert "llmobs.deploy" not in _imports_of_the_main_process(tmp_path, f"ANSIBLE_VARS_PLUGINS={tmp_path}")


def _catalogs_loaded(*code: str) -> str:
    """How many catalogs llmobs.catalog.load holds in a Python that ran `code` (one statement each)."""
    done = subprocess.run([sys.executable, "-c", "\n".join([*code, "from llmobs import catalog",
                                                             "print(catalog.load.cache_info().currsize)"])],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "PYTHONPATH": str(REPO / "src")})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_loading_the_plugin_loads_the_catalog() -> None:
    """What a worker inherits: the validated catalog, loaded when ansible-playbook loads the plugin (and not
    by importing the package alone, so the check can fail)."""
    assert _catalogs_loaded("import llmobs.deploy") == "0"
    assert _catalogs_loaded("import runpy", f"runpy.run_path({str(PLUGIN)!r})") == "1"


def test_every_molecule_scenario_loads_the_plugin() -> None:
    """The base config's path, as a role scenario (roles/<role>/molecule/<scenario>) resolves it; the
    whole-site scenario reads the repository's ansible.cfg (ANSIBLE_CONFIG)."""
    base = yaml.safe_load((REPO / ".config" / "molecule" / "config.yml").read_text())
    path = base["provisioner"]["config_options"]["defaults"]["vars_plugins"]
    resolved = Path(path.replace("${MOLECULE_PROJECT_DIRECTORY}", str(REPO / "roles" / "prometheus")))
    assert (resolved / PLUGIN.name).samefile(PLUGIN)
    site = yaml.safe_load((REPO / "molecule" / "site" / "molecule.yml").read_text())
    assert site["provisioner"]["env"]["ANSIBLE_CONFIG"] == "${MOLECULE_PROJECT_DIRECTORY}/ansible.cfg"
