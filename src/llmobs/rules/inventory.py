"""Info series the alerts and efficiency rules join on: the engine-to-GPU map and the XID classes."""

from __future__ import annotations

from collections.abc import Iterable

from llmobs.catalog import Catalog
from llmobs.conventions import (
    ENGINE_GPU_INFO,
    INVENTORY_GROUP,
    PROBE_TARGETS_GROUP,
    PROBE_TTFT_TARGET,
    XID_CLASS_INFO,
    XID_CLASSES_GROUP,
)
from llmobs.rules.models import RecordingRule, RuleGroup
from llmobs.settings import HostEndpoint, Settings


def gpu_list(gpus: Iterable[int]) -> str:
    """GPU indexes in words for alert texts: `0-3`, `0,2,5-7`."""
    runs: list[list[int]] = []
    for gpu in sorted(gpus):
        if runs and gpu == runs[-1][-1] + 1:
            runs[-1].append(gpu)
        else:
            runs.append([gpu])
    return ",".join(f"{run[0]}-{run[-1]}" if len(run) > 2 else ",".join(map(str, run)) for run in runs)


def _per_gpu(gpus: Iterable[int]) -> str:
    """One sample per GPU, each with its `gpu` label: the rule's static labels add the engine's."""
    return " or ".join(f'label_replace(vector(1), "gpu", "{gpu}", "gpu", ".*")' for gpu in gpus)


def probe_targets_group(settings: Settings) -> RuleGroup:
    """`llmobs:probe_ttft_target:seconds{model_name}`: the TTFT target (slo ttft_seconds) of each declared model,
    which the prober's EndpointProbeTtftOverSlo compares the clients' time to first token with."""
    models = sorted({endpoint.model for endpoint in settings.all_endpoints})
    return RuleGroup(name=PROBE_TARGETS_GROUP, rules=tuple(
        RecordingRule(record=PROBE_TTFT_TARGET, labels={"model_name": model},
                      expr=f"vector({settings.slo.targets_for(model).ttft_seconds:g})") for model in models))


def engine_gpu_group(endpoints: Iterable[HostEndpoint], host_label: str) -> RuleGroup:
    """`llmobs:engine_gpu:info{host, instance, model_name, inference_engine, gpus, gpu} 1` per GPU of each
    declared engine, from one rule per engine (not one per GPU: 1,000 hosts of 8 GPUs would need 8,000)."""
    rules = tuple(
        RecordingRule(record=ENGINE_GPU_INFO, expr=_per_gpu(e.gpus),
                      labels={host_label: e.host, "instance": e.instance, "model_name": e.model,
                              "inference_engine": e.engine, "gpus": gpu_list(e.gpus)})
        for e in endpoints
    )
    return RuleGroup(name=INVENTORY_GROUP, rules=rules)


def xid_class_group(catalog: Catalog) -> RuleGroup:
    """`llmobs:xid_class:info{xid, xid_class, xid_name, xid_action} 1` per XID code of the catalog."""
    xids = catalog.xids
    rules = tuple(
        RecordingRule(record=XID_CLASS_INFO, expr="vector(1)",
                      labels={"xid": str(code), "xid_class": xid.xid_class, "xid_name": xid.name,
                              "xid_action": xids.actions[xid.action]})
        for code, xid in sorted(xids.codes.items())
    )
    return RuleGroup(name=XID_CLASSES_GROUP, rules=rules)
