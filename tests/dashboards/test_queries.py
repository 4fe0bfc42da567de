"""The layers under the dashboards: named query functions built with the one PromQL builder, recorded
series named once (in `llmobs.dashboards.queries`, checked against the catalog), named panel functions
that stand on their own, and the panel options taken by keyword only."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

from llmobs import catalog
from llmobs.dashboards import context, gpu, panels, queries
from llmobs.dashboards.queries import engine, fleet, host
from llmobs.dashboards.queries import gpu as gpu_queries
from llmobs.promql import selector_names
from llmobs.settings import load_settings

DASHBOARDS = Path(gpu.__file__).parent
# A recorded series: level:metric:operations (https://prometheus.io/docs/practices/rules/).
RECORDED = re.compile(r"^[a-z_]+:[a-z_]+:[a-z_0-9]+$")
SPELLED = re.compile(r"\b[a-z_]+:[a-z_]+:[a-z_0-9]+\b")


def _query_modules() -> list[object]:
    names = [f"{queries.__name__}.{info.name}" for info in pkgutil.iter_modules(queries.__path__)]
    return [queries, *(importlib.import_module(name) for name in names)]


def _string_constants(path: Path) -> set[str]:
    return {node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_every_recorded_series_the_queries_name_is_a_catalog_rule() -> None:
    loaded = catalog.load()
    known = loaded.recorded_names() | loaded.generated_names(load_settings().slo.period)
    named = {value for module in _query_modules() for value in vars(module).values()
             if isinstance(value, str) and RECORDED.match(value)}
    assert len(named) > 30
    assert sorted(named - known) == [], "rename them to the catalog's recording rules"


def test_panel_modules_spell_no_recorded_series() -> None:
    """Rule names live in the queries modules (or llmobs.conventions); panels and layout only refer to them."""
    for path in sorted(DASHBOARDS.glob("*.py")):
        spelled = sorted(name for text in _string_constants(path) for name in SPELLED.findall(text))
        assert spelled == [], f"{path.name} spells {spelled}: name them in llmobs.dashboards.queries"


def test_queries_pass_grafana_variables_through_and_escape_values() -> None:
    ctx = context(load_settings({"labels": {"host": "node"}}))
    assert gpu_queries.energy_used_kwh(ctx.gpus) == (
        'sum(increase(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{node=~"$host", gpu=~"$gpu"}[$__range])) / 3.6e9')
    assert engine.error_ratio(ctx.engines) == (
        '(sum(instance_model_reason:vllm_requests:rate5m{node=~"$host", model_name=~"$model_name",'
        ' instance=~"$instance", finished_reason="error"}) or vector(0))'
        ' / (sum(instance_model:vllm_requests:rate5m{node=~"$host", model_name=~"$model_name",'
        ' instance=~"$instance"}) > 0)')
    # A job name is a literal: its dot does not match any character.
    assert host.exporters_up(ctx.hosts, ("dcgm.exporter", "node")) == 'up{node=~"$host", job=~"dcgm\\\\.exporter|node"}'
    assert fleet.completed_ratio() == (
        'sum(model_reason:vllm_requests:rate5m{finished_reason!~"error|abort"}) / (fleet:vllm_requests:rate5m > 0)')
    assert selector_names(gpu_queries.gpus_with_row_remap_trouble("node"), "test") == {
        "DCGM_FI_DEV_ROW_REMAP_FAILURE", "DCGM_FI_DEV_ROW_REMAP_PENDING"}


def test_a_named_panel_stands_on_its_own() -> None:
    ctx = context(load_settings({"thresholds": {"gpu_temp_margin_warning_celsius": 9}}))
    margin = gpu.thermal_margin(ctx).build()
    assert margin.title == "Thermal margin"
    assert [step.value for step in margin.field_config.defaults.thresholds.steps][-1] == 9
    assert "GpuThermalMarginLow" in margin.description
    (target,) = margin.targets
    assert target.expr == 'host_gpu:dcgm_temp_margin:celsius{host=~"$host", gpu=~"$gpu"}'


def test_panel_options_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        panels.PanelOptions("title", "description", "short", [])  # type: ignore[misc]
    options = panels.PanelOptions(title="t", description="d", unit="short", targets=[])
    assert (options.width, options.height, options.thresholds) == (12, 8, panels.NEUTRAL)
