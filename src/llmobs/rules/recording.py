"""The business layer: the catalog's recording rules with their templates rendered for the host label,
after the rules that expand each latency histogram into bucket rates and quantiles per level.

`documented_groups` keeps each rule's unit and meaning (the metrics catalog page); `groups` is the rule
output (recording.yml).
"""

from __future__ import annotations

from llmobs import conventions, templating
from llmobs.catalog import Catalog, LatencyHistogram, RecordingGroup
from llmobs.catalog import RecordingSpec as RecordingRule
from llmobs.conventions import latency_buckets, latency_quantile
from llmobs.promql import Promql, by
from llmobs.rules import models

SOURCE = "src/llmobs/catalog/recording_rules.yaml"
_ENGINE = ("instance", "model_name")  # with the host label: the labels of one engine


def groups(catalog: Catalog, host: str, stuck_window: str) -> list[models.RuleGroup]:
    """The recording rules of recording.yml (the XID classes come from llmobs.rules.inventory)."""
    return [models.RuleGroup(
        name=group.name,
        interval=group.interval,
        rules=tuple(models.RecordingRule(record=rule.record, expr=rule.expr, labels=rule.labels)
                    for rule in group.rules))
        for group in documented_groups(catalog, host, stuck_window)]


def documented_groups(catalog: Catalog, host: str, stuck_window: str) -> list[RecordingGroup]:
    """The histogram groups, the engine-agnostic layer, then the catalog's groups, every `<< host >>` rendered."""
    result = [*histogram_groups(catalog, host), engine_group(catalog, host, stuck_window)]
    for group in catalog.recording.groups:
        rules = tuple(rule.model_copy(update={"expr": _render(rule.expr, host, f"{group.name}.{rule.record}")})
                      for rule in group.rules)
        result.append(group.model_copy(update={"rules": rules}))
    return result


def _render(expr: str, host: str, field: str) -> str:
    return " ".join(templating.render(expr, {"host": host}, f"recording_rules.yaml: {field}", SOURCE).split())


def engine_group(catalog: Catalog, host: str, stuck_window: str) -> RecordingGroup:
    """The engine-agnostic layer: per signal, one rule per engine that has it, labelled with the engine."""
    context = {"by": by(host, *_ENGINE), "stuck_window": stuck_window}
    rules = []
    for signal in catalog.recording.engine_signals:
        for engine, expr in signal.sources.items():
            field = f"engine_signals.{signal.record}.{engine}"
            text = " ".join(templating.render(expr, context, f"recording_rules.yaml: {field}", SOURCE).split())
            rules.append(RecordingRule(record=signal.record, expr=text, unit=signal.unit, labels={
                "inference_engine": engine}, meaning=f"{signal.meaning} ({catalog.engines[engine].title})"))
    return RecordingGroup(name=conventions.ENGINE_GROUP, rules=tuple(rules))


def histogram_groups(catalog: Catalog, host: str) -> list[RecordingGroup]:
    """A group per latency histogram (`llmobs.vllm.latency.<name>`) and per vLLM request phase and length histogram
    (`llmobs.vllm.requests.<name>`): bucket rates per engine and per model, then each quantile of both. Prometheus
    evaluates a group's rules one after another and the groups side by side, so one group per histogram keeps
    each evaluation short and spreads them over the server's cores (docs/performance.md, design change 7)."""
    histograms = ((conventions.LATENCY_GROUP, catalog.recording.latency_histograms),
                  (conventions.REQUEST_GROUP, catalog.recording.request_histograms))
    return [RecordingGroup(name=f"{prefix}.{hist.name}", interval=catalog.recording.histogram_interval,
                           rules=tuple(_latency_rules(catalog, hist, host)))
            for prefix, hists in histograms for hist in hists]


def _latency_rules(catalog: Catalog, hist: LatencyHistogram, host: str) -> list[RecordingRule]:
    unit = catalog.metric(hist.sources[0]).unit
    per_engine, per_model = latency_buckets(hist.name, "instance_model"), latency_buckets(hist.name, "model")
    by_bucket = (host, *_ENGINE, "le")
    sources = " or ".join(Promql().sum_rate(f"{source}_bucket", "5m", by_bucket) for source in hist.sources)
    old_names = f" (also reads the old name {', '.join(hist.sources[1:])})" if len(hist.sources) > 1 else ""
    rules = [
        RecordingRule(record=per_engine, expr=sources, unit="per_second",
                      meaning=f"Bucket rates of the {hist.meaning} histogram per instance and model{old_names}."),
        RecordingRule(record=per_model, expr=f"sum by ({by('model_name', 'le')}) ({per_engine})", unit="per_second",
                      meaning=f"Bucket rates of the {hist.meaning} histogram per model."),
    ]
    for level, buckets in (("instance_model", per_engine), ("model", per_model)):
        rules += [RecordingRule(record=latency_quantile(hist.name, level), expr=Promql.quantile(quantile, buckets),
                                unit=unit, labels={"quantile": str(quantile)},
                                meaning=f"P{quantile * 100:g} {hist.meaning} per {level.replace('_', ' and ')}.")
                  for quantile in catalog.recording.quantiles]
    return rules
