"""The SGLang and TensorRT-LLM simulators against their engines' real expositions: SGLang 0.5.23 recorded
from its own collectors (tests/sim/data/sglang-0.5.23.prom, record_sglang.py), TensorRT-LLM 1.2.1 built from
its collector's definitions (trtllm-1.2.1.prom, build_trtllm.py; no GPU ran one). Family names, types,
HELP, sample names, label names, enumerated label values and bucket boundaries with their `le` spelling
must match; every difference the sims keep on purpose is listed below with its reason.
"""

from __future__ import annotations

import json
import random
import socket
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from llmobs import catalog as catalog_mod
from llmobs.sim.host import HostConfig, HostSim
from llmobs.sim.vllm import Engine, EngineConfig

from .conftest import DATA, series, shape

CATALOG = catalog_mod.load()
# The engine each recording describes (see its header), and its release.
RECORDED = {
    "sglang": ("sglang-0.5.23.prom", "0.5.23", "meta-llama/Llama-3.1-8B-Instruct"),
    "trtllm": ("trtllm-1.2.1.prom", "1.2.1", "undefined"),
}
# Labels whose values describe the server or its traffic rather than the family's shape: the model; the
# scheduler's pid (SGLang's per-process gauges); the HTTP paths, methods and status codes the recording's
# client happened to use (the sim counts those its own traffic uses: /v1/chat/completions, /v1/completions).
FREE_LABELS = {"model_name", "pid", "endpoint", "method", "status_code"}
# Children that exist once something was counted: both pages hold values of the catalog's list.
COUNTED_LABELS = {"finished_reason": CATALOG.metric("request_success_total").label_values["finished_reason"]}
# The sims serve every recorded family; differences in values, kept on purpose:
# - SGLang's per-request families split by is_streaming: the simulated clients do not stream, so the
#   "true" children are zero (their labels and buckets are still served, as an idle SGLang serves them).
# - Families of features the lab's servers do not use (data-parallel attention, speculative decoding,
#   Mamba and sliding-window pools, routing keys, disaggregated queues, hierarchical cache) stay at zero.
# - TensorRT-LLM counts no errored request (1.2.1 has no error reason): neither does its sim.


def _recorded(engine: str) -> str:
    return (DATA / RECORDED[engine][0]).read_text(encoding="utf-8")


def _shape(text: str) -> dict[str, dict]:
    return shape(text, FREE_LABELS, COUNTED_LABELS)


def _engine(engine: str) -> Engine:
    config = EngineConfig(model="meta-llama/Llama-3.1-8B-Instruct", engine=engine)
    return Engine(config, CATALOG.gpu_models["L40S"], random.Random(7), CATALOG)


def _sim_page(engine: str) -> str:
    """The sim's page after a minute of traffic, alone in its registry (SGLang's and trtllm-serve's
    multiprocess registries have no process or Python collectors)."""
    simulated = _engine(engine)
    for second in range(60):
        simulated.tick(second, 1.0, {})
    simulated.count_http("/v1/models", "GET", "2xx")
    registry = CollectorRegistry()
    registry.register(simulated.collector())
    return generate_latest(registry).decode()


@pytest.fixture(scope="module", params=sorted(RECORDED))
def pages(request: pytest.FixtureRequest) -> tuple[str, dict, dict]:
    engine = request.param
    return engine, _shape(_recorded(engine)), _shape(_sim_page(engine))


def test_the_recordings_are_the_releases(pages: tuple[str, dict, dict]) -> None:
    engine, recorded, _ = pages
    _, version, _ = RECORDED[engine]
    header = _recorded(engine).splitlines()[0]
    assert version in header and (engine == "sglang") == ("recorded by" in header)
    assert CATALOG.engines[engine].recordings[0] == RECORDED[engine][0]
    assert len(recorded) == len(CATALOG.engine_metrics(engine))


