"""Typed rule output, in Prometheus' rule file format (rulefmt: groups of recording and alerting rules).

The generators return these models, never dicts; `RuleFile.to_yaml()` writes the file. The order of the
fields is the order of the keys in the generated YAML.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from llmobs.types import Duration, Strict, StrictAliased
from llmobs.yamlfmt import dump


class RecordingRule(Strict):
    record: str
    expr: str
    labels: dict[str, str] = Field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.record

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record, "expr": self.expr, **({"labels": dict(self.labels)} if self.labels else {})}


class Annotations(Strict):
    summary: str
    description: str
    runbook_url: str


class AlertingRule(StrictAliased):
    alert: str
    expr: str
    for_: Duration = Field(alias="for")
    labels: dict[str, str]  # severity, component and team first, then the rule's own (slo, model_name)
    annotations: Annotations

    @property
    def name(self) -> str:
        return self.alert

    @property
    def severity(self) -> str:
        return self.labels["severity"]

    @property
    def component(self) -> str:
        return self.labels["component"]

    @property
    def team(self) -> str:
        return self.labels["team"]

    def to_dict(self) -> dict[str, Any]:
        return {"alert": self.alert, "expr": self.expr, "for": self.for_, "labels": dict(self.labels),
                "annotations": self.annotations.model_dump()}


Rule = RecordingRule | AlertingRule


class RuleGroup(Strict):
    name: str
    rules: tuple[Rule, ...]
    interval: Duration | None = None  # None: Prometheus' evaluation_interval

    def to_dict(self) -> dict[str, Any]:
        interval = {"interval": self.interval} if self.interval else {}
        return {"name": self.name, **interval, "rules": [rule.to_dict() for rule in self.rules]}


class RuleFile(Strict):
    groups: tuple[RuleGroup, ...]

    def rules(self) -> list[Rule]:
        return [rule for group in self.groups for rule in group.rules]

    def alerting_rules(self) -> list[AlertingRule]:
        return [rule for rule in self.rules() if isinstance(rule, AlertingRule)]

    def recording_rules(self) -> list[RecordingRule]:
        return [rule for rule in self.rules() if isinstance(rule, RecordingRule)]

    def to_yaml(self, header: str = "") -> str:
        return dump({"groups": [group.to_dict() for group in self.groups]}, header)
