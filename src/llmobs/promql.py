"""PromQL built from parts, with escaping, and checked with promql-parser.

Building (after vLLM's `class Promql` in tools/generate_grafana_dashboards.py): `Matcher` is one label
matcher whose value is escaped when it is written out; `one_of`/`none_of` match a set of literal values
(regex-escaped), `le` a histogram bucket boundary in both of its spellings, and `variable` a Grafana
template variable, which passes through as it is (`$host` must reach Grafana un-escaped). `selector`
writes `metric{matchers}`; `Promql(scope)` is a selector scoped by matchers with the aggregations the
rules and dashboards repeat (`sel`, `rate`, `increase`, `sum_rate`, `ratio`, `quantile`); `aggregate`
writes `op by (labels) (expr)` around any expression. A matcher may also be
given as text that is already PromQL (e.g. the catalog's `finished_reason="error"`).

Checking: `selector_names` lists the metrics an expression reads, `check_known` rejects one that reads a
series no scrape exposes and no rule records.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import promql_parser

from llmobs.errors import ConfigError

_REGEX_SPECIAL = re.compile(r"([.^$*+?()\[\]{}|\\])")


def string(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def regex_escape(value: str) -> str:
    """`value` as a literal in an RE2 regular expression."""
    return _REGEX_SPECIAL.sub(r"\\\1", value)


def alternatives(values: Iterable[str]) -> str:
    """An RE2 regex (unquoted) matching exactly one of the literal `values` (label regexes are anchored)."""
    return "|".join(regex_escape(value) for value in values)


def le_pattern(boundary: float) -> str:
    """A regex for a bucket boundary in both spellings: `1` (Prometheus 2 keeps the exporter's text) and
    `1.0` (vLLM's prometheus_client, and Prometheus 3's normalised `le`)."""
    text = f"{boundary:g}" if boundary != int(boundary) else str(int(boundary))
    if "e" in text:
        raise ValueError(f"bucket boundary {boundary} needs an exponent; use a plain decimal boundary")
    escaped = regex_escape(text)
    return f"{escaped}(\\.0)?" if boundary == int(boundary) else escaped


# ------------------------------------------------------------------------------------- matchers
Op = Literal["=", "!=", "=~", "!~"]


@dataclass(frozen=True)
class Matcher:
    """`label op "value"`; the value is the raw string (or regex), escaped only as a string literal."""

    label: str
    op: Op
    value: str

    def __str__(self) -> str:
        return f"{self.label}{self.op}{string(self.value)}"


def eq(label: str, value: str) -> Matcher:
    return Matcher(label, "=", value)


def ne(label: str, value: str) -> Matcher:
    return Matcher(label, "!=", value)


def matches(label: str, regex: str) -> Matcher:
    return Matcher(label, "=~", regex)


def not_matches(label: str, regex: str) -> Matcher:
    return Matcher(label, "!~", regex)


def one_of(label: str, values: Iterable[str]) -> Matcher:
    """The label is one of the literal `values`: `=` for a single value, an escaped regex for several."""
    values = list(values)
    return eq(label, values[0]) if len(values) == 1 else matches(label, alternatives(values))


def none_of(label: str, values: Iterable[str]) -> Matcher:
    return not_matches(label, alternatives(values))


def le(boundary: float | str) -> Matcher:
    """The bucket of a histogram boundary (`"+Inf"` for the count of every observation)."""
    if boundary == "+Inf":
        return eq("le", "+Inf")
    return matches("le", le_pattern(float(boundary)))


def variable(label: str, name: str | None = None) -> Matcher:
    """`label=~"$name"`: the values a Grafana template variable selects (a multi-value variable expands
    to a regex). The `$` reference is not regex-escaped: Grafana must find it."""
    return matches(label, f"${name or label}")


MatcherLike = Matcher | str  # a str is a matcher already written in PromQL; "" is no matcher


def selector(metric: str, *matchers: MatcherLike) -> str:
    """`metric{m1, m2}`, or `metric` alone without matchers (`metric` may be empty: `{m1}`)."""
    given = [str(m) for m in matchers if m]
    return f"{metric}{{{', '.join(given)}}}" if given else metric


def by(*labels: str) -> str:
    """A label list for `by (...)`, e.g. `host, gpu`."""
    return ", ".join(labels)


def aggregate(operator: str, expr: str, labels: Iterable[str] = ()) -> str:
    """`operator by (labels) (expr)`, or `operator(expr)` over every series when no labels are given
    (`sum`, `max`, `min`, `avg`, `count`)."""
    labels = tuple(labels)
    return f"{operator} by ({by(*labels)}) ({expr})" if labels else f"{operator}({expr})"


# ------------------------------------------------------------------------------------- queries
@dataclass(frozen=True)
class Promql:
    """Queries of the series that the `scope` matchers select (a dashboard's variables, an SLO's models)."""

    scope: tuple[MatcherLike, ...] = ()

    def where(self, *matchers: MatcherLike) -> Promql:
        """The same scope narrowed by more matchers."""
        return Promql((*self.scope, *matchers))

    def sel(self, metric: str, *extra: MatcherLike) -> str:
        """`metric{scope..., extra...}`."""
        return selector(metric, *self.scope, *extra)

    def rate(self, metric: str, window: str, *extra: MatcherLike) -> str:
        return f"rate({self.sel(metric, *extra)}[{window}])"

    def increase(self, metric: str, window: str, *extra: MatcherLike) -> str:
        return f"increase({self.sel(metric, *extra)}[{window}])"

    def sum_rate(self, metric: str, window: str, labels: tuple[str, ...], *extra: MatcherLike) -> str:
        """`sum by (labels) (rate(metric{...}[window]))`."""
        return f"sum by ({by(*labels)}) ({self.rate(metric, window, *extra)})"

    @staticmethod
    def ratio(numerator: str, denominator: str) -> str:
        """`numerator / (denominator > 0)`: no result, rather than NaN or Inf, where nothing was counted."""
        return f"{numerator} / ({denominator} > 0)"

    @staticmethod
    def quantile(q: float, buckets: str) -> str:
        return f"histogram_quantile({q}, {buckets})"


# ------------------------------------------------------------------------------------- checking
def selector_names(expr: str, field: str) -> set[str]:
    """Metric names the expression selects; a parse error becomes a ConfigError naming `field`."""
    try:
        tree = promql_parser.parse(expr)
    except (ValueError, RuntimeError) as error:
        raise ConfigError(field, f"not valid PromQL: {error}", "fix the expression") from None
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(tree, pre_visit=visit)
    return names


def check_known(expr: str, field: str, known: set[str]) -> None:
    """Every metric the expression reads must be exposed by a scrape or recorded by a rule."""
    unknown = sorted(selector_names(expr, field) - known)
    if unknown:
        raise ConfigError(field, f"reads {', '.join(unknown)}, which no scrape exposes and no rule records",
                          "use a metric of src/llmobs/catalog/metrics.yaml or a recording rule, or add the metric "
                          "to the catalog")