def test_the_sim_serves_exactly_the_recorded_families(pages: tuple[str, dict, dict]) -> None:
    engine, recorded, simulated = pages
    assert set(simulated) == set(recorded), (engine, sorted(set(recorded) - set(simulated)),
                                             sorted(set(simulated) - set(recorded)))


def test_types_help_samples_labels_and_values_match(pages: tuple[str, dict, dict]) -> None:
    engine, recorded, simulated = pages
    for name in sorted(recorded):
        real, sim = recorded[name], simulated[name]
        assert (sim["type"], sim["help"]) == (real["type"], real["help"]), (engine, name)
        assert sim["samples"] == real["samples"], (engine, name)   # no _created: multiprocess registries
        assert sim["labels"] == real["labels"], (engine, name, sim["labels"], real["labels"])
        assert dict(sim["values"]) == dict(real["values"]), (engine, name)


def test_histograms_have_the_releases_buckets_spelled_alike(pages: tuple[str, dict, dict]) -> None:
    engine, recorded, simulated = pages
    histograms = [name for name, family in recorded.items() if family["type"] == "histogram"]
    assert len(histograms) == {"sglang": 12, "trtllm": 4}[engine]
    for name in histograms:
        assert simulated[name]["le"] == recorded[name]["le"], (engine, name)


def _values(text: str) -> dict[str, float]:
    """Sample name -> its value summed over the children."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("{")[0].split(" ")[0], float(line.rsplit(" ", 1)[1])
            totals[name] = totals.get(name, 0.0) + value
    return totals


@pytest.mark.parametrize("engine", sorted(RECORDED))
def test_label_names_are_in_alphabetical_order_as_in_a_multiprocess_registry(engine: str) -> None:
    for text in (_recorded(engine), _sim_page(engine)):
        for _, labels, _ in series(text):
            names = [name for name, _ in labels if name != "le"]
            assert names == sorted(names), (engine, names)


def test_the_pages_follow_the_request_model() -> None:
    """The values come from the same model as vLLM's: what it ran, queued, generated and finished."""
    sglang = _values(_sim_page("sglang"))
    assert sglang["sglang:num_requests_total"] == sglang["sglang:e2e_request_latency_seconds_count"] > 0
    assert sglang["sglang:generation_tokens_total"] > sglang["sglang:num_requests_total"]
    assert 0 < sglang["sglang:token_usage"] <= 1 and sglang["sglang:num_running_reqs"] > 0
    trtllm = _values(_sim_page("trtllm"))
    # The model's aborted requests are timed, not counted as successes.
    assert 0 < trtllm["request_success_total"] <= trtllm["e2e_request_latency_seconds_count"]
    assert trtllm["time_to_first_token_seconds_count"] >= trtllm["request_success_total"]


def test_a_served_page_is_on_the_engines_metrics_path() -> None:
    """The host serves each engine's page where the engine does (trtllm-serve: /prometheus/metrics)."""
    ports = []
    for _ in range(3):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    sglang_port, trtllm_port, control_port = ports
    sim = HostSim(HostConfig(name="node-a", gpu_model="L40S", gpus=2, bind="127.0.0.1", fault_port=control_port,
                             engines=(EngineConfig("m1", port=sglang_port, gpus=(0,), engine="sglang"),
                                      EngineConfig("m2", port=trtllm_port, gpus=(1,), engine="trtllm"))))
    sim.start()
    try:
        pages = {}
        for engine, port in (("sglang", sglang_port), ("trtllm", trtllm_port)):
            url = f"http://127.0.0.1:{port}{CATALOG.engines[engine].metrics_path}"
            with urllib.request.urlopen(url, timeout=5) as answer:
                pages[engine] = answer.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{sglang_port}/v1/models", timeout=5) as answer:
            assert json.load(answer)["data"][0]["owned_by"] == "sglang"
    finally:
        sim.stop()
    for engine, page in pages.items():
        assert set(_shape(page)) == set(_shape(_recorded(engine))), engine
