"""Values of the recording rules the alerts and dashboards read: old and new vLLM names, efficiency and
the inventory joins."""

from __future__ import annotations

from llmobs.conventions import XID_CLASS_INFO
from llmobs.rules.testing.fleet import Engine, Fleet
from llmobs.rules.testing.promtool import Scenario, Timeline


def scenarios(fleet: Fleet) -> list[Scenario]:
    return [recorded_values(fleet)]


def recorded_values(fleet: Fleet) -> Scenario:
    tl = Timeline(10, 61)
    model = fleet.default_model()
    scenario = Scenario("recording rules: old and new vLLM names, efficiency, inventory joins", tl)
    series, gpus, engine = fleet.busy_host(tl, "gpu-node-1", 2, "H100-SXM", model)
    scenario.series += series
    old = Engine("gpu-node-2", model)
    scenario.series += fleet.vllm_engine(tl, old, old_names=True)
    # vLLM 0.8: the prefix cache only under its old names, in KV blocks of 16 tokens.
    v08 = Engine("gpu-node-3", f"{model}-0.8")
    scenario.series += fleet.vllm_engine(tl, v08, old_names=True)
    for s in scenario.where(lambda s: s.name.startswith("vllm:prefix_cache_") and s.labels["instance"] == v08.instance):
        s.name, s.samples = s.name.replace("vllm:", "vllm:gpu_"), [v / 16 for v in s.samples]
    h, new, power = fleet.host, engine.instance, round(fleet.catalog.gpu_models["H100-SXM"].power_limit_watts * 0.97)
    xid = fleet.catalog.xids.codes[79]
    checks = [
        (f'instance_model:vllm_kv_cache_usage:max{{instance="{old.instance}"}}', fleet.engine_labels(old), 0.82),
        (f'instance_model:vllm_kv_cache_usage:max{{instance="{new}"}}', fleet.engine_labels(engine), 0.82),
        (f'instance_model:vllm_generation_tokens:rate5m{{instance="{new}"}}', fleet.engine_labels(engine), 3000),
        (f'model:vllm_requests:rate5m{{model_name="{model}"}}', {"model_name": model}, 20),
        (f'instance_model:vllm_served_model:info{{instance="{old.instance}"}}', fleet.engine_labels(old), 1),
        (f'instance_model:vllm_prefix_cache_hits:ratio_rate5m{{instance="{new}"}}', fleet.engine_labels(engine), 0.5),
        (f'instance_model:vllm_prefix_cache_hits:ratio_rate5m{{instance="{v08.instance}"}}',
         fleet.engine_labels(v08), 0.5),
        (f'instance_model:vllm_served_model:info{{instance="{new}"}}', fleet.engine_labels(engine), 1),
        (f'host:dcgm_gpus:count{{{h}="{engine.host}"}}', {h: engine.host}, 2),
        (f'host_gpu:dcgm_temp_margin:celsius{{gpu="0", {h}="{engine.host}"}}', fleet.gpu_labels(gpus[0]), 15),
        (f'host_gpu:dcgm_power_throttle:ratio_rate5m{{gpu="0", {h}="{engine.host}"}}', fleet.gpu_labels(gpus[0]), 0.4),
        (f'host:dcgm_energy_joules:rate5m{{{h}="{engine.host}"}}', {h: engine.host}, 2 * power),
        (f'instance_model:dcgm_energy_joules:rate5m{{instance="{new}"}}', fleet.engine_labels(engine), 2 * power),
        (f'instance_model:vllm_generation_tokens_per_gpu:rate5m{{instance="{new}"}}', fleet.engine_labels(engine),
         1500),
        (f'instance_model:vllm_generation_tokens_per_joule:ratio_rate5m{{instance="{new}"}}',
         fleet.engine_labels(engine), 3000 / (2 * power)),
        (f'{XID_CLASS_INFO}{{xid="79"}}', {"xid": "79", "xid_class": "fatal", "xid_name": xid.name,
                                           "xid_action": fleet.catalog.xids.actions[xid.action]}, 1),
    ]
    for expr, labels, value in checks:
        scenario.expect_value(expr, "10m", labels, value)
    return scenario
