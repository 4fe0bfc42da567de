"""The PromQL builder's aggregation helpers the dashboards' queries use: `aggregate` around any expression
and `Promql.increase`, both with the scope's escaping and Grafana variables passed through."""

from __future__ import annotations

from llmobs import promql
from llmobs.promql import Promql


def test_aggregate_over_labels_or_over_everything() -> None:
    assert promql.aggregate("sum", "x") == "sum(x)"
    assert promql.aggregate("max", "x > 0", ("host", "gpu")) == "max by (host, gpu) (x > 0)"
    assert promql.aggregate("count", promql.aggregate("max", "m", iter(["host"]))) == "count(max by (host) (m))"
    assert promql.selector_names(promql.aggregate("avg", "m", ("host",)), "test") == {"m"}


def test_increase_is_scoped_like_rate() -> None:
    gpus = Promql((promql.variable("node", "host"), promql.variable("gpu")))
    assert gpus.increase("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "$__range") == (
        'increase(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{node=~"$host", gpu=~"$gpu"}[$__range])')
    assert gpus.increase("m_total", "5m", promql.eq("kind", 'a"b')) == (
        r'increase(m_total{node=~"$host", gpu=~"$gpu", kind="a\"b"}[5m])')
