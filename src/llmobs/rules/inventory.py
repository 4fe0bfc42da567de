"""Info series the alerts and efficiency rules join on: the engine-to-GPU map and the XID classes."""

from __future__ import annotations

from collections.abc import Iterable

from llmobs.catalog import Catalog
from llmobs.conventions import ENGINE_GPU_INFO, INVENTORY_GROUP, XID_CLASS_INFO, XID_CLASSES_GROUP
from llmobs.rules.models import RecordingRule, RuleGroup
from llmobs.settings import VllmEndpoint


def engine_gpu_group(endpoints: Iterable[VllmEndpoint], host_label: str) -> RuleGroup:
    """`llmobs:engine_gpu:info{host, instance, model_name, gpu} 1` per GPU of each declared vLLM endpoint."""
    rules = tuple(
        RecordingRule(record=ENGINE_GPU_INFO, expr="vector(1)",
                      labels={host_label: e.host, "instance": e.instance, "model_name": e.model, "gpu": str(gpu)})
        for e in endpoints for gpu in e.gpus
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
