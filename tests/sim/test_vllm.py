"""The vLLM simulator: its /metrics agrees with the catalog, and it behaves as a believable engine.

The page against vLLM's own recordings: test_vllm_upstream.py."""

from __future__ import annotations

import math
import random

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from llmobs import catalog as catalog_mod
from llmobs.errors import ConfigError
from llmobs.sim.faults import KINDS, Fault
from llmobs.sim.vllm import Engine, EngineConfig, Histogram, request_token_buckets
from llmobs.sim.vllm_releases import RELEASES

from .conftest import families

CATALOG = catalog_mod.load()


def _engine(model: str = "H100-SXM", seed: int = 1, **config: object) -> Engine:
    config = {"model": "llama-3.1-8b-instruct", "params_b": 8.0, "rps": 4.0, **config}
    return Engine(EngineConfig(**config), CATALOG.gpu_models[model], random.Random(seed), CATALOG)


def _run(engine: Engine, seconds: int, faults: dict | None = None, start: float = 0.0) -> float:
    for second in range(seconds):
        engine.tick(start + second, 1.0, faults or {})
    return start + seconds


def _text(engine: Engine) -> str:
    registry = CollectorRegistry()
    registry.register(engine.collector())
    return generate_latest(registry).decode()


def _quantile(histogram: Histogram, q: float) -> float:
    total, seen = sum(histogram.counts), 0
    for bound, count in zip((*histogram.bounds, math.inf), histogram.counts, strict=True):
        seen += count
        if seen >= q * total:
            return bound
    return math.inf


def _fault(name: str, **params: float) -> dict[str, Fault]:
    kind = KINDS[name]
    return {name: Fault(kind, engine="m", params={**{p.name: p.default for p in kind.params}, **params})}


@pytest.mark.parametrize("version", sorted(RELEASES))
def test_metrics_are_the_catalogs_with_vllm_labels_and_buckets(version: str) -> None:
    release = RELEASES[version]
    engine = _engine(vllm_version=version)
    _run(engine, 30)
    served = {name: f for name, f in families(_text(engine)).items() if not name.endswith("_created")}
    expected = release.served(CATALOG)
    # prometheus_client names counter families without their _total suffix.
    assert {f.name if f.type != "counter" else f"{f.name}_total" for f in served.values()} == {
        m.name for m in expected}
    for metric in expected:
        family = served[metric.name.removesuffix("_total") if metric.type == "counter" else metric.name]
        assert family.type == metric.type and family.documentation == metric.help, metric.name
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = set(sample.labels) - {"le"}
            if metric.name != "vllm:cache_config_info" or release.cache_config_labels is None:
                assert labels == set(CATALOG.labels_of(metric)), (metric.name, labels)
            if {"engine", "model_name"} <= labels:
                assert sample.labels["model_name"] == "llama-3.1-8b-instruct" and sample.labels["engine"] == "0"
        if metric.type == "histogram":
            bounds = [float(s.labels["le"]) for s in family.samples if s.name.endswith("_bucket")]
            assert bounds == [*CATALOG.buckets_of(metric), math.inf], metric.name
    names = {m.name for m in expected}
    assert ("vllm:gpu_cache_usage_perc" in names) is release.old_names
    assert ("vllm:time_per_output_token_seconds" in names) is release.old_names
    assert "vllm:kv_cache_usage_perc" in names and "vllm:inter_token_latency_seconds" in names
    reasons = {s.labels["finished_reason"] for s in served["vllm:request_success"].samples
               if s.name == "vllm:request_success_total"}
    assert reasons == set(release.finish_reasons) <= set(
        CATALOG.metric("vllm:request_success_total").label_values["finished_reason"])


def test_request_token_buckets_follow_max_model_len() -> None:
    assert request_token_buckets(32768) == CATALOG.bucket_families["request_tokens"]
    assert request_token_buckets(4096)[-1] == 2000 and request_token_buckets(5000)[-1] == 5000
    engine = _engine(max_model_len=4096)
    assert engine.hist["prompt"].bounds == request_token_buckets(4096)


