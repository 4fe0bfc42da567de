"""The lab's load generator for a real engine (llmobs.sim.chat_load), against a served OpenAI API (the
simulator's), and what `llmobs fault stop|start` accepts."""

from __future__ import annotations

import pytest
from ports import free_ports

from llmobs.lab import REAL_ENGINES, Lab, LabError
from llmobs.sim.chat_load import ChatLoad
from llmobs.sim.host import HostConfig, HostSim
from llmobs.sim.vllm import EngineConfig


def test_chat_completions_are_answered_then_failures_counted_while_the_server_is_down() -> None:
    engine_port, control_port = free_ports(2)
    sim = HostSim(HostConfig(name="node-a", gpu_model="T4", gpus=1, bind="127.0.0.1", fault_port=control_port,
                             engines=(EngineConfig("tiny", port=engine_port, params_b=1.0),)))
    sim.start()
    load = ChatLoad(f"http://127.0.0.1:{engine_port}", "tiny", interval_s=0.05, max_tokens=4, duration_s=5)
    try:
        assert all(load.send_one() for _ in range(3))
        assert load.body()["model"] == "tiny" and load.body()["max_tokens"] == 4
    finally:
        sim.stop()
    assert not load.send_one()
    assert (load.sent, load.answered, load.failed) == (4, 3, 1)


def test_the_loop_stops_by_itself_when_its_time_is_up() -> None:
    (port,) = free_ports(1)  # nothing listens: every request fails, the pace is kept
    load = ChatLoad(f"http://127.0.0.1:{port}", "tiny", interval_s=0.1, duration_s=0.5, timeout_s=1)
    load.run()
    assert 3 <= load.sent <= 6 and load.failed == load.sent


def test_only_the_labs_real_engines_can_be_stopped() -> None:
    assert set(REAL_ENGINES) == {"llamacpp"}
    with pytest.raises(LabError, match="not a real engine of the lab; use one of llamacpp"):
        Lab(project="llmobs-test-none").stop_engine("gpu-h100-1")
