"""TensorRT-LLM 1.2.1 (`trtllm-serve` with return_perf_metrics) on vLLM's request model: its page on
/prometheus/metrics.

Five per-request families (src/llmobs/catalog/metrics-trtllm.yaml, from tensorrt_llm/metrics/collector.py;
tests/sim/data/trtllm-1.2.1.prom is built from the same definitions, as no GPU ran one), with vLLM's
bucket families, which the sim's model already uses. 1.2.1 writes `undefined` for the model and the
engine type on every series: the model comes from the inventory's target labels. It counts only
requests that finished with a reason, so an errored request is in no family (the catalog's entry says so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmobs.sim.engine_page import Flavour, Labels, Page

if TYPE_CHECKING:
    from llmobs.sim.vllm import Engine

VERSION = "1.2.1"
UNDEFINED = "undefined"   # OpenAIServer._init_llm: model_name and engine_type, as 1.2.1 sets them


def server_labels(_engine: Engine) -> Labels:
    return {"model_name": UNDEFINED, "engine_type": UNDEFINED}


def _finished(engine: Engine) -> list[Labels]:
    """A finish reason's child exists once a request finished with it (prometheus_client's labels()); the
    model's aborted and errored requests are in none (1.2.1 counts neither)."""
    reasons = engine.catalog.metric("request_success_total").label_values["finished_reason"]
    return [{**server_labels(engine), "finished_reason": reason} for reason in reasons if engine.finished.get(reason)]


def page(engine: Engine) -> Page:
    finished = engine.finished
    hist = engine.hist
    return Page(
        values={"request_success_total": lambda labels: finished.get(labels["finished_reason"], 0)},
        histograms={"e2e_request_latency_seconds": lambda _: hist["e2e"],
                    "time_to_first_token_seconds": lambda _: hist["ttft"],
                    "time_per_output_token_seconds": lambda _: hist["tpot"],
                    "request_queue_time_seconds": lambda _: hist["queue"]})


FLAVOUR = Flavour(engine="trtllm", version=VERSION, owned_by="tensorrt_llm", buckets={}, server_labels=server_labels,
                  page=page, children={"request_success_total": _finished})
