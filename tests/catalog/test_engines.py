"""The catalog's SGLang, TensorRT-LLM and llama.cpp entries against each engine's real exposition
(tests/sim/data/<engine>-*.prom, named in src/llmobs/catalog/engines.yaml): every recorded family is
catalogued and every catalogued one recorded, with the same type, HELP, label names, enumerated label
values and bucket boundaries. vLLM's entries are held to its recordings by tests/sim/test_vllm_upstream.py.
Also: the bad entries a new engine's metrics could bring are refused with the field named."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from llmobs import catalog as catalog_mod
from llmobs.errors import ConfigError

DATA = Path(__file__).resolve().parents[1] / "sim" / "data"
CATALOG = catalog_mod.load()
ENGINES = ("sglang", "trtllm", "llamacpp")
RECORDINGS = [(engine, name) for engine in ENGINES for name in CATALOG.engines[engine].recordings]
HEADER = re.compile(r"^# (HELP|TYPE) (\S+) ?(.*)$")
SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>.*)\})? \S+$")
LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


@dataclass
class Family:
    help: str = ""
    type: str = ""
    labels: dict[str, set[str]] = field(default_factory=dict)
    buckets: list[float] = field(default_factory=list)


def _families(text: str) -> dict[str, Family]:
    """Each family of a text exposition: HELP, TYPE, the label names and values of its samples (`le` of
    a histogram apart, as its bucket boundaries)."""
    families: dict[str, Family] = {}
    current = None
    for line in text.splitlines():
        header = HEADER.match(line)
        if header:
            current = families.setdefault(header[2], Family())
            setattr(current, header[1].lower(), header[3])
            continue
        sample = SAMPLE.match(line)
        if not sample:
            continue
        name = sample["name"]
        assert current is not None and name.removesuffix(_suffix(name, current)) in families, line
        for key, value in LABEL.findall(sample["labels"] or ""):
            if current.type == "histogram" and key == "le":
                if name.endswith("_bucket") and value != "+Inf":
                    current.buckets.append(float(value))
            else:
                current.labels.setdefault(key, set()).add(value)
    return families


def _suffix(name: str, family: Family) -> str:
    return next((s for s in HISTOGRAM_SUFFIXES if name.endswith(s)), "") if family.type == "histogram" else ""


def _recorded(name: str) -> dict[str, Family]:
    return _families((DATA / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize(("engine", "recording"), RECORDINGS)
def test_catalogued_families_are_the_recorded_ones(engine: str, recording: str) -> None:
    recorded = _recorded(recording)
    catalogued = {m.name for m in CATALOG.engine_metrics(engine)}
    assert sorted(set(recorded) - catalogued) == [], "recorded, not catalogued"
    assert sorted(catalogued - set(recorded)) == [], "catalogued, not recorded"


@pytest.mark.parametrize(("engine", "recording"), RECORDINGS)
def test_types_help_labels_and_buckets_match(engine: str, recording: str) -> None:
    recorded = _recorded(recording)
    for metric in CATALOG.engine_metrics(engine):
        family = recorded[metric.name]
        assert (metric.type, metric.help) == (family.type, family.help), metric.name
        assert set(CATALOG.labels_of(metric)) == set(family.labels), metric.name
        for label, values in family.labels.items():
            if label in metric.label_values:
                assert values <= set(metric.label_values[label]), (metric.name, label)
        if metric.type == "histogram":
            boundaries = CATALOG.buckets_of(metric)
            for _ in range(len(family.buckets) // len(boundaries)):  # one run per child
                assert family.buckets[:len(boundaries)] == list(boundaries), metric.name
                del family.buckets[:len(boundaries)]
            assert family.buckets == [], metric.name


def test_engine_metrics_have_version_ranges() -> None:
    for engine in ENGINES:
        assert CATALOG.engine_metrics(engine)
        for metric in CATALOG.engine_metrics(engine):
            assert metric.versions and metric.versions.endswith(CATALOG.engines[engine].versions.split("-")[-1]), \
                metric.name


def test_model_label_is_on_every_series_that_has_one() -> None:
    """The engines whose series name the model name it with the label engines.yaml says; the others
    get the model from the inventory."""
    for engine, info in CATALOG.engines.items():
        if info.model_label is None:
            continue
        assert info.model_label in info.default_labels, engine


def _bad(mutate) -> ConfigError:
    data = copy.deepcopy(catalog_mod.raw())
    mutate(data)
    with pytest.raises(ConfigError) as caught:
        catalog_mod.validate(data)
    return caught.value


def _metric(data: dict, name: str) -> dict:
    return next(m for m in data["metrics"] if m["name"] == name)


def test_inference_metric_without_engine_is_refused() -> None:
    error = _bad(lambda data: _metric(data, "sglang:num_running_reqs").pop("engine"))
    assert "engine" in str(error)


def test_engine_metric_without_versions_is_refused() -> None:
    error = _bad(lambda data: _metric(data, "llamacpp:requests_deferred").pop("versions"))
    assert "versions" in str(error) and "llamacpp" in str(error)


def test_unknown_engine_is_refused() -> None:
    error = _bad(lambda data: _metric(data, "request_success_total").update(engine="tgi"))
    assert "engine" in str(error) and "vllm" in str(error)
