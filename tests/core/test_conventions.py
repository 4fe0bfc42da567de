"""The kit's seams: the PromQL builder (escaping, scoped selectors, Grafana variables), the one template
mechanism, and the naming conventions every generator reads."""

from __future__ import annotations

import pytest
import yaml

from llmobs import catalog as catalog_mod
from llmobs import conventions, promql, templating
from llmobs.errors import ConfigError
from llmobs.promql import Promql
from llmobs.rules import render_rule_files
from llmobs.settings import load_settings


def test_matchers_escape_strings_and_regexes() -> None:
    assert str(promql.eq("model_name", 'we"ird\\m')) == r'model_name="we\"ird\\m"'
    assert str(promql.one_of("team", ["gpu-infra"])) == 'team="gpu-infra"'
    assert str(promql.one_of("team", ["a.b", "c|d"])) == r'team=~"a\\.b|c\\|d"'
    assert str(promql.none_of("fstype", ["tmpfs", "ramfs"])) == 'fstype!~"tmpfs|ramfs"'
    assert str(promql.le(1.0)) == r'le=~"1(\\.0)?"' and str(promql.le(0.25)) == r'le=~"0\\.25"'
    assert str(promql.le("+Inf")) == 'le="+Inf"'
    with pytest.raises(ValueError, match="exponent"):
        promql.le(1e-7)


def test_selectors_scope_queries_and_pass_grafana_variables_through() -> None:
    gpu = Promql((promql.variable("host"), promql.variable("gpu")))
    assert gpu.sel("DCGM_FI_DEV_GPU_TEMP") == 'DCGM_FI_DEV_GPU_TEMP{host=~"$host", gpu=~"$gpu"}'
    assert gpu.where('job="dcgm"').sel("up") == 'up{host=~"$host", gpu=~"$gpu", job="dcgm"}'
    assert gpu.sum_rate("DCGM_FI_DEV_POWER_VIOLATION", "5m", ("host", "gpu")) == (
        'sum by (host, gpu) (rate(DCGM_FI_DEV_POWER_VIOLATION{host=~"$host", gpu=~"$gpu"}[5m]))')
    assert Promql().sel("up") == "up" and promql.selector("", promql.eq("a", "b")) == '{a="b"}'
    assert Promql.ratio("a", "b") == "a / (b > 0)" and Promql.quantile(0.99, "x") == "histogram_quantile(0.99, x)"
    # What is built parses, and names what it reads.
    assert promql.selector_names(gpu.sum_rate("m_total", "5m", ("host",)), "test") == {"m_total"}


def test_one_template_mechanism_leaves_prometheus_templates_alone_and_rejects_unknown_names() -> None:
    text = "{{ $labels.<< host >> }} at << t >> of << jobs.dcgm >>"
    assert templating.render(text, {"host": "node", "t": 5.0, "jobs": {"dcgm": "gpu"}}, "f", "s") == (
        "{{ $labels.node }} at 5 of gpu")
    with pytest.raises(ConfigError, match="'nope' is undefined"):
        templating.render("<< nope >>", {}, "f", "s")


def test_the_host_label_is_templated_alike_in_rules_and_notifications() -> None:
    from llmobs.alertmanager import render_templates

    settings = load_settings({"labels": {"host": "node"}})
    files = render_rule_files(settings)
    assert "host" not in {label.strip() for line in files["recording.yml"].splitlines() if "by (" in line
                          for label in line.split("by (", 1)[1].split(")", 1)[0].split(",")}
    assert 'index .CommonLabels "node"' in render_templates(settings)["llmobs.tmpl"]
    assert "<<" not in files["alerts.yml"] + files["recording.yml"]


def test_every_alert_has_one_runbook_page_and_component() -> None:
    catalog = catalog_mod.load()
    assert catalog.page_of("GpuXidFatal") == "gpu-xid" and catalog.component_of("GpuXidFatal") == "gpu"
    for slo in catalog.slos.slos:
        assert catalog.page_of(slo.alert) == conventions.SLO_BURN_PAGE and catalog.component_of(slo.alert) == "slo"
    with pytest.raises(KeyError):
        catalog.page_of("NoSuchAlert")
    alerts = yaml.safe_load(render_rule_files(load_settings())["alerts.yml"])
    for group in alerts["groups"]:
        pages = {catalog.page_of(rule["alert"]) for rule in group["rules"]}
        assert [conventions.alert_group(page) for page in pages] == [group["name"]]


def test_recorded_names_follow_the_conventions() -> None:
    catalog = catalog_mod.load()
    settings = load_settings({"vllm_endpoints": {"n1": [{"model": "m", "gpus": [0]}]}})
    files = {name: yaml.safe_load(text) for name, text in render_rule_files(settings).items()}
    recorded = {rule["record"] for document in files.values() for group in document["groups"]
                for rule in group["rules"] if "record" in rule}
    assert recorded == catalog.recorded_names() | catalog.generated_names(settings.slo.period)
    assert conventions.latency_quantile("vllm_e2e_request_latency_seconds", "model") in recorded
