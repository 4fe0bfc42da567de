"""The node job's keep-list: of everything node_exporter serves, Prometheus stores only what the kit reads.

A server's node_exporter serves thousands of series (`node_cpu_seconds_total` alone is 8 per hardware thread,
2,048 on a 2-socket server of 128 threads per socket), of which the kit's rules and dashboards read a handful.
The node job's `metric_relabel_configs` is one `keep` rule, derived from the generated rule files and
dashboards of the same settings (`read_selectors`, over llmobs.promql's parser), so a rule or panel that starts
reading another node_exporter series keeps it with no other change. It keeps:

- every `node_*` name (node_exporter's collectors all use the `node` namespace) that a rule or panel selects,
  and of it only the label values they all select: where every selector of a name fixes a label of the
  series (`mode="idle"`, `mountpoint=~"/|/models"`; not a target label, not a Grafana variable), the other
  values are dropped (node_cpu_seconds_total: the idle mode only, 1 series per hardware thread);
- the GPU preflight's textfile (llmobs.preflight.textfile.NAMES, served by node_exporter's textfile
  collector) and the collector's own series about the files (`TEXTFILE_COLLECTOR`: whether one failed to
  parse, and when each last changed, which the gpu-host-stack runbook points to).

Prometheus' own series of the target (`up`, `scrape_*`) are not scraped and never dropped. A site that runs
other node dashboards keeps everything (`node_keep: all`), or adds names and regexes (`node_keep_extra`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import promql_parser

from llmobs import promql
from llmobs.errors import ConfigError
from llmobs.settings import Settings

NodeKeep = Literal["read", "all"]
NODE_NAMESPACE = "node_"
# collector/textfile.go: 1 when a file of the directory failed to read or parse; each file's mtime.
TEXTFILE_COLLECTOR = ("node_textfile_scrape_error", "node_textfile_mtime_seconds")
# What a Grafana variable inside a label matcher becomes while the queries are read: such a matcher selects
# whatever the user picks, so it fixes nothing.
_VARIABLE = "__grafana_variable__"
# A selector's fixed positive matchers, label -> the regex of the values it selects.
Selection = dict[str, str]


def _selections(expr: str, field: str, ignored: frozenset[str]) -> dict[str, list[Selection]]:
    try:
        tree = promql_parser.parse(expr)
    except (ValueError, RuntimeError) as error:
        raise ConfigError(field, f"not valid PromQL: {error}", "fix the expression") from None
    found: dict[str, list[Selection]] = {}

    def visit(node: object) -> None:
        if not isinstance(node, promql_parser.VectorSelector) or not node.name:
            return
        fixed: Selection = {}
        for matcher in () if getattr(node.matchers, "or_matchers", None) else node.matchers.matchers:
            if matcher.name in ignored or _VARIABLE in matcher.value:
                continue
            if matcher.op == promql_parser.MatchOp.Equal:
                fixed[matcher.name] = promql.regex_escape(matcher.value)
            elif matcher.op == promql_parser.MatchOp.Re:
                fixed[matcher.name] = matcher.value
        found.setdefault(node.name, []).append(fixed)

    promql_parser.walk(tree, pre_visit=visit)
    return found


def read_selectors(settings: Settings) -> dict[str, list[Selection]]:
    """Every series name the generated rules and dashboards of `settings` select, with each selector's fixed
    positive matchers on the series' own labels."""
    from llmobs.dashboards import build_boards, context  # the generators, only when a config is rendered
    from llmobs.dashboards.lint import TARGET_LABELS, dashboard_queries, substitute_variables, variable_queries
    from llmobs.rules import rule_files

    ignored = frozenset({*TARGET_LABELS, settings.labels.host, "__name__"})
    exprs: list[tuple[str, str]] = [
        (rule.expr, f"{file_name}: {getattr(rule, 'record', None) or rule.alert}")
        for file_name, rule_file in rule_files(settings).items() for rule in rule_file.rules()]
    for board in build_boards(context(settings)):
        dashboard = board.to_dict()
        variables = {v["name"]: v.get("type", "") for v in dashboard.get("templating", {}).get("list", [])}
        exprs += [(substitute_variables(query.expr, variables, _VARIABLE), query.where())
                  for query in [*(q for _, q in dashboard_queries(dashboard)), *variable_queries(dashboard)]
                  if query.expr]
    found: dict[str, list[Selection]] = {}
    for expr, field in exprs:
        for name, selections in _selections(expr, field, ignored).items():
            found.setdefault(name, []).extend(selections)
    return found


def _kept(settings: Settings) -> dict[str, Selection]:
    """name -> the labels every selector of it fixes, with the values any of them selects."""
    from llmobs.preflight.textfile import NAMES as PREFLIGHT_NAMES

    kept: dict[str, Selection] = {}
    for name, selections in read_selectors(settings).items():
        if name.startswith(NODE_NAMESPACE):
            common = set.intersection(*(set(selection) for selection in selections))
            kept[name] = {label: "|".join(sorted({s[label] for s in selections})) for label in sorted(common)}
    kept.update({name: {} for name in (*PREFLIGHT_NAMES, *TEXTFILE_COLLECTOR)})  # the whole textfile, every file
    return dict(sorted(kept.items()))


def kept_names(settings: Settings) -> tuple[str, ...]:
    """The node_exporter series names the node job keeps (some of them only for the label values read)."""
    return tuple(_kept(settings))


def metric_relabel_configs(settings: Settings, keep: NodeKeep = "read",
                           extra: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The node job's metric_relabel_configs: one `keep` rule, or none with `keep: all`."""
    if keep == "all":
        return []
    kept = _kept(settings)
    labels = sorted({label for selection in kept.values() for label in selection})
    whole = [promql.regex_escape(name) for name, selection in kept.items() if not selection] + list(extra)
    if not labels:
        return [{"source_labels": ["__name__"], "regex": "|".join(whole), "action": "keep"}]
    # Matched against `name;value of label 1;value of label 2...` (the labels in `labels`' order).
    parts = [f"(?:{'|'.join(whole)});.*"] + [
        ";".join([promql.regex_escape(name), *(f"(?:{selection[label]})" if label in selection else "[^;]*"
                                               for label in labels)])
        for name, selection in kept.items() if selection]
    return [{"source_labels": ["__name__", *labels], "regex": "|".join(parts), "action": "keep"}]


def keeps(relabel_configs: Iterable[Mapping[str, Any]], series: Mapping[str, str]) -> bool:
    """Whether `keep` / `drop` metric_relabel_configs keep a series (its labels, `__name__` included), as
    Prometheus applies them: the source labels' values joined by the separator, the regex anchored."""
    for config in relabel_configs:
        if config["action"] not in ("keep", "drop"):
            raise ValueError(f"only keep and drop rules are applied here, not {dict(config)}")
        value = config.get("separator", ";").join(series.get(label, "") for label in config["source_labels"])
        if (re.fullmatch(config.get("regex", "(.*)"), value) is not None) != (config["action"] == "keep"):
            return False
    return True
