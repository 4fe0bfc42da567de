"""The /metrics page of a simulated engine other than vLLM (SGLang, TensorRT-LLM), built from the catalog.

The request-level model is vLLM's (llmobs.sim.vllm.Engine: the same traffic, queue, KV cache, prefill and
decode); what differs per engine is its page. Every family is one of the catalog's entries for that engine
(`Catalog.engine_metrics`): its name, HELP, type, labels and bucket family come from there, so the page
and the rules read one source. An engine module (llmobs.sim.sglang, llmobs.sim.trtllm) says what the
catalog cannot: the values of the labels that describe the server (its ranks, its process), which
labels vary together (an HTTP path and its status codes), and which value of the model feeds each family.
Both engines serve their page from prometheus_client's multiprocess registry, so no family has a
`_created` series and every series has its label names in alphabetical order.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from llmobs import exposition
from llmobs.catalog import Metric

if TYPE_CHECKING:
    from llmobs.sim.vllm import Engine, Histogram

Labels = dict[str, str]
# A value of the page: one number for every child, or one per child (given the child's labels).
Value = float | Callable[[Labels], float]


@dataclass(frozen=True)
class Page:
    """What an engine module gives for one snapshot of the engine."""

    values: dict[str, Value]
    histograms: dict[str, Callable[[Labels], Histogram | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class Flavour:
    """One engine the simulator imitates with vLLM's request model."""

    engine: str                                   # the catalog's engine key
    version: str                                  # the release whose page it serves
    owned_by: str                                 # /v1/models' owned_by
    buckets: dict[str, str]                       # Engine.hist signal -> the engine's bucket family
    server_labels: Callable[[Engine], Labels]     # labels that describe the server, one value each
    page: Callable[[Engine], Page]                # the values, read under the engine's lock
    # Families whose children are not the product of their labels' values (e.g. path and status code).
    children: dict[str, Callable[[Engine], list[Labels]]] = field(default_factory=dict)


class CatalogPage(Collector):
    def __init__(self, engine: Engine, flavour: Flavour):
        self.engine, self.flavour = engine, flavour

    def _children(self, metric: Metric, names: tuple[str, ...]) -> list[Labels]:
        special = self.flavour.children.get(metric.name)
        if special is not None:
            return special(self.engine)
        server = self.flavour.server_labels(self.engine)
        choices = []
        for name in names:
            if name in metric.label_values:
                choices.append(tuple(metric.label_values[name]))
            elif name in server:
                choices.append((server[name],))
            else:
                raise KeyError(f"{self.flavour.engine} sim: no value for label {name!r} of {metric.name}")
        return [dict(zip(names, values, strict=True)) for values in itertools.product(*choices)]

    def _empty(self, metric: Metric) -> list[tuple[str, float]]:
        bounds = (*self.engine.catalog.bucket_families[metric.buckets], math.inf)
        return [(exposition.le_value(bound), 0.0) for bound in bounds]

    def collect(self) -> Iterator:
        engine, catalog = self.engine, self.engine.catalog
        with engine._lock:
            page = self.flavour.page(engine)
            children = {metric.name: self._children(metric, tuple(sorted(catalog.labels_of(metric))))
                        for metric in catalog.engine_metrics(self.flavour.engine)}
            snapshots = {name: [(labels, hist(labels)) for labels in children[name]]
                         for name, hist in page.histograms.items()}
            frozen = {name: [(labels, histogram.buckets(), histogram.total) if histogram else (labels, None, 0.0)
                             for labels, histogram in snapshot] for name, snapshot in snapshots.items()}
        for metric in catalog.engine_metrics(self.flavour.engine):
            names = sorted(catalog.labels_of(metric))
            if metric.type == "histogram":
                family = HistogramMetricFamily(metric.name, metric.help, labels=names)
                for labels, buckets, total in frozen.get(metric.name, [(c, None, 0.0) for c in children[metric.name]]):
                    family.add_metric([labels[n] for n in names], buckets or self._empty(metric), total)
                yield family
                continue
            if metric.type == "counter":
                family = CounterMetricFamily(metric.name.removesuffix("_total"), metric.help, labels=names)
            else:
                family = GaugeMetricFamily(metric.name, metric.help, labels=names)
            value = page.values.get(metric.name, 0.0)
            for labels in children[metric.name]:
                family.add_metric([labels[n] for n in names], value(labels) if callable(value) else value)
            yield family
