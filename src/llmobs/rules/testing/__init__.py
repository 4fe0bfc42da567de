"""promtool unit tests of the generated rules (prometheus/tests/*.test.yml), rendered for the settings.

The input series look like what dcgm-exporter, vLLM and node_exporter really expose (`fleet`, over the
label shapes of llmobs.exposition that the simulators share). Every fault scenario starts from a healthy,
busy host and changes what the fault changes; inputs are derived from the settings' thresholds and SLO
targets, so a site can run the tests against its own rules. The expected labels and annotations are
written out by hand, independently of the rule templates, so a wrong template fails a test.

Files, one per area (`scenarios/<area>.py`, one function per scenario): quiet (healthy-busy and idle hosts
raise nothing but the Watchdog), gpu, engine, slo, host (host and pipeline alerts), preflight (a host's
NVIDIA stack regressing, from the preflight's textfile metrics), probe (the endpoint prober: a fault in front
of a healthy engine), recording (values of the recording rules
the dashboards and alerts read).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llmobs import catalog as catalog_mod
from llmobs.catalog import Catalog
from llmobs.conventions import ALERTS_FILE, RECORDING_FILE, SLO_FILE, TESTS_DIR
from llmobs.rules.testing.fleet import Fleet
from llmobs.rules.testing.promtool import Scenario
from llmobs.rules.testing.scenarios import engine, gpu, host, preflight, probe, quiet, recording, slo
from llmobs.settings import Settings
from llmobs.yamlfmt import dump, generated_header

# The rule files under test, relative to prometheus/tests/ (beside prometheus/rules/). inventory.yml is
# left out: the tests give llmobs:engine_gpu:info as input, independent of the site's inventory. Tests of
# other alerts leave the SLO rules out too (they cost 40 % of the evaluation and those alerts cannot fire
# without them).
RULE_FILES = tuple(f"../rules/{name}" for name in (RECORDING_FILE, SLO_FILE, ALERTS_FILE))
NO_SLO_RULES = tuple(path for path in RULE_FILES if not path.endswith(SLO_FILE))
_HEADER = generated_header("src/llmobs/rules/testing and the settings") + (
    "# Run: promtool test rules prometheus/tests/*.test.yml\n"
)


@dataclass(frozen=True)
class PromtoolFile:
    scenarios: Callable[[Fleet], list[Scenario]]
    evaluation_interval: int  # seconds
    rule_files: tuple[str, ...]


FILES = {
    "quiet.test.yml": PromtoolFile(quiet.scenarios, 60, RULE_FILES),
    "gpu.test.yml": PromtoolFile(gpu.scenarios, 10, NO_SLO_RULES),
    "engine.test.yml": PromtoolFile(engine.scenarios, 10, NO_SLO_RULES),
    "slo.test.yml": PromtoolFile(slo.scenarios, 60, RULE_FILES),
    "host.test.yml": PromtoolFile(host.scenarios, 10, NO_SLO_RULES),
    "preflight.test.yml": PromtoolFile(preflight.scenarios, 10, NO_SLO_RULES),
    "recording.test.yml": PromtoolFile(recording.scenarios, 10, NO_SLO_RULES),
    "probe.test.yml": PromtoolFile(probe.scenarios, 10, NO_SLO_RULES),
}


def render_rule_tests(settings: Settings, catalog: Catalog | None = None) -> dict[str, str]:
    """{file name: promtool test file} for prometheus/tests/."""
    fleet = Fleet(settings, catalog or catalog_mod.load())
    result = {}
    for name, promtool_file in FILES.items():
        document = {
            "rule_files": list(promtool_file.rule_files),
            "evaluation_interval": f"{promtool_file.evaluation_interval}s",
            "tests": [scenario.render() for scenario in promtool_file.scenarios(fleet)],
        }
        result[name] = dump(document, _HEADER)
    return result


def promtool_artifacts(settings: Settings) -> dict[str, str]:
    """prometheus/tests/ for `llmobs generate`."""
    return {f"{TESTS_DIR}/{name}": text for name, text in render_rule_tests(settings).items()}
