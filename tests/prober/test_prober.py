"""The endpoint prober (llmobs.prober) against the vLLM simulator's OpenAI API, served in-process over real
HTTP: a streamed answer is timed and counted, and each fault a client can meet between itself and the engine
(a 503 in front, a stall before the first token, a wrong key, nothing listening, an unreadable key file)
gives its own result, metric and log line naming the endpoint and never the key."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from ports import free_ports
from prometheus_client import generate_latest

from llmobs import catalog, conventions
from llmobs.prober.exporter import Prober
from llmobs.prober.probe import probe, targets
from llmobs.settings import Settings, load_settings
from llmobs.sim.host import HostConfig, HostSim
from llmobs.sim.vllm import EngineConfig

KEY = "sk-llmobs-test-0123456789"


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[HostSim, Settings, Path]]:
    """A simulated host with an open vLLM server (`open`) and one started with --api-key (`keyed`)."""
    open_port, keyed_port, control, closed = free_ports(4)
    sim = HostSim(HostConfig(name="gpu-p1", gpu_model="H100-SXM", gpus=2, bind="127.0.0.1", fault_port=control,
                             engines=(EngineConfig("open", port=open_port, gpus=(0,)),
                                      EngineConfig("keyed", port=keyed_port, gpus=(1,), api_key=KEY))))
    sim.start()
    endpoints = [{"host": "gpu-p1", "address": "127.0.0.1", "model": "open", "port": open_port, "gpus": [0]},
                 {"host": "gpu-p1", "address": "127.0.0.1", "model": "keyed", "port": keyed_port, "gpus": [1]},
                 {"host": "gpu-p2", "address": "127.0.0.1", "model": "gone", "port": closed, "gpus": [0]}]
    yield sim, load_settings({"vllm_endpoints": endpoints, "prober": {"interval": "5s", "timeout": "3s"}}), Path()
    sim.stop()


def _target(settings: Settings, model: str, **prober: object):
    merged = settings.prober.model_copy(update=prober)
    return next(t for t in targets(settings.all_endpoints, merged) if t.endpoint.model == model), merged


def test_a_streamed_answer_is_timed_and_counted(lab) -> None:
    _, settings, _ = lab
    target, options = _target(settings, "open")
    result = probe(target, options, timeout=3)
    assert result.result == "ok" and result.status == 200 and result.well_formed, result
    assert result.tokens == options.max_tokens  # the usage chunk's completion_tokens
    assert 0 < result.ttft < result.duration < 3
    assert len(result.gaps) == result.tokens - 1 and all(gap >= 0 for gap in result.gaps)


def test_a_stall_before_the_first_token_shows_in_ttft_then_times_out(lab) -> None:
    sim, settings, _ = lab
    target, options = _target(settings, "open")
    sim.inject({"fault": "front-stall", "engine": "open", "seconds": 1.2})
    try:
        stalled = probe(target, options, timeout=3)
        assert stalled.success and stalled.ttft >= 1.2, stalled
        sim.inject({"fault": "front-stall", "engine": "open", "seconds": 5})
        timed_out = probe(target, options, timeout=1.5)
        assert timed_out.result == "timeout" and timed_out.ttft is None and 1.5 <= timed_out.duration < 3
    finally:
        sim.clear("front-stall")


def test_a_503_in_front_of_the_engine_fails_the_probe_with_its_status(lab) -> None:
    sim, settings, _ = lab
    target, options = _target(settings, "open")
    sim.inject({"fault": "front-unavailable", "engine": "open"})
    try:
        result = probe(target, options, timeout=3)
    finally:
        sim.clear("front-unavailable")
    assert (result.result, result.status, result.well_formed) == ("http_error", 503, False)
    assert "503" in result.detail


def test_keys_come_from_a_file_and_a_wrong_one_is_named_without_the_key(lab, tmp_path, caplog) -> None:
    _, settings, _ = lab
    good, wrong = tmp_path / "good", tmp_path / "wrong"
    good.write_text(KEY + "\n")
    wrong.write_text("sk-not-the-key\n")
    target, options = _target(settings, "keyed", api_key_file=str(good))
    assert probe(target, options, timeout=3).success
    target, options = _target(settings, "keyed", api_key_file=str(wrong))
    prober = Prober(settings, catalog.load())
    with caplog.at_level(logging.INFO, logger="llmobs.prober"):
        result = prober.probe_once(target)
    assert (result.result, result.status) == ("unauthorized", 401)
    line = next(r.getMessage() for r in caplog.records if "failed" in r.getMessage())
    assert "keyed on 127.0.0.1:" in line and "unauthorized" in line and "API key file" in line
    assert KEY not in caplog.text and "sk-not-the-key" not in caplog.text


def test_an_unreadable_key_file_and_a_dead_target_each_say_so(lab, tmp_path) -> None:
    _, settings, _ = lab
    target, options = _target(settings, "keyed", api_key_file=str(tmp_path / "missing"))
    missing = probe(target, options, timeout=3)
    assert missing.result == "no_key" and str(tmp_path / "missing") in missing.detail
    target, options = _target(settings, "gone")
    dead = probe(target, options, timeout=3)
    assert dead.result == "unreachable" and dead.status == 0 and "Connection refused" in dead.detail


def test_the_exporter_serves_each_endpoints_series_under_the_catalog_names(lab) -> None:
    _, settings, _ = lab
    prober = Prober(settings, catalog.load())
    for target in prober.targets:
        prober.probe_once(target)
    page = generate_latest(prober.metrics.registry).decode()
    labels = f'endpoint="{prober.targets[0].endpoint.instance}",host="gpu-p1",inference_engine="vllm",model_name="open"'
    assert f"{conventions.PROBE_SUCCESS}{{{labels}}} 1.0" in page
    assert f"{conventions.PROBE_HTTP_STATUS}{{{labels}}} 200.0" in page
    assert f"{conventions.PROBE_TTFT}_count{{{labels}}} 1.0" in page
    assert f'{conventions.PROBES}{{{labels},result="ok"}} 1.0' in page
    assert f'{conventions.PROBES}{{{labels},result="timeout"}} 0.0' in page
    assert 'model_name="keyed"' in page and f'{conventions.PROBE_SUCCESS}{{endpoint=' in page
    assert 'model_name="gone",result="unreachable"} 1.0' in page
    # Every series the exporter serves is declared in the catalog (one source of truth).
    declared = catalog.load().exposed_series_names()
    served = {line.split("{")[0].split(" ")[0] for line in page.splitlines() if line and not line.startswith("#")}
    assert served - {f"{conventions.PROBES.removesuffix('_total')}_created"} - {
        f"{name}_created" for name in (conventions.PROBE_TTFT, conventions.PROBE_INTER_CHUNK)} <= declared


@pytest.mark.parametrize(("prober", "field", "fix"), [
    ({"timeout": "15s"}, "prober.timeout", "shorten prober.timeout"),
    ({"endpoints": {"gpu-zz:8000": {"url": "https://llm.example.com"}}}, "prober.endpoints.gpu-zz:8000",
     "use an instance"),
    ({"api_key_file": "llm_key"}, "prober.api_key_file", "pattern"),
    ({"endpoints": {"gpu-p1:8000": {"url": "llm.example.com"}}}, "prober.endpoints.gpu-p1:8000.url", "pattern"),
    ({"endpoints": {"gpu-p1:8000": {"url": "https://user:key@llm.example.com"}}},
     "prober.endpoints.gpu-p1:8000.url", "pattern"),
    ({"max_tokens": 0}, "prober.max_tokens", "greater than or equal to 1"),
])
def test_bad_prober_settings_are_refused_naming_the_field_and_the_fix(prober, field, fix) -> None:
    from llmobs.errors import ConfigError

    endpoints = {"gpu-p1": [{"model": "m", "port": 8000, "gpus": [0]}]}
    with pytest.raises(ConfigError) as raised:
        load_settings({"vllm_endpoints": endpoints, "prober": prober})
    errors = raised.value.all if not hasattr(raised.value, "errors") else raised.value.errors
    assert any(e.field == field and fix in e.fix for e in errors), [str(e) for e in errors]


def test_the_check_command_probes_each_endpoint_once_and_fails_when_one_fails(lab, tmp_path, monkeypatch) -> None:
    """`llmobs prober check` reads the kit's settings file (never a key on its command line) and exits 1
    when an endpoint fails."""
    from typer.testing import CliRunner

    from llmobs.cli import app
    from llmobs.prober import cli

    monkeypatch.setattr(cli.console, "width", 200)  # one line per endpoint, as on an operator's terminal
    sim, settings, _ = lab
    open_endpoint = next(e for e in settings.all_endpoints if e.model == "open")
    path = tmp_path / "settings.yml"
    path.write_text(yaml.safe_dump({"vllm_endpoints": [open_endpoint.model_dump(mode="json")],
                                    "prober": {"interval": "5s", "timeout": "3s"}}))
    runner = CliRunner()
    healthy = runner.invoke(app, ["prober", "check", "--settings", str(path)])
    assert healthy.exit_code == 0 and " ok " in healthy.output, healthy.output
    sim.inject({"fault": "front-unavailable", "engine": "open"})
    try:
        failing = runner.invoke(app, ["prober", "check", "--settings", str(path)])
    finally:
        sim.clear("front-unavailable")
    assert failing.exit_code == 1 and "http_error" in failing.output and "503" in failing.output, failing.output
    bad = runner.invoke(app, ["prober", "check", "--settings", str(tmp_path / "missing.yml")])
    assert bad.exit_code != 0
