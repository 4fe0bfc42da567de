"""Every generated file of the kit, from the catalog, one settings file and the lab topology.

ARTIFACTS is the registry: each entry names a producer, `module:function` taking the validated
`Settings` (and, for `reads_workspace` producers, the checkout's `Workspace`) and returning
{repo-relative path: text}, and the files it owns (globs), so files it no longer produces are removed
(or reported by `llmobs generate --check`). Other areas register with one line.

Generation is atomic: every producer runs in memory first; on any ConfigError nothing is written and
all the errors are reported. The command is llmobs.generate.cli.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from llmobs.errors import ConfigError, ConfigErrors
from llmobs.files import write_atomic
from llmobs.settings import Settings
from llmobs.workspace import Workspace

LAB_SETTINGS = Path("compose/lab-settings.yml")  # relative to the checkout


@dataclass(frozen=True)
class Artifact:
    name: str
    producer: str  # "module:function": (Settings) -> {path: text}, or (Settings, Workspace) with reads_workspace
    owns: tuple[str, ...]  # globs (relative to the output directory) of the files it owns
    reads_workspace: bool = False  # the producer reads files of the checkout (the lab topology)

    def render(self, settings: Settings, workspace: Workspace) -> Mapping[str, str]:
        module, _, function = self.producer.partition(":")
        produce: Callable[..., Mapping[str, str]] = getattr(importlib.import_module(module), function)
        return produce(settings, workspace) if self.reads_workspace else produce(settings)


ARTIFACTS: tuple[Artifact, ...] = (
    Artifact("prometheus rules", "llmobs.rules:rule_file_artifacts", ("prometheus/rules/*.yml",)),
    Artifact("promtool unit tests", "llmobs.rules.testing:promtool_artifacts", ("prometheus/tests/*.test.yml",)),
    Artifact("alertmanager", "llmobs.alertmanager:artifacts", ("alertmanager/alertmanager.yml",
                                                              "alertmanager/templates/*.tmpl")),
    Artifact("dcgm-exporter counters", "llmobs.dcgm_csv:artifacts", ("compose/dcgm-exporter/counters.csv",)),
    Artifact("OTLP gateway relabeling", "llmobs.otel:artifacts", ("compose/otlp-gateway/relabel.yml",)),
    Artifact("docs", "llmobs.docs_gen:render_docs", ("docs/metrics-catalog.md", "docs/alerts.md",
                                                      "docs/configuration.md", "docs/runbooks/*.md")),
    Artifact("grafana", "llmobs.dashboards:dashboard_artifacts", ("grafana/dashboards/*.json",
                                                                  "grafana/provisioning/*/*.yaml")),
    Artifact("prometheus config (lab)", "llmobs.lab.prometheus:render_lab_prometheus",
             ("prometheus/prometheus.yml", "prometheus/targets/*.yml"), reads_workspace=True),
    Artifact("kubernetes quick start", "llmobs.k8s:artifacts", ("k8s/*.yaml", "k8s/*/*/*.yaml"),
             reads_workspace=True),
    Artifact("lab GPU servers (compose)", "llmobs.lab.services:lab_gpu_services", ("compose/services/gpu-*.yaml",),
             reads_workspace=True),
    Artifact("traces (collector and store)", "llmobs.tracing:artifacts", ("otel/*.yaml",)),
    Artifact("role READMEs", "llmobs.roles:role_readmes", ("roles/*/README.md",), reads_workspace=True),
)


def render_all(settings: Settings, workspace: Workspace,
               artifacts: tuple[Artifact, ...] = ARTIFACTS) -> dict[str, str]:
    """Every generated file {path: text}; raises ConfigErrors (all producers' errors) before returning."""
    files: dict[str, str] = {}
    errors: list[ConfigError] = []
    for artifact in artifacts:
        try:
            produced = artifact.render(settings, workspace)
        except ConfigError as error:
            errors += error.all
            continue
        for path, text in produced.items():
            if path in files:
                raise ValueError(f"{artifact.name} and another producer both generate {path}")
            files[path] = text
    if errors:
        raise ConfigErrors(errors)
    return files


@dataclass(frozen=True)
class Plan:
    """What writing `files` under `out` changes."""

    changed: list[str]  # new or different
    stale: list[str]  # owned by a producer, no longer produced

    @property
    def drift(self) -> bool:
        return bool(self.changed or self.stale)


def plan(out: Path, files: Mapping[str, str], artifacts: tuple[Artifact, ...] = ARTIFACTS) -> Plan:
    changed = [path for path, text in sorted(files.items())
               if not (out / path).is_file() or (out / path).read_text(encoding="utf-8") != text]
    owned = {p.relative_to(out).as_posix() for a in artifacts for glob in a.owns for p in out.glob(glob) if p.is_file()}
    return Plan(changed, sorted(owned - set(files)))


def write(out: Path, files: Mapping[str, str], todo: Plan) -> None:
    """Write changed files atomically (temporary file, then rename) and remove stale ones."""
    for path in todo.changed:
        write_atomic(out / path, files[path])
    for path in todo.stale:
        (out / path).unlink()
