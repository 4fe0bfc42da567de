"""The dashboard linter: what keeps a panel from showing "No data" because of a typo or a rename.

It reads dashboard JSON (what the generator is about to write, or what is committed) and checks that
every panel has a title, a unit, a description and the `${datasource}` variable, and that every query
parses as PromQL once Grafana's variables are substituted, uses only variables the dashboard defines,
and selects only series that exist: a catalog metric (with labels it really carries) or a recording
rule. The generator runs it before writing anything; the tests run it over the committed files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import promql_parser

from llmobs.errors import ConfigError

# Grafana's built-in variables that make sense inside a PromQL query, with a stand-in that parses.
BUILTIN_VARIABLES = {
    "__rate_interval": "5m", "__interval": "5m", "__range": "5m",
    "__interval_ms": "300000", "__range_s": "300", "__range_ms": "300000",
}
# $name, ${name}, ${name:format} and the deprecated [[name]].
VARIABLE_PATTERN = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\s*\)\s*$", re.S)
# A range or subquery window that is not a Grafana variable, once string literals are blanked out.
_FIXED_RANGE = re.compile(r"\[(?!\$)[^\]]*\]")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
# Labels every scraped series carries besides its own: the target labels.
TARGET_LABELS = frozenset({"instance", "job"})


@dataclass(frozen=True)
class KnownSeries:
    """The series a query may select: names, and for raw (scraped) metrics the labels they carry."""

    names: frozenset[str]
    labels: dict[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a dashboard, with where it sits (for the error message)."""

    dashboard: str
    panel: str
    ref: str
    expr: str

    def where(self) -> str:
        return f'dashboard "{self.dashboard}", panel "{self.panel}", query {self.ref}'


def _variables_in(text: str) -> list[str]:
    return [next(group for group in match.groups() if group) for match in VARIABLE_PATTERN.finditer(text)]


def substitute_variables(expr: str, variable_types: dict[str, str], in_strings: str | None = None) -> str:
    """Replace Grafana variables with values that parse: durations for interval variables, `1`
    otherwise (valid inside a label matcher string and as a number). `in_strings`, when given, stands in
    for the variables inside string literals (label matchers), so a matcher that reads one can be told apart."""
    if in_strings is not None:
        expr = _STRING.sub(lambda literal: VARIABLE_PATTERN.sub(in_strings, literal.group(0)), expr)

    def stand_in(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name in BUILTIN_VARIABLES:
            return BUILTIN_VARIABLES[name]
        return "5m" if variable_types.get(name) == "interval" else "1"

    return VARIABLE_PATTERN.sub(stand_in, expr)


def selectors(expr: str) -> list[tuple[str | None, set[str]]]:
    """(metric name, labels it is filtered on) of every vector selector of a PromQL expression."""
    found: list[tuple[str | None, set[str]]] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = node.matchers.matchers
            name = node.name or next(
                (m.value for m in matchers if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal), None)
            found.append((name, {m.name for m in matchers}))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def check_query(query: Query, known: KnownSeries, variable_types: dict[str, str]) -> list[ConfigError]:
    """Every problem of one query: parse errors, undefined variables, unknown series or labels."""
    where = query.where()
    errors = []
    undefined = sorted({v for v in _variables_in(query.expr) if v not in variable_types and v not in BUILTIN_VARIABLES})
    if undefined:
        errors.append(ConfigError(
            where, f"uses undefined variable(s) {', '.join('$' + v for v in undefined)} in `{query.expr}`",
            f"define them on the dashboard or use one of {', '.join('$' + v for v in sorted(variable_types))}"
            f" or Grafana's {', '.join('$' + v for v in sorted(BUILTIN_VARIABLES))}"))
    fixed = _FIXED_RANGE.findall(_STRING.sub('""', query.expr))
    if fixed:
        errors.append(ConfigError(
            where, f"uses the fixed window(s) {', '.join(fixed)} in `{query.expr}`",
            "use [$__rate_interval] (or [$__range]) so the panel follows the scrape interval and the zoom;"
            " fixed windows belong in recording rules"))
    try:
        found = selectors(substitute_variables(query.expr, variable_types))
    except ValueError as error:
        errors.append(ConfigError(where, f"does not parse as PromQL ({error}): `{query.expr}`",
                                  "fix the PromQL syntax"))
        return errors
    for name, matchers in found:
        if name is None:
            errors.append(ConfigError(where, f"selects series without a fixed metric name in `{query.expr}`",
                                      "name the metric (a catalog metric or a recording rule)"))
        elif name not in known.names:
            errors.append(ConfigError(
                where, f"references {name!r}, which is neither in the metrics catalog nor a recording rule,"
                f" in `{query.expr}`",
                "use a metric of src/llmobs/catalog/metrics.yaml or a rule of recording_rules.yaml"
                " (or add it there)"))
        elif name in known.labels:
            unknown = sorted(set(matchers) - known.labels[name] - {"__name__"})
            if unknown:
                errors.append(ConfigError(
                    where, f"filters {name} on label(s) {unknown} it does not carry, in `{query.expr}`",
                    f"use its labels: {', '.join(sorted(known.labels[name]))}"))
    return errors


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], Query]]:
    """(panel, query) for every PromQL query of a dashboard's panels."""
    title = dashboard.get("title", "?")
    for panel in _panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            yield panel, Query(title, panel.get("title", "?"), target.get("refId", "?"), target.get("expr", ""))


