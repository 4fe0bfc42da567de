"""Hosts beyond the simulated ones replay a simulated host's series under their own name and GPU UUIDs
(llmobs.fleetbench.synth.Replay): the same samples, nothing of the source host left in them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from llmobs import catalog as catalog_mod
from llmobs import exposition
from llmobs.fleetbench import synth
from llmobs.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache"


@pytest.mark.skipif(not list(CACHE.glob(synth.NODE_EXPORTER_GLOB)), reason="no node_exporter (run `llmobs setup`)")
def test_a_replayed_host_has_the_source_hosts_samples_under_its_own_names(tmp_path: Path) -> None:
    hosts = synth.SIMULATED + 1
    target = synth.SIMULATED
    source = synth.replayed_from(target)
    assert synth.replayed_from(source) is None and source % 5 == target % 5  # same GPU model and models
    settings = load_settings(synth.fleet_settings(hosts))
    every = synth.Intervals.of(yaml.safe_load((REPO / "prometheus/prometheus.yml").read_text()))
    host = synth.SimulatedHost(source, settings, REPO / "compose/dcgm-exporter/counters.csv",
                               synth.capture_node_exporter(CACHE), catalog_mod.load())
    replay, simulated, replayed = synth.Replay(tmp_path, hosts), io.StringIO(), io.StringIO()
    replay.PIECE = 4096  # many pieces: no name may be cut in two where one piece ends
    samples = replay.simulate(host, simulated.write, 0.0, 120.0, every)
    assert replay.write(target, replayed.write, 8) == samples > 0
    old, new = synth.host_name(source), synth.host_name(target)
    text = replayed.getvalue()
    assert old not in text and f'host="{new}"' in text
    for gpu in range(8):
        assert exposition.gpu_uuid(new, gpu) in text and exposition.gpu_uuid(old, gpu) not in text
    names = [(old, new)] + [(exposition.gpu_uuid(old, g), exposition.gpu_uuid(new, g)) for g in range(8)]
    expected = simulated.getvalue()
    for before, after in names:
        expected = expected.replace(before, after)
    assert text == expected


def test_the_placed_faults_lie_in_the_data_before_the_build_starts() -> None:
    """The live rules see a fault only once it is in the past: placed a quarter into the data before the build's
    start, they fire whatever --ahead-minutes is; at least a minute in, after the GPU was seen healthy."""
    fault = synth.FAULTS[0]
    start, end = 0.0, 3600.0
    assert synth.fault_time(fault, start, end, built_at=1800.0) == 450.0   # default: half the span ahead
    assert synth.fault_time(fault, start, end, built_at=start) == 60.0     # every sample in the future
    assert synth.fault_time(fault, start, end, built_at=9999.0) == 900.0   # the whole span in the past
