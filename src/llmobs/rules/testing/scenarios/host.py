"""Host and pipeline faults: a host down, one target down, disks filling up, and the monitoring stack
failing (rule evaluation, a rejected reload, notifications). Faults start at 2m."""

from __future__ import annotations

from llmobs.conventions import ENGINE_GPU_INFO, PORTS, instance
from llmobs.rules.testing.fleet import Engine, Fleet
from llmobs.rules.testing.promtool import Scenario, Timeline, alert_test, fires, percent

TL = Timeline(10, 121)
INJECT = TL.at(120)


def scenarios(fleet: Fleet) -> list[Scenario]:
    return [host_down(fleet), node_exporter_down(fleet), disk_space_low(fleet, "warning"),
            disk_space_low(fleet, "critical"), pipeline_failing(fleet)]


def _fault(fleet: Fleet, name: str) -> tuple[Scenario, Engine]:
    """A busy 2-GPU server and the monitoring stack, before the fault."""
    scenario = Scenario(name, TL)
    series, _, engine = fleet.busy_host(TL, "gpu-node-1", 2, "H100-SXM", fleet.default_model())
    scenario.series += series + fleet.pipeline(TL)
    return scenario, engine


def host_down(fleet: Fleet) -> Scenario:
    scenario, engine = _fault(fleet, "host down: every target unreachable")
    host = engine.host
    for s in scenario.where(lambda s: s.labels.get(fleet.host) == host and s.name != ENGINE_GPU_INFO):
        if s.name == "up":
            s.samples = TL.change(1, 0, INJECT)
        else:
            s.stop(INJECT)
    scenario.alert_tests += fires("HostDown", "2m50s", "3m20s", fleet.expect(
        "HostDown", "critical", {fleet.host: host}, f"Host {host} is down",
        f"No scrape target of {host} answers (node_exporter, dcgm-exporter and vLLM): the host is down or "
        "unreachable. Its GPU and engine alerts are silenced meanwhile."))
    return scenario


def node_exporter_down(fleet: Fleet) -> Scenario:
    scenario, engine = _fault(fleet, "node_exporter down, the host's other targets up")
    scenario.set("up", TL.change(1, 0, INJECT), job=fleet.jobs.node)
    target = instance(engine.host, PORTS["node"])
    scenario.alert_tests += [*fires("TargetDown", "3m50s", "4m20s", fleet.expect(
        "TargetDown", "warning", {fleet.host: engine.host, "instance": target, "job": fleet.jobs.node},
        f"{fleet.jobs.node} target {target} is down",
        f"Prometheus cannot scrape {fleet.jobs.node} at {target} on {engine.host}.")), alert_test("5m", "HostDown")]
    return scenario


def disk_space_low(fleet: Fleet, severity: str) -> Scenario:
    """The last watched volume fills up to between the thresholds (warning) or below both (critical)."""
    mountpoint = fleet.t.disk_mountpoints[-1]
    free = (fleet.t.disk_free_ratio_warning / 2 + fleet.t.disk_free_ratio_critical / 2 if severity == "warning"
            else fleet.t.disk_free_ratio_critical / 2)
    scenario, engine = _fault(fleet, f"{mountpoint} {percent(free)} free")
    scenario.set("node_filesystem_avail_bytes", TL.change(4e11, round(1e12 * free), INJECT), mountpoint=mountpoint)
    device = scenario.find("node_filesystem_avail_bytes", mountpoint=mountpoint).labels["device"]
    levels = ("critical", "warning") if severity == "critical" else ("warning",)
    expected = [fleet.expect(
        "HostDiskSpaceLow", level, {fleet.host: engine.host, "mountpoint": mountpoint, "device": device},
        f"{mountpoint} on {engine.host} is {'almost full' if level == 'critical' else 'filling up'}",
        f"{mountpoint} ({device}) on {engine.host} has {percent(free)} of its space free ({level} below "
        f"{getattr(fleet.t, f'disk_free_ratio_{level}'):g}).") for level in levels]
    scenario.alert_tests += fires("HostDiskSpaceLow", "6m50s", "7m20s", *expected)
    return scenario


def pipeline_failing(fleet: Fleet) -> Scenario:
    scenario, _ = _fault(fleet, "rule evaluation failures, rejected reload, failing notifications")
    scenario.set("prometheus_rule_evaluation_failures_total", TL.ramp_change(0, 1, INJECT))
    scenario.set("prometheus_config_last_reload_successful", TL.change(1, 0, INJECT))
    scenario.set("alertmanager_notifications_failed_total", TL.ramp_change(0, 1, INJECT))
    scenario.set("otelcol_exporter_send_failed_spans", TL.ramp_change(0, 4, INJECT))
    failing = scenario.find("prometheus_rule_evaluation_failures_total").labels
    am = scenario.find("alertmanager_notifications_failed_total").labels
    collector = scenario.find("otelcol_exporter_send_failed_spans").labels
    prometheus = {fleet.host: failing[fleet.host], "instance": failing["instance"]}
    scenario.alert_tests += [
        alert_test("6m50s", "PrometheusRuleEvaluationFailures"),
        alert_test("8m", "PrometheusRuleEvaluationFailures", fleet.expect(
            "PrometheusRuleEvaluationFailures", "critical", {**prometheus, "rule_group": failing["rule_group"]},
            f"Prometheus fails to evaluate rule group {failing['rule_group']}",
            f"Prometheus {failing['instance']} failed 30 evaluation(s) of {failing['rule_group']} in the last "
            "5 minutes: its alerts cannot fire.")),
        alert_test("8m", "PrometheusConfigReloadFailed", fleet.expect(
            "PrometheusConfigReloadFailed", "warning", prometheus,
            f"Prometheus {failing['instance']} rejected its configuration",
            f"The last configuration reload of Prometheus {failing['instance']} failed; it still runs the "
            "previous configuration.")),
        alert_test("8m", "AlertmanagerNotificationsFailing", fleet.expect(
            "AlertmanagerNotificationsFailing", "warning",
            {fleet.host: am[fleet.host], "instance": am["instance"], "integration": "webhook"},
            "Alertmanager fails to send webhook notifications",
            f"Alertmanager {am['instance']} failed 30 webhook notification(s) in the last 5 minutes.")),
        alert_test("8m", "OtelCollectorSpansNotSent", fleet.expect(
            "OtelCollectorSpansNotSent", "warning",
            {fleet.host: collector[fleet.host], "instance": collector["instance"], "exporter": "otlp_grpc/jaeger"},
            "The OpenTelemetry Collector fails to send spans to otlp_grpc/jaeger",
            f"The Collector {collector['instance']} failed to send 120 span(s) through otlp_grpc/jaeger in the"
            " last 5 minutes: traces are missing from the trace store.")),
    ]
    return scenario
