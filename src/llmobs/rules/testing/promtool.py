"""promtool's unit-test file, as a model: sample notation, timelines, input series and scenarios.

A `Scenario` is one entry of a test file's `tests:` list: input series on a `Timeline`, the alerts
expected at given times and the values of given expressions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmobs.types import duration_seconds

STALE = "stale"  # a staleness marker: the scrape no longer has the series
Sample = float | str | None  # a value, STALE, or None for no sample


def number(value: float) -> str:
    """A sample value as promtool reads it (no exponent, so `a+bxn` stays unambiguous)."""
    value = round(value, 9)
    if value == int(value):
        return str(int(value))
    return format(value, ".9f").rstrip("0")


def seconds(duration: str) -> float:
    """Seconds in a Prometheus duration, compound ones included (`2m10s`)."""
    return sum(duration_seconds(part) for part in re.findall(r"[0-9]+[a-z]+", duration))


def percent(value: float) -> str:
    """What Prometheus' humanizePercentage prints."""
    return f"{value * 100:.4g}%"


def _run_end(samples: list[Sample], start: int) -> tuple[int, float | None]:
    """(end, step) of the run of numbers from `start` that changes by one constant step."""
    end, step = start + 1, None
    while end < len(samples) and isinstance(samples[end], float | int) and not isinstance(samples[end], bool):
        delta = round(samples[end] - samples[end - 1], 9)
        if step is not None and delta != step:
            break
        step = delta
        end += 1
    return end, step


def notation(samples: list[Sample]) -> str:
    """promtool's expanding notation: `a+bxn` for runs with a constant step, `_xn` for gaps."""
    parts, i = [], 0
    while i < len(samples):
        sample = samples[i]
        if sample is None or sample == STALE:
            j = i
            while j < len(samples) and samples[j] == sample:
                j += 1
            token = "_" if sample is None else STALE
            parts += [f"_x{j - i}"] if sample is None and j - i > 1 else [token] * (j - i)
            i = j
            continue
        j, step = _run_end(samples, i)
        count = j - i - 1
        if count == 0:
            parts.append(number(sample))
        elif step == 0:
            parts.append(f"{number(sample)}x{count}")
        else:
            parts.append(f"{number(sample)}{'+' if step > 0 else '-'}{number(abs(step))}x{count}")
        i = j
    return " ".join(parts)


@dataclass(frozen=True)
class Timeline:
    """Sample lists of `steps` samples, one every `interval` seconds, starting at 0."""

    interval: int
    steps: int

    def at(self, seconds: float) -> int:
        return int(seconds // self.interval)

    def flat(self, value: float) -> list[Sample]:
        return [value] * self.steps

    def change(self, before: float, after: float, at: int) -> list[Sample]:
        return [before] * at + [after] * (self.steps - at)

    def ramp(self, inc: float, start: float = 0) -> list[Sample]:
        return [start + inc * i for i in range(self.steps)]

    def ramp_change(self, inc: float, new_inc: float, at: int, start: float = 0) -> list[Sample]:
        pivot = start + inc * (at - 1)
        return [start + inc * i for i in range(at)] + [pivot + new_inc * (i - at + 1) for i in range(at, self.steps)]

    def appears(self, value: float, at: int) -> list[Sample]:
        return [None] * at + [value] * (self.steps - at)


@dataclass
class Series:
    name: str
    labels: dict[str, str]
    samples: list[Sample]

    def stop(self, at: int) -> None:
        """The series disappears from the scrape at sample `at` (a staleness marker, then nothing)."""
        self.samples = [*self.samples[:at], STALE]

    def gap(self, at: int) -> None:
        """One scrape without the series (an exporter restart), then it is back."""
        self.samples = [*self.samples[:at], STALE, *self.samples[at + 1:]]

    def as_input(self) -> dict[str, str]:
        labels = ", ".join(f'{k}="{v}"' for k, v in self.labels.items())
        return {"series": f"{self.name}{{{labels}}}", "values": notation(self.samples)}


def alert_test(eval_time: str, alert: str, *expected: dict[str, Any]) -> dict[str, Any]:
    """An alert_rule_test entry: `alert` has exactly the `expected` alerts at `eval_time` (none: silent)."""
    return {"eval_time": eval_time, "alertname": alert, "exp_alerts": list(expected)}


def fires(alert: str, silent_at: str, firing_at: str, *expected: dict[str, Any]) -> list[dict[str, Any]]:
    """`alert` is still silent (pending) at `silent_at` and fires with exactly `expected` at `firing_at`."""
    return [alert_test(silent_at, alert), alert_test(firing_at, alert, *expected)]


@dataclass
class Scenario:
    """One promtool test: input series, and the alerts expected at given times."""

    name: str
    timeline: Timeline
    series: list[Series] = field(default_factory=list)
    alert_tests: list[dict[str, Any]] = field(default_factory=list)
    expr_tests: list[dict[str, Any]] = field(default_factory=list)

    def find(self, name: str, **labels: str) -> Series:
        for s in self.series:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s
        raise KeyError(f"{self.name}: no input series {name}{labels}")

    def set(self, name: str, samples: list[Sample], **labels: str) -> None:
        self.find(name, **labels).samples = samples

    def where(self, predicate: Callable[[Series], bool]) -> list[Series]:
        return [s for s in self.series if predicate(s)]

    def expect_value(self, expr: str, eval_time: str, labels: dict[str, str], value: float) -> None:
        """`expr` has one series with `labels` and `value`, to 4 decimals (rates carry float noise)."""
        rendered = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        self.expr_tests.append({"expr": f"round({expr}, 0.0001)", "eval_time": eval_time,
                                "exp_samples": [{"labels": f"{{{rendered}}}", "value": round(value, 4)}]})

    def drop(self, name: str, **labels: str) -> None:
        self.series.remove(self.find(name, **labels))

    def render(self) -> dict[str, Any]:
        # promtool evaluates every rule up to the latest eval_time: samples beyond it are dead weight.
        last = max(seconds(t["eval_time"]) for t in [*self.alert_tests, *self.expr_tests])
        keep = self.timeline.at(last) + 2
        test: dict[str, Any] = {
            "name": self.name, "interval": f"{self.timeline.interval}s",
            "input_series": [Series(s.name, s.labels, s.samples[:keep]).as_input() for s in self.series],
        }
        if self.alert_tests:
            test["alert_rule_test"] = self.alert_tests
        if self.expr_tests:
            test["promql_expr_test"] = self.expr_tests
        return test
