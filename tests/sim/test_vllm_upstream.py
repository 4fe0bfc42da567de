"""The vLLM simulator against /metrics recorded from vLLM's own metrics code (tests/sim/data/vllm-*.prom,
made by tests/sim/data/record_vllm.py): family names, types, HELP, label names, enumerated label values,
bucket boundaries with their `le` spelling, and `_created` series, for each release the sim imitates.

Every difference the sim keeps on purpose is listed below with its reason; any other difference fails.
"""

from __future__ import annotations

import json
import random
import re
import socket
import urllib.request
from collections import defaultdict

import pytest
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest

from llmobs import catalog as catalog_mod
from llmobs.sim.host import HostConfig, HostSim
from llmobs.sim.vllm import Engine, EngineConfig, Served
from llmobs.sim.vllm_releases import RELEASES

from .conftest import DATA, series

CATALOG = catalog_mod.load()
# The engine each recording describes (see its header).
RECORDED = {
    "0.33.0": {"model": "llama-3.1-8b-instruct", "max_model_len": 32768},
    "0.10.2": {"model": "phi-3-mini-4k-instruct", "max_model_len": 4096, "params_b": 3.8},
}
# On the recordings, not served by the sim, and why.
NOT_SIMULATED = {
    "http_request_duration_seconds": "prometheus-fastapi-instrumentator's latency by handler: the sim does not "
                                     "time its HTTP handling, and no rule, alert or panel reads it",
    "http_request_duration_highr_seconds": "the instrumentator's fine-bucket latency: as above",
    "http_request_size_bytes": "the instrumentator's request-size summary: the sim has no request bodies to "
                               "measure, and the catalog has no summary type",
    "http_response_size_bytes": "the instrumentator's response-size summary: as above",
}
# Served by a real engine only with flags or hardware the recordings (and the lab) do not use: absent from
# both the recordings and the sim. A recording that has one of them was made with another configuration.
ONLY_WITH_FLAGS = {
    "vllm:spec_decode_num_drafts": "needs a speculative_config",
    "vllm:spec_decode_num_draft_tokens": "needs a speculative_config",
    "vllm:spec_decode_num_accepted_tokens": "needs a speculative_config",
    "vllm:spec_decode_num_accepted_tokens_per_pos": "needs a speculative_config",
    "vllm:lora_requests_info": "needs --enable-lora",
    "vllm:num_requests_kv_fetch_by_stage": "needs a KV-consumer KV connector (disaggregated prefill)",
    "vllm:nixl_xfer_time_seconds": "needs the NIXL KV connector",
    "vllm:kv_block_lifetime_seconds": "needs --kv-cache-metrics",
    "vllm:kv_block_idle_before_evict_seconds": "needs --kv-cache-metrics",
    "vllm:kv_block_reuse_gap_seconds": "needs --kv-cache-metrics",
    "vllm:corrupted_requests": "needs VLLM_COMPUTE_NANS_IN_LOGITS=1",
    "vllm:watermark_requests": "needs a watermark_config",
}
# Label values that describe the server the page came from rather than the metric's shape.
FREE_LABELS = {"model_name", "engine", "handler", "method", "le", "generation", "implementation", "major", "minor",
               "patchlevel", "version"}
# Children that exist once something was counted: both pages hold values of the catalog's list.
COUNTED_LABELS = {"status": CATALOG.metric("http_requests_total").label_values["status"]}
# vllm:cache_config_info's values are the recording machine's CPU-platform config: only its label names count.
CONFIG_INFO = "vllm:cache_config_info"
HEADER = re.compile(r"^# (HELP|TYPE) (\S+) ?(.*)$")


def _page_of_recording(version: str) -> str:
    return (DATA / f"vllm-{version}.prom").read_text(encoding="utf-8")


def _sim_page(version: str) -> str:
    """The sim's /metrics for the recorded engine after some traffic, with the default collectors that
    vLLM's single-process API server registry has (as llmobs.sim.host serves it)."""
    recorded = RECORDED[version]
    engine = Engine(EngineConfig(vllm_version=version, **recorded), CATALOG.gpu_models["H100-SXM"], random.Random(7),
                    CATALOG)
    for second in range(60):
        engine.tick(second, 1.0, {})
    engine.count_http("/v1/models", "GET", "2xx")
    registry = CollectorRegistry()
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=registry)
    registry.register(engine.collector())
    return generate_latest(registry).decode()