def test_iteration_tokens_count_tokens_per_step_and_itl_counts_intervals() -> None:
    engine = _engine(rps=6.0)
    _run(engine, 300)
    c, h = engine.counters, engine.hist
    assert c["num_preemptions"] == 0
    # Every prompt token that was computed (not found in the prefix cache) and every generated token was
    # scheduled in some step; a decode-only step carries one token per running request.
    scheduled = c["prompt_tokens"] - c["prefix_cache_hits"] + c["generation_tokens"]
    in_flight = sum(r.prompt - r.cached + r.generated for r in engine.running)
    assert scheduled - in_flight <= h["iteration"].total <= scheduled
    steps = sum(h["iteration"].counts)
    assert 0.8 * 300 / engine.base_itl < steps < 1.5 * 300 / engine.base_itl
    assert h["iteration"].total / steps > 10    # tokens, not a handful of requests
    # One inter-token latency per token after the first of each request.
    assert sum(h["itl"].counts) == c["generation_tokens"] - sum(h["ttft"].counts)


def test_queue_limit_refuses_at_admission_and_counts_only_rejections() -> None:
    engine = _engine(max_num_queued_reqs=3)
    _run(engine, 60)
    assert engine.admission_rejections["max_num_queued_reqs"] == 0       # a healthy engine keeps no queue
    _run(engine, 60, _fault("engine-stuck"), start=60)
    rejected = engine.admission_rejections["max_num_queued_reqs"]
    # The limit holds the backlog a scheduling pass leaves (one tick's arrivals come on top of it).
    assert len(engine.waiting) < 3 + 15 and rejected > 100
    assert sum(v for (_, _, status), v in engine.http.items() if status == "5xx") == rejected
    assert engine.finished.get("error", 0) == 0                          # they never reach the engine
    text = _text(engine)
    assert (f'vllm:admission_rejections_total{{model_name="llama-3.1-8b-instruct",reason="max_num_queued_reqs"}} '
            f"{float(rejected)}") in text
    refused = engine.submit(200.0, faults=_fault("queue-limit", max_queued=0))
    assert refused is None and engine.admission_rejections["max_num_queued_reqs"] == rejected + 1


def test_an_old_release_has_no_queue_limit_and_no_error_reason() -> None:
    with pytest.raises(ConfigError, match="no --max-num-queued-reqs"):
        _engine(vllm_version="0.10.2", max_num_queued_reqs=3)
    with pytest.raises(ConfigError, match="vllm_version"):
        _engine(vllm_version="0.8.5")
    engine = _engine(vllm_version="0.10.2")
    with pytest.raises(ConfigError, match="no queue limit"):
        engine.require_admission_limits()
    _run(engine, 120, _fault("error-burst", ratio=0.3))
    assert "error" not in engine.finished and engine.finished["abort"] > 0


def test_healthy_engine_under_load_meets_its_slos() -> None:
    engine = _engine(rps=5.0, params_b=70, gpus=(0, 1, 2, 3))
    _run(engine, 900)  # one full swing of the request rate
    finished = sum(engine.finished.values())
    assert 0.8 * 5 * 900 < finished < 1.2 * 5 * 900
    assert engine.finished.get("error", 0) == 0 and engine.counters["num_preemptions"] == 0
    assert _quantile(engine.hist["ttft"], 0.99) <= 1.0                       # TTFT SLO target
    assert _quantile(engine.hist["itl"], 0.99) <= 0.1                        # ITL SLO target
    assert engine.kv_usage() < 0.9 and len(engine.waiting) < 5
    assert engine.load.busy == 1.0 and 0.3 < engine.load.intensity < 0.9
    # Counters agree with the histograms, as in vLLM.
    assert engine.hist["e2e"].counts and sum(engine.hist["e2e"].counts) == finished
    assert engine.counters["generation_tokens"] >= sum(engine.hist["generation"].counts)