def variable_queries(dashboard: dict[str, Any]) -> Iterator[Query]:
    """Each `label_values(selector, label)` variable query as the PromQL query `selector{label!=""}` (an
    empty expression when the variable query has another form)."""
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        text = variable.get("query")
        text = text.get("query", "") if isinstance(text, dict) else str(text)
        match = _LABEL_VALUES.match(text)
        ref = f"variable ${variable.get('name')}"
        if match is None or match["selector"] is None:
            yield Query(dashboard.get("title", "?"), ref, "label_values", text if match is None else "")
            continue
        label = match["label"]
        # The label must exist on the selected series: check it as a matcher of the selector.
        selector = match["selector"].strip()
        probe = selector[:-1] + f', {label}!=""}}' if selector.endswith("}") else f'{selector}{{{label}!=""}}'
        yield Query(dashboard.get("title", "?"), ref, "label_values", probe)


def lint_dashboard(dashboard: dict[str, Any], known: KnownSeries) -> list[ConfigError]:
    """Every problem of one dashboard, each naming the dashboard, the panel and the query."""
    title = dashboard.get("title", "?")
    errors = []
    if "__inputs" in dashboard:
        errors.append(ConfigError(f'dashboard "{title}"', "has `__inputs`, which file provisioning cannot fill",
                                  "use the ${datasource} variable instead"))
    variables = {v["name"]: v.get("type", "") for v in dashboard.get("templating", {}).get("list", [])}
    if variables.get("datasource") != "datasource":
        errors.append(ConfigError(f'dashboard "{title}"', "has no `datasource` variable of type datasource",
                                  "add one so the dashboard works with any Prometheus data source"))
    for query in variable_queries(dashboard):
        if query.expr:
            errors += check_query(query, known, variables)
        else:
            errors.append(ConfigError(query.where(), "is not of the form label_values(selector, label)",
                                      "select the series the label comes from"))
    for panel in _panels(dashboard.get("panels", [])):
        if panel.get("type") == "row":
            continue
        where = f'dashboard "{title}", panel "{panel.get("title", "?")}"'
        for key, fix in (("title", "give the panel a title"),
                         ("description", "say what the panel shows and what a good value looks like")):
            if not str(panel.get(key) or "").strip():
                errors.append(ConfigError(where, f"has no {key}", fix))
        if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            errors.append(ConfigError(where, "has no unit", "set fieldConfig.defaults.unit"))
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            errors.append(ConfigError(where, "does not use the ${datasource} variable", "set its datasource"))
        refs = [t.get("refId") for t in panel.get("targets", [])]
        if not refs:
            errors.append(ConfigError(where, "has no query", "add a query or remove the panel"))
        if len(set(refs)) != len(refs) or not all(refs):
            errors.append(ConfigError(where, f"has missing or repeated query ref ids {refs}", "number them A, B, ..."))
    for _panel, query in dashboard_queries(dashboard):
        errors += check_query(query, known, variables)
    return errors
