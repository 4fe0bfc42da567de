"""PromQL helpers shared by the rule generators: escaping, bucket matchers and the metric-name check."""

from __future__ import annotations

import re
from collections.abc import Iterable

import promql_parser

from llmobs.errors import ConfigError


def string(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_REGEX_SPECIAL = re.compile(r"([.^$*+?()\[\]{}|\\])")


def regex_escape(value: str) -> str:
    """`value` as a literal in an RE2 regular expression."""
    return _REGEX_SPECIAL.sub(r"\\\1", value)


def regex_alternatives(values: Iterable[str]) -> str:
    """A quoted RE2 regex matching exactly one of `values` (Prometheus anchors label regexes)."""
    return string("|".join(regex_escape(value) for value in values))


def le_regex(boundary: float) -> str:
    """A quoted regex for a bucket boundary in both spellings: `1` (Prometheus 2 keeps the exporter's
    text) and `1.0` (vLLM's prometheus_client, and Prometheus 3's normalised `le`)."""
    text = f"{boundary:g}" if boundary != int(boundary) else str(int(boundary))
    if "e" in text:
        raise ValueError(f"bucket boundary {boundary} needs an exponent; use a plain decimal boundary")
    escaped = regex_escape(text)
    return string(f"{escaped}(\\.0)?" if boundary == int(boundary) else escaped)


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
