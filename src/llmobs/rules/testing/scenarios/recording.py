"""Values of the recording rules the alerts and dashboards read: old and new vLLM names, efficiency and
the inventory joins; the engine-agnostic layer on each engine's series (and nothing where it lacks a signal)."""

from __future__ import annotations

from llmobs.conventions import ENGINES, PORTS, XID_CLASS_INFO
from llmobs.rules.slo import error_budget
from llmobs.rules.testing.fleet import Engine, Fleet
from llmobs.rules.testing.promtool import Scenario, Timeline


def scenarios(fleet: Fleet) -> list[Scenario]:
    return [recorded_values(fleet), engine_layer(fleet)]


# What the busy engines of llmobs.rules.testing (fleet, engines) give on each signal of the layer.
LAYER = {
    "instance_model:engine_requests_running:sum": {"vllm": 48, "sglang": 48, "llamacpp": 2},
    "instance_model:engine_requests_waiting:sum": {"vllm": 2, "sglang": 2, "llamacpp": 0},
    "instance_model:engine_requests:rate5m": {"vllm": 10, "sglang": 10, "trtllm": 10},
    "instance_model:engine_prompt_tokens:rate5m": {"vllm": 8000, "sglang": 8000, "llamacpp": 8000},
    "instance_model:engine_generation_tokens:rate5m": {"vllm": 3000, "sglang": 3000, "llamacpp": 3000},
    "instance_model:engine_kv_cache_usage:max": {"vllm": 0.82, "sglang": 0.82},
    "instance_model:engine_preemptions:rate5m": {"vllm": 0.01, "sglang": 0.01},
}


def engine_layer(fleet: Fleet) -> Scenario:
    """One busy engine of each kind on one host: each signal of the layer has its value on the engines that
    have it, labelled with the engine, and no series on the others (no panel or alert reads a fake 0)."""
    tl = Timeline(10, 61)
    scenario = Scenario("engine-agnostic layer: every signal on every engine that has it, none elsewhere", tl)
    engines = {kind: Engine("gpu-node-1", f"model-{kind}", PORTS["vllm"] + index, kind)
               for index, kind in enumerate(ENGINES)}
    for engine in engines.values():
        scenario.series += fleet.engine_series(tl, engine)
    for signal in fleet.catalog.recording.engine_signals:
        values = LAYER.get(signal.record)
        for kind, engine in engines.items():
            selector = f'{signal.record}{{instance="{engine.instance}"}}'
            if kind in signal.lacks:
                scenario.expect_none(selector, "10m")
            elif values is not None and kind in values:
                scenario.expect_value(selector, "10m", fleet.layer_labels(engine), values[kind])
    trtllm = engines["trtllm"]
    scenario.expect_value(f'instance_model_reason:engine_requests:rate5m{{instance="{trtllm.instance}"}}', "10m",
                          {**fleet.layer_labels(trtllm), "finished_reason": "stop"}, 10)
    availability = next(slo for slo in fleet.catalog.slos.slos if slo.ratio)
    errors = 10 * 0.3 * float(error_budget(availability, fleet.settings.slo.targets_for(engines["vllm"].model_name)))
    scenario.expect_value(f'instance_model:engine_request_errors:ratio_rate5m{{instance="{engines["vllm"].instance}"}}',
                          "10m", fleet.layer_labels(engines["vllm"]), errors / 10)
    return scenario


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