def test_latency_grows_with_load() -> None:
    light, heavy = _engine(rps=1.0, seed=2), _engine(rps=20.0, seed=2)
    _run(light, 300)
    _run(heavy, 300)
    assert heavy.hist["itl"].total / sum(heavy.hist["itl"].counts) > 1.3 * (
        light.hist["itl"].total / sum(light.hist["itl"].counts))


def test_engine_stuck_generates_nothing_while_requests_queue() -> None:
    engine = _engine()
    _run(engine, 60)
    tokens = engine.counters["generation_tokens"]
    _run(engine, 60, _fault("engine-stuck"), start=60)
    assert engine.counters["generation_tokens"] == tokens
    assert len(engine.waiting) > 100 and engine.load.busy == 1.0
    _run(engine, 120, start=120)
    assert engine.counters["generation_tokens"] > tokens and len(engine.waiting) < 5


def test_kv_saturation_fills_the_cache_and_preempts_until_the_surge_ends() -> None:
    engine = Engine(EngineConfig("gemma-2-9b-it", params_b=9, rps=3), CATALOG.gpu_models["L40S"],
                    random.Random(2), CATALOG)
    now = _run(engine, 60)
    preempted = engine.counters["num_preemptions"]
    now = _run(engine, 180, _fault("kv-saturation"), start=now)
    assert engine.kv_usage() > 0.95
    assert (engine.counters["num_preemptions"] - preempted) / 180 > 0.5   # the alert's threshold
    engine.end_surge(now)
    _run(engine, 30, start=now)
    assert engine.kv_usage() < 0.9 and engine.finished["abort"] > 0


def test_error_burst_fails_its_share_of_requests() -> None:
    engine = _engine()
    _run(engine, 300, _fault("error-burst", ratio=0.3))
    share = engine.finished["error"] / sum(engine.finished.values())
    assert 0.22 < share < 0.38
    assert sum(v for (_, _, status), v in engine.http.items() if status == "5xx") == engine.finished["error"]


def test_latency_fault_slows_tokens() -> None:
    engine = _engine(seed=3)
    _run(engine, 120)
    healthy = engine.itl({})
    assert engine.itl(_fault("latency", factor=6)) == pytest.approx(6 * healthy)


def test_engine_restart_starts_from_zero() -> None:
    engine = _engine()
    _run(engine, 30)
    engine.go_down()
    _run(engine, 30, start=30)
    assert engine.load.busy == 0 and engine.load.fb_fraction == 0   # a dead server frees its GPUs
    engine.restart()
    assert sum(engine.finished.values()) == 0 and engine.counters["generation_tokens"] == 0


def test_a_model_that_does_not_fit_is_refused() -> None:
    with pytest.raises(ConfigError, match="does not fit"):
        Engine(EngineConfig("llama-3.1-70b", params_b=70, gpus=(0,)), CATALOG.gpu_models["L40S"],
               random.Random(1), CATALOG)


def test_queue_limit_fault_answers_503_and_needs_a_release_that_has_limits() -> None:
    from llmobs.sim.host import HostConfig, HostSim

    sim = HostSim(HostConfig(name="node-a", gpu_model="H100-SXM", gpus=2, engines=(
        EngineConfig("new", port=18000, gpus=(0,)), EngineConfig("old", port=18001, gpus=(1,), vllm_version="0.10.2"))))
    with pytest.raises(ConfigError, match="no queue limit"):
        sim.inject({"fault": "queue-limit", "engine": "old"})
    assert not sim.faults.all()
    sim.inject({"fault": "queue-limit", "engine": "new"})
    status, answer = sim.complete(sim.engines[0], "/v1/completions", {"prompt": "hello", "max_tokens": 4})
    assert status == 503 and answer["error"]["code"] == 503
    assert sim.engines[0].admission_rejections["max_num_queued_reqs"] == 1
