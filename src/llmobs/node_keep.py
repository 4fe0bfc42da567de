"""The node job's keep-list: of everything node_exporter serves, Prometheus stores only what the kit reads.

A server's node_exporter serves thousands of series (`node_cpu_seconds_total` alone is 8 per hardware thread,
a 2-socket server has 128-384 of them), of which the kit's rules and dashboards read a handful of names. The
node job's `metric_relabel_configs` keeps, by name (`action: keep` on `__name__`):

- every `node_*` name (node_exporter's collectors all use the `node` namespace) that the generated rule files
  and dashboards of the same settings select (`read_names`, with llmobs.promql.selector_names), so a rule or
  panel that starts reading another node_exporter series keeps it with no other change;
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

from llmobs import promql
from llmobs.settings import Settings

NodeKeep = Literal["read", "all"]
NODE_NAMESPACE = "node_"
# collector/textfile.go: 1 when a file of the directory failed to read or parse; each file's mtime.
TEXTFILE_COLLECTOR = ("node_textfile_scrape_error", "node_textfile_mtime_seconds")


def read_names(settings: Settings) -> frozenset[str]:
    """Every series name the generated rules and dashboards of `settings` select."""
    from llmobs.dashboards import build_boards, context  # the generators, only when a config is rendered
    from llmobs.dashboards.lint import dashboard_queries, substitute_variables, variable_queries
    from llmobs.rules import rule_files

    names: set[str] = set()
    for file_name, rule_file in rule_files(settings).items():
        for rule in rule_file.rules():
            names |= promql.selector_names(rule.expr, f"{file_name}: {getattr(rule, 'record', None) or rule.alert}")
    for board in build_boards(context(settings)):
        dashboard = board.to_dict()
        variables = {v["name"]: v.get("type", "") for v in dashboard.get("templating", {}).get("list", [])}
        queries = [*(query for _, query in dashboard_queries(dashboard)), *variable_queries(dashboard)]
        for query in queries:
            if query.expr:
                names |= promql.selector_names(substitute_variables(query.expr, variables), query.where())
    return frozenset(names)


def kept_names(settings: Settings) -> tuple[str, ...]:
    """The node_exporter series names the node job keeps, sorted."""
    from llmobs.preflight.textfile import NAMES as PREFLIGHT_NAMES

    read = {name for name in read_names(settings) if name.startswith(NODE_NAMESPACE)}
    return tuple(sorted(read | set(PREFLIGHT_NAMES) | set(TEXTFILE_COLLECTOR)))


def metric_relabel_configs(settings: Settings, keep: NodeKeep = "read",
                           extra: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The node job's metric_relabel_configs: one `keep` on `__name__`, or none with `keep: all`."""
    if keep == "all":
        return []
    regex = "|".join([promql.alternatives(kept_names(settings)), *extra])
    return [{"source_labels": ["__name__"], "regex": regex, "action": "keep"}]


def keeps(relabel_configs: Iterable[Mapping[str, Any]], name: str) -> bool:
    """Whether `metric_relabel_configs` of `keep` / `drop` actions on `__name__` keep the series `name`
    (Prometheus anchors the regex at both ends), e.g. to count what a scrape stores."""
    for config in relabel_configs:
        if list(config.get("source_labels", ())) != ["__name__"] or config["action"] not in ("keep", "drop"):
            raise ValueError(f"only keep and drop on __name__ are applied here, not {dict(config)}")
        if (re.fullmatch(config.get("regex", "(.*)"), name) is not None) != (config["action"] == "keep"):
            return False
    return True