def _shape(text: str) -> dict[str, dict]:
    """Per exposed family (the name on its `# TYPE` line): type, HELP, sample names, label names, the
    values of enumerated labels, and each histogram's `le` strings in order."""
    families: dict[str, dict] = {}
    for line in text.splitlines():
        match = HEADER.match(line)
        if match:
            kind, name, rest = match.groups()
            family = families.setdefault(name, {"samples": set(), "labels": set(), "values": defaultdict(set),
                                                "le": []})
            family["help" if kind == "HELP" else "type"] = rest
    names = sorted(families, key=len, reverse=True)
    for name, labels, _ in series(text) + [(line.split(" ")[0], [], "") for line in text.splitlines()
                                            if line and not line.startswith("#") and "{" not in line.split(" ")[0]]:
        family = next(f for f in names if name == f or name.startswith(f + "_"))
        shape = families[family]
        shape["samples"].add(name)
        shape["labels"].add(tuple(sorted(key for key, _ in labels if key != "le")))
        for key, value in labels:
            if key not in FREE_LABELS | set(COUNTED_LABELS) and family != CONFIG_INFO:
                shape["values"][key].add(value)
        le = dict(labels).get("le")
        if le is not None and le not in shape["le"]:
            shape["le"].append(le)
        for key, value in labels:
            assert key not in COUNTED_LABELS or value in COUNTED_LABELS[key], (name, key, value)
    return families


@pytest.fixture(scope="module", params=sorted(RECORDED))
def pages(request: pytest.FixtureRequest) -> tuple[str, dict, dict]:
    version = request.param
    return version, _shape(_page_of_recording(version)), _shape(_sim_page(version))


def _vllm_family(name: str) -> bool:
    return not name.startswith(("python_", "process_"))


def test_recordings_are_the_releases_own(pages: tuple[str, dict, dict]) -> None:
    version, recorded, _ = pages
    text = _page_of_recording(version)
    assert f"# /metrics of vLLM {version} " in text.splitlines()[0]
    assert "vllm:num_requests_running" in recorded and "vllm:request_success_total" in recorded
    flagged = {name for name in recorded if name.removesuffix("_total") in ONLY_WITH_FLAGS}
    assert not flagged, f"recorded with flags the tests do not expect: {flagged}"


def test_the_sim_serves_the_families_of_the_release(pages: tuple[str, dict, dict]) -> None:
    version, recorded, simulated = pages
    missing = set(recorded) - set(simulated) - set(NOT_SIMULATED) - {f"{n}_created" for n in NOT_SIMULATED}
    extra = set(simulated) - set(recorded)
    assert not missing, f"vLLM {version} serves these and the sim does not: {sorted(missing)}"
    assert not extra, f"the sim serves these and vLLM {version} does not: {sorted(extra)}"
    assert not {n for n in simulated if n.removesuffix("_total") in ONLY_WITH_FLAGS}


def test_types_help_samples_and_labels_match(pages: tuple[str, dict, dict]) -> None:
    version, recorded, simulated = pages
    for name in sorted(set(recorded) & set(simulated)):
        real, sim = recorded[name], simulated[name]
        assert (sim["type"], sim["help"]) == (real["type"], real["help"]), (version, name)
        if not _vllm_family(name):
            continue  # the process and GC collectors are prometheus_client's in both
        suffixes = {s.removeprefix(name) for s in sim["samples"]} if sim["samples"] else set()
        assert suffixes == {s.removeprefix(name) for s in real["samples"]}, (version, name)
        assert sim["labels"] == real["labels"], (version, name, sim["labels"], real["labels"])
        assert dict(sim["values"]) == dict(real["values"]), (version, name)


