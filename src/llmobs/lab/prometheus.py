"""The lab's committed Prometheus configuration (prometheus/prometheus.yml and prometheus/targets/*.yml),
rendered by llmobs.scrape from the lab topology (compose/lab-topology.yml) and the lab settings."""

from __future__ import annotations

from llmobs import scrape
from llmobs.settings import Settings
from llmobs.sim.topology import load_topology
from llmobs.workspace import Workspace

SOURCE = "compose/lab-topology.yml and compose/lab-settings.yml"


def render_lab_prometheus(settings: Settings, workspace: Workspace) -> dict[str, str]:
    """{path under the checkout: text} of the lab's Prometheus configuration (`llmobs generate`)."""
    lab = load_topology(workspace.lab_topology)
    files = scrape.render(scrape.parse_hosts(lab.scrape_hosts()), settings, lab.prometheus, source=SOURCE)
    return {f"prometheus/{path}": text for path, text in files.items()}
