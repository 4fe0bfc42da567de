"""Input series of the engines other than vLLM (SGLang, TensorRT-LLM, llama.cpp), with the labels their
recordings show (tests/sim/data/*.prom, src/llmobs/catalog/metrics-<engine>.yaml) and the target labels
the kit's scrape jobs add (model_name from the inventory where the engine names no model)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmobs import exposition

if TYPE_CHECKING:
    from llmobs.rules.testing.fleet import Engine, Fleet
    from llmobs.rules.testing.promtool import Series, Timeline

# Constant labels the engines put on their series (their recordings).
SGLANG_TOKENIZER = {"engine_type": "unified"}
SGLANG_SCHEDULER = {"engine_type": "unified", "moe_ep_rank": "0", "pp_rank": "0", "tp_rank": "0"}
TRTLLM = {"engine_type": "undefined", "exported_model_name": "undefined"}  # its model_name, renamed by the scrape


def other_engine(fleet: Fleet, tl: Timeline, engine: Engine, busy: bool,
                 bad_share: dict[str, float] | None = None) -> list[Series]:
    """A busy engine: 10 requests/s of ~300 output tokens, 48 running, 2 waiting; each SLO's bad share at
    0.3 of its error budget, as for vLLM."""
    from llmobs.rules.testing.promtool import Series

    target = exposition.target_labels(getattr(fleet.jobs, engine.kind), engine.instance, fleet.host, engine.host)
    per_step = tl.interval if busy else 0
    requests = 10 * per_step
    model = {"model_name": engine.model_name}

    def s(name: str, extra: dict[str, str], values: list) -> Series:
        return Series(name, {**extra, **model, **target}, values)

    series = [Series("up", {**target, **({} if engine.kind == "sglang" else model)}, tl.flat(1))]
    if engine.kind == "sglang":
        streaming = {**SGLANG_TOKENIZER, "is_streaming": "true"}
        series += [
            s("sglang:num_running_reqs", SGLANG_SCHEDULER, tl.flat(48 if busy else 0)),
            s("sglang:num_queue_reqs", SGLANG_SCHEDULER, tl.flat(2 if busy else 0)),
            s("sglang:token_usage", SGLANG_SCHEDULER, tl.flat(0.82 if busy else 0)),
            s("sglang:num_retracted_requests_total", SGLANG_SCHEDULER, tl.ramp(0.01 * per_step)),
            s("sglang:realtime_tokens_total", {**SGLANG_SCHEDULER, "mode": "decode"}, tl.ramp(3000 * per_step)),
            s("sglang:num_requests_total", streaming, tl.ramp(requests)),
            s("sglang:num_aborted_requests_total", SGLANG_TOKENIZER, tl.ramp(0.005 * requests)),
            s("sglang:prompt_tokens_total", streaming, tl.ramp(8000 * per_step)),
            s("sglang:generation_tokens_total", streaming, tl.ramp(3000 * per_step)),
        ]
        histogram_labels = {"sglang:time_to_first_token_seconds": streaming}
    elif engine.kind == "trtllm":
        series.append(s("request_success_total", {**TRTLLM, "finished_reason": "stop"}, tl.ramp(requests)))
        histogram_labels = {}
    else:  # llama.cpp: no labels of its own, no request counter, no latency histogram
        series += [
            s("llamacpp:requests_processing", {}, tl.flat(2 if busy else 0)),
            s("llamacpp:requests_deferred", {}, tl.flat(0)),
            s("llamacpp:prompt_tokens_total", {}, tl.ramp(4000 * per_step)),
            s("llamacpp:prompt_tokens_cached_total", {}, tl.ramp(4000 * per_step)),
            s("llamacpp:tokens_predicted_total", {}, tl.ramp(3000 * per_step)),
            s("llamacpp:n_decode_total", {}, tl.ramp(50 * per_step)),
        ]
        return series
    return series + _latency(fleet, tl, engine, requests, histogram_labels, s, bad_share or {})


def _latency(fleet: Fleet, tl: Timeline, engine: Engine, requests: float, labels: dict[str, dict[str, str]],
             s, bad_share: dict[str, float]) -> list[Series]:
    """Each latency SLO's histogram on this engine: its target bucket and +Inf."""
    from llmobs.rules.slo import error_budget

    targets = fleet.settings.slo.targets_for(engine.model_name)
    series = []
    for spec in fleet.catalog.slos.slos:
        names = fleet.catalog.slo_histograms(spec, engine.kind) if spec.latency else []
        if not names:
            continue
        # Per token (~300 per request), except TTFT and TensorRT-LLM's per-request TPOT mean.
        per_token = spec.name != "ttft" and engine.kind != "trtllm"
        events = requests * (300 if per_token else 1)
        bad = bad_share.get(spec.name, 0.3 * float(error_budget(spec, targets)))
        extra = labels.get(names[0], TRTLLM if engine.kind == "trtllm" else SGLANG_TOKENIZER)
        threshold = exposition.le_value(getattr(targets, spec.latency.threshold))
        series += [s(f"{names[0]}_bucket", {**extra, "le": threshold}, tl.ramp(events * (1 - bad))),
                   s(f"{names[0]}_bucket", {**extra, "le": "+Inf"}, tl.ramp(events))]
    return series