def test_histograms_have_the_releases_buckets_spelled_alike(pages: tuple[str, dict, dict]) -> None:
    version, recorded, simulated = pages
    histograms = [n for n, f in recorded.items() if f["type"] == "histogram" and n in simulated and _vllm_family(n)]
    assert len(histograms) >= 14
    for name in histograms:
        assert simulated[name]["le"] == recorded[name]["le"], (version, name)
    # The request-token family follows max_model_len, as vLLM's build_1_2_5_buckets does.
    top = "20000.0" if RECORDED[version]["max_model_len"] == 32768 else "2000.0"
    assert recorded["vllm:request_prompt_tokens"]["le"][-2:] == [top, "+Inf"]


def test_counters_and_histograms_carry_created_series_gauges_do_not(pages: tuple[str, dict, dict]) -> None:
    version, recorded, simulated = pages
    for shapes in (recorded, simulated):
        for name, family in shapes.items():
            if not _vllm_family(name) or name.endswith("_created") or name in NOT_SIMULATED:
                continue
            created = (name.removesuffix("_total") if family["type"] == "counter" else name) + "_created"
            assert (created in shapes) is (family["type"] in ("counter", "histogram", "summary")), (version, name)
            if created in shapes:
                assert shapes[created]["type"] == "gauge" and shapes[created]["help"] == family["help"]


def test_version_reports_the_release_whose_names_it_serves() -> None:
    for version in RELEASES:
        engine = Engine(EngineConfig("m", vllm_version=version), CATALOG.gpu_models["H100-SXM"], random.Random(1),
                        CATALOG)
        assert Served(engine).version() == {"version": version}
    served = {m.name for m in RELEASES["0.10.2"].served(CATALOG)}
    assert {"vllm:gpu_cache_usage_perc", "vllm:kv_cache_usage_perc", "vllm:time_per_output_token_seconds",
            "vllm:inter_token_latency_seconds"} <= served
    assert not {"vllm:gpu_cache_usage_perc", "vllm:time_per_output_token_seconds"} & {
        m.name for m in RELEASES["0.33.0"].served(CATALOG)}


def test_a_served_page_has_the_releases_families_and_version() -> None:
    """The sim's HTTP server, end to end: /version names the release, /metrics serves only its families."""
    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    engine_port, control_port = ports
    sim = HostSim(HostConfig(name="node-a", gpu_model="T4", gpus=1, bind="127.0.0.1", fault_port=control_port,
                             engines=(EngineConfig(port=engine_port, vllm_version="0.10.2",
                                                   **RECORDED["0.10.2"]),)))
    sim.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{engine_port}/version", timeout=5) as answer:
            assert json.load(answer) == {"version": "0.10.2"}
        with urllib.request.urlopen(f"http://127.0.0.1:{engine_port}/metrics", timeout=5) as answer:
            assert answer.headers["Content-Type"].startswith("text/plain; version=")
            page = answer.read().decode()
    finally:
        sim.stop()
    assert set(_shape(page)) - set(_shape(_page_of_recording("0.10.2"))) == set()


def test_vllm_0_8_counts_prefix_cache_blocks_under_the_old_names_only() -> None:
    """vLLM 0.8 (recorded, not imitated): what the prefix-cache hit ratio's fallback reads
    (instance_model:vllm_prefix_cache_hits:ratio_rate5m; its promtool test is in recording.test.yml)."""
    shapes = _shape((DATA / "vllm-0.8.5.post1.prom").read_text(encoding="utf-8"))
    assert "blocks" in shapes["vllm:gpu_prefix_cache_queries_total"]["help"]
    assert "blocks" in shapes["vllm:gpu_prefix_cache_hits_total"]["help"]
    assert not {"vllm:prefix_cache_queries_total", "vllm:kv_cache_usage_perc",
                "vllm:inter_token_latency_seconds"} & set(shapes)
    assert shapes["vllm:request_success_total"]["values"]["finished_reason"] == {"stop", "length", "abort"}
    # From 0.9 the old names count tokens, beside the new ones (recorded on 0.10.2).
    newer = _shape(_page_of_recording("0.10.2"))
    assert "tokens" in newer["vllm:gpu_prefix_cache_queries_total"]["help"]
    assert "vllm:prefix_cache_queries_total" in newer
