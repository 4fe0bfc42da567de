"""Every panel query of every committed dashboard returns data from the lab's real Prometheus (simulated GPUs
and vLLM, the generated rules), with the variables at "All" as Grafana sends them.

Panels that need a source the lab does not have are listed below with the reason; their descriptions must
say so too, and the list may not name a panel that does not exist.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmobs.dashboards.live import empty_queries, live_queries

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.docker, pytest.mark.lab]

# (dashboard title, panel title) -> why it may be empty in the lab.
EXPECTED_EMPTY = {
    ("vLLM serving", "Draft acceptance rate"): "the lab's engines run without a speculative_config",
    ("vLLM serving", "Mean acceptance length"): "the lab's engines run without a speculative_config",
    ("vLLM serving", "Draft and accepted tokens/s"): "the lab's engines run without a speculative_config",
}


# The Efficiency dashboard's OpenTelemetry row reads the GenAI rules, fed by the lab's application through
# Prometheus' OTLP receiver or, for the Debian stand-in without one, the lab's OTLP gateway: expected empty
# only where neither takes OTLP, with the lab's reason.
OTLP_ROW = ("Efficiency and capacity", ("Tokens/s by application and model", "Model-call duration by application",
                                        "Failed model calls by application", "GPU cost per hour by application"))


def _dashboards() -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted((REPO / "grafana/dashboards").glob("*.json"))]


def test_expected_empty_panels_exist_and_say_why() -> None:
    panels = {(d["title"], p["title"]): p for d in _dashboards() for p in d["panels"] if p["type"] != "row"}
    for key in EXPECTED_EMPTY:
        assert key in panels, f"{key} is listed as expected-empty but no such panel exists"
        assert "Optional source" in panels[key]["description"], key


def test_every_panel_query_returns_data(lab: Any, figure) -> None:
    dashboards = _dashboards()
    expected = dict(EXPECTED_EMPTY)
    if lab.otlp_missing:
        panels = [p["title"] for d in dashboards if d["title"] == OTLP_ROW[0] for p in d["panels"]]
        expected |= {(OTLP_ROW[0], title): f"no OTLP in this lab: {lab.otlp_missing}" for title in panels
                     if title.startswith(OTLP_ROW[1])}
    total = sum(1 for d in dashboards for _ in live_queries(d))
    empty = empty_queries(lab.url("prometheus"), dashboards)
    unexpected = [q for q in empty if (q.dashboard, q.panel) not in expected]
    figure(f"{total} queries, {len(empty)} empty, all of them expected: {not unexpected}" + "".join(
        f'\n  empty: {q.dashboard} / "{q.panel}" {q.ref} ({expected.get((q.dashboard, q.panel), "UNEXPECTED")})'
        for q in empty))
    assert total > 150
    assert not unexpected, "panels without data:\n" + "\n".join(
        f'{q.dashboard} / "{q.panel}" / {q.ref}: {q.expr}' for q in unexpected)
