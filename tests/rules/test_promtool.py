"""The generated rules under promtool: syntax, the unit tests (every alert fires on its fault and stays
silent on healthy-busy and idle input), for the lab's settings and for a site's, and tests that fail
when a rule is broken."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from rules_support import REPO, run, write_tree

from llmobs.rules import alert_list, render_rule_files
from llmobs.rules.testing import render_rule_tests
from llmobs.rules.testing.promtool import seconds
from llmobs.settings import load_settings

RULES = REPO / "prometheus" / "rules"
TESTS = REPO / "prometheus" / "tests"

# A site that changes what a site changes: host label, job names, thresholds, teams, SLO targets per model.
SITE = {
    "labels": {"host": "node"},
    "jobs": {"dcgm": "gpu-exporter", "vllm": "inference"},
    "thresholds": {"gpu_temp_margin_warning_celsius": 8, "gpu_temp_margin_critical_celsius": 3,
                   "kv_cache_usage_warning": 0.9, "queue_waiting_requests_warning": 20,
                   "engine_error_ratio_warning": 0.02, "engine_error_ratio_critical": 0.1,
                   "disk_mountpoints": ["/", "/srv/models"], "engine_stuck_window": "3m"},
    "alerting": {"teams": {"gpu": "hw-oncall"},
                 "runbook_base_url": "https://git.example.com/ops/kit/-/blob/main/docs/runbooks"},
    "slo": {"period": "28d", "models": {
        "meta-llama/Llama-3.1-70B-Instruct": {"ttft_seconds": 2.5, "ttft_objective": 0.95},
        "qwen2.5-7b": {"availability_objective": 0.995, "inter_token_latency_seconds": 0.05},
        # Engines started with --custom-histogram-buckets: a TTFT target on one of their own boundaries.
        "mistral-small": {"ttft_seconds": 3.0, "histogram_buckets": {"time_to_first_token": [0.5, 1.0, 3.0, 6.0]}},
    }},
}


def _promtool_tests(promtool: str, files: list[Path]) -> list[str]:
    """Run promtool on each test file (two at a time); return the failures' output."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda f: run(promtool, "test", "rules", f.name, cwd=f.parent), files))
    return [f"{f.name}:\n{r.stdout[-4000:]}{r.stderr[-2000:]}" for f, r in zip(files, results, strict=True)
            if r.returncode != 0]


