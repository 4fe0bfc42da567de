"""Grafana dashboards and provisioning, generated from the catalog and the settings.

`dashboard_artifacts(settings)` returns every file under `grafana/` (path -> text). Each dashboard is
built with grafana-foundation-sdk, then linted (`llmobs.dashboards.lint`) before anything is returned:
a query that does not parse, selects an unknown series or label, or uses an undefined variable raises a
ConfigError naming the dashboard, the panel and the query.

Layout (docs/dashboards.md, "Code layout"): `queries/` holds the named PromQL queries per area, each
dashboard module (`fleet`, `vllm`, `gpu`, `slo`, `efficiency`) its named panel functions and a `build()`
that only lays them out in rows; `panels` wraps the SDK's panel builders, `common` holds what several
dashboards share (uids, variables, links), `context` the settings, catalog and query scopes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from llmobs import catalog as catalog_mod
from llmobs.conventions import TRACE_STORE_URL
from llmobs.dashboards import efficiency, fleet, gpu, slo, vllm
from llmobs.dashboards.context import Context
from llmobs.dashboards.lint import KnownSeries, lint_dashboard
from llmobs.dashboards.panels import Board
from llmobs.dashboards.provisioning import Provisioning, provisioning_files
from llmobs.errors import ConfigErrors
from llmobs.settings import Settings

DASHBOARD_DIR = "grafana/dashboards"
# The dashboards in the order Grafana lists them; each module's build(ctx) returns a Board.
BUILDERS: tuple[Callable[[Context], Board], ...] = (fleet.build, vllm.build, gpu.build, slo.build, efficiency.build)


def context(settings: Settings) -> Context:
    return Context(settings=settings, catalog=catalog_mod.load())


def to_json(dashboard: dict[str, Any]) -> str:
    """Stable text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render(boards: Sequence[Board], known: KnownSeries) -> dict[str, str]:
    """Lint every board and return {path: JSON text}; raise ConfigErrors listing every problem."""
    errors = []
    files = {}
    for board in boards:
        dashboard = board.to_dict()
        errors += lint_dashboard(dashboard, known)
        files[f"{DASHBOARD_DIR}/{board.uid}.json"] = to_json(dashboard)
    if errors:
        raise ConfigErrors(errors)
    return files


def build_boards(ctx: Context) -> list[Board]:
    return [build(ctx) for build in BUILDERS]


def dashboard_artifacts(settings: Settings, provisioning: Provisioning | None = None) -> dict[str, str]:
    """Every dashboard and provisioning file, keyed by its path relative to the repository root.

    `settings` are validated at the edge (the CLI, the Ansible filter, the tests); `provisioning` says where
    Grafana finds Prometheus, Alertmanager and the dashboard files (None: the lab's defaults)."""
    ctx = context(settings)
    files = render(build_boards(ctx), ctx.known_series())
    # The lab's Grafana reads the lab's Jaeger (compose/services/jaeger.yaml) where the settings collect traces.
    lab = Provisioning(traces_url=TRACE_STORE_URL if settings.otel.traces.enabled else None)
    files.update(provisioning_files(provisioning or lab))
    return dict(sorted(files.items()))