def test_committed_rules_pass_promtool_check(promtool: str) -> None:
    result = run(promtool, "check", "rules", *sorted(RULES.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


def test_committed_unit_tests_pass(promtool: str) -> None:
    failures = _promtool_tests(promtool, sorted(TESTS.glob("*.test.yml")))
    assert not failures, "\n".join(failures)


def _alert_tests() -> list[tuple[str, dict]]:
    return [(path.name, case) for path in sorted(TESTS.glob("*.test.yml"))
            for test in yaml.safe_load(path.read_text())["tests"] for case in test.get("alert_rule_test", [])]


def test_every_alert_and_severity_fires_in_a_unit_test(lab_settings) -> None:
    fired = {(case["alertname"], alert["exp_labels"]["severity"])
             for _, case in _alert_tests() for alert in case["exp_alerts"]}
    rules = {(a.alert, a.severity) for a in alert_list(lab_settings)}
    missing = sorted(rules - fired)
    assert not missing, f"alerts without a promtool test that makes them fire: {missing}"


def test_every_alert_is_silent_on_healthy_busy_and_idle_hosts(lab_settings) -> None:
    quiet = [case for name, case in _alert_tests() if name == "quiet.test.yml"]
    checked = {case["alertname"] for case in quiet if case["exp_alerts"] == []}
    names = {a.alert for a in alert_list(lab_settings)} - {"Watchdog"}
    assert names <= checked, f"alerts not checked silent on healthy input: {sorted(names - checked)}"
    watchdog = [case for case in quiet if case["alertname"] == "Watchdog"]
    assert watchdog and all(len(case["exp_alerts"]) == 1 for case in watchdog), "the Watchdog must always fire"


def test_gpu_and_engine_alerts_carry_their_identity() -> None:
    for file, case in _alert_tests():
        for alert in case["exp_alerts"]:
            labels, component = alert["exp_labels"], alert["exp_labels"]["component"]
            where = f"{file}: {case['alertname']}"
            if component == "gpu" and case["alertname"] != "DcgmExporterDown":
                assert {"host", "gpu", "UUID", "modelName"} <= set(labels), where
            if component == "engine":
                assert {"host", "instance"} <= set(labels), where
                assert "model_name" in labels or "(model: unknown)" in alert["exp_annotations"]["description"], where
            if component == "slo":
                assert {"slo", "model_name"} <= set(labels), where


def test_site_settings_pass_their_own_unit_tests(tmp_path: Path, promtool: str) -> None:
    settings = load_settings(SITE)
    files = {f"prometheus/rules/{n}": t for n, t in render_rule_files(settings).items()}
    files |= {f"prometheus/tests/{n}": t for n, t in render_rule_tests(settings).items()}
    write_tree(tmp_path, files)
    assert 'node="gpu-node-1"' in files["prometheus/tests/gpu.test.yml"]
    assert 'model_name="meta-llama/Llama-3.1-70B-Instruct"' in files["prometheus/rules/slo.yml"]
    # The model's SLO reads the boundary its engines declare (3 s is not one of vLLM's own).
    assert 'vllm:time_to_first_token_seconds_bucket{le=~"3(\\\\.0)?", model_name="mistral-small"}' in \
        files["prometheus/rules/slo.yml"]
    check = run(promtool, "check", "rules", *sorted((tmp_path / "prometheus" / "rules").glob("*.yml")))
    assert check.returncode == 0, check.stdout + check.stderr
    failures = _promtool_tests(promtool, sorted((tmp_path / "prometheus" / "tests").glob("*.test.yml")))
    assert not failures, "\n".join(failures)


# A broken rule must make the unit tests fail: (test file, alert, text in alerts.yml, its replacement).
MUTATIONS = [
    pytest.param("gpu.test.yml", "GpuXidFatal", 'llmobs:xid_class:info{xid_class="fatal"}',
                 'llmobs:xid_class:info{xid_class="application"}', id="fatal-xid-misclassified"),
    pytest.param("quiet.test.yml", "GpuPowerAboveLimit", "host_gpu:dcgm_power_usage:ratio_limit > 1.05",
                 "host_gpu:dcgm_power_usage:ratio_limit > 0.9", id="power-judged-below-the-limit"),
    pytest.param("gpu.test.yml", "GpuMissing", "unless on (host, UUID) DCGM_FI_DEV_GPU_TEMP\n",
                 "unless on (host) DCGM_FI_DEV_GPU_TEMP\n", id="missing-gpu-hidden-by-its-siblings"),
    pytest.param("slo.test.yml", "VllmAvailabilityBudgetBurn", '{slo="availability"} / 0.001 > 6\n',
                 '{slo="availability"} / 0.001 > 4\n', id="slow-burn-pages"),
]


@pytest.mark.parametrize(("test_file", "alert", "original", "broken"), MUTATIONS)
def test_unit_tests_catch_a_broken_rule(tmp_path: Path, promtool: str, test_file: str, alert: str, original: str,
                                        broken: str) -> None:
    # Only the tests of that alert, up to 30 minutes: enough to see them fail, and quick.
    document = yaml.safe_load((TESTS / test_file).read_text())
    for test in document["tests"]:
        test["alert_rule_test"] = [case for case in test.get("alert_rule_test", [])
                                   if case["alertname"] == alert and seconds(case["eval_time"]) <= 1800]
        test.pop("promql_expr_test", None)
    document["tests"] = [test for test in document["tests"] if test["alert_rule_test"]]
    assert document["tests"], f"{test_file} has no test of {alert}"
    tests = tmp_path / "tests"
    write_tree(tests, {test_file: yaml.safe_dump(document)})
    rules = tmp_path / "rules"
    write_tree(rules, {p.name: p.read_text() for p in RULES.glob("*.yml")})
    intact = run(promtool, "test", "rules", test_file, cwd=tests)
    assert intact.returncode == 0, intact.stdout + intact.stderr

    alerts = rules / "alerts.yml"
    assert original in alerts.read_text(), f"the mutation no longer applies: {original!r}"
    alerts.write_text(alerts.read_text().replace(original, broken))
    result = run(promtool, "test", "rules", test_file, cwd=tests)
    assert result.returncode != 0, f"{test_file} passed with a broken rule ({broken!r})"


def test_promtool_is_the_version_its_test_id_names(promtool: str, request: pytest.FixtureRequest) -> None:
    """Each parametrised run really uses the promtool it is named after (not whichever is on PATH)."""
    result = run(promtool, "--version")
    assert result.returncode == 0, result.stderr
    wanted = request.node.callspec.id.removeprefix("promtool-")
    assert result.stdout.startswith(f"promtool, version {wanted}"), result.stdout
