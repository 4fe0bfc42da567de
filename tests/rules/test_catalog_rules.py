"""What the generated rules, CSV and runbooks say: XID classes by NVIDIA's meaning, annotations with
values and working runbook links, the DCGM counters the rules need, and the inventory join."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import yaml
from rules_support import REPO

from llmobs import catalog as catalog_mod
from llmobs import dcgm_csv, promql
from llmobs.catalog import ENGINE_GPU_INFO
from llmobs.conventions import LATENCY_GROUP, PROBE_TARGETS_GROUP, PROBE_TTFT_TARGET, REQUEST_GROUP
from llmobs.rules import panel_thresholds, render_rule_files, rule_files
from llmobs.settings import load_settings

# dcgm-exporter 4.5.3-4.8.2 etc/default-counters.csv, enabled lines in order (metrics-facts.md §2.4).
UPSTREAM_DEFAULT = [
    "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_MEMORY_TEMP", "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_ENC_UTIL", "DCGM_FI_DEV_DEC_UTIL",
    "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_RESERVED",
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "DCGM_FI_DEV_VGPU_LICENSE_STATUS", "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "DCGM_FI_DEV_ROW_REMAP_FAILURE", "DCGM_FI_DRIVER_VERSION",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "DCGM_FI_PROF_DRAM_ACTIVE",
    "DCGM_FI_PROF_PCIE_TX_BYTES", "DCGM_FI_PROF_PCIE_RX_BYTES",
]
# Alerts about a state (down, missing, pending) rather than a measured quantity.
STATE_ALERTS = {"HostDown", "TargetDown", "DcgmExporterDown", "VllmEngineDown", "GpuMissing", "GpuRowRemapFailure",
                "GpuRowRemapPending", "PrometheusConfigReloadFailed", "Watchdog"}


def _alert_rules() -> list[dict]:
    document = yaml.safe_load((REPO / "prometheus" / "rules" / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_xids_are_classed_by_nvidias_meaning() -> None:
    codes = catalog_mod.load().xids.codes
    for code in (46, 48, 62, 64, 74, 79, 95, 109, 119, 140, 151, 160):
        assert codes[code].xid_class == "fatal", code
    for code in (13, 31, 45, 68):
        assert codes[code].xid_class == "application", code
    assert codes[43].xid_class == "informational"  # NVIDIA: IGNORE (the device plugin calls it an app error)
    for code in (63, 92, 94):
        assert codes[code].xid_class != "fatal", code
    assert "reboot" in catalog_mod.load().xids.actions[codes[79].action]
    severities = {rule["alert"]: rule["labels"]["severity"] for rule in _alert_rules()}
    assert (severities["GpuXidFatal"], severities["GpuXidApplication"], severities["GpuXidInformational"]) == (
        "critical", "warning", "info")


def test_alerts_have_severity_summary_value_and_an_existing_runbook_section() -> None:
    for rule in _alert_rules():
        name, annotations = rule["alert"], rule["annotations"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert annotations["summary"] and annotations["description"], name
        if name not in STATE_ALERTS:
            assert "{{ $value" in annotations["description"], f"{name}: the description must carry the value"
        page, _, anchor = annotations["runbook_url"].removeprefix("docs/runbooks/").partition("#")
        text = (REPO / "docs" / "runbooks" / page).read_text()
        assert f"### {name}\n" in text and anchor == name.lower(), f"{name}: no section in {page}"
        assert "## What to do" in text and "## Diagnose" in text, page


def test_rules_never_judge_utilisation_or_framebuffer() -> None:
    """A busy GPU at 100 % with 90 % of its memory preallocated is healthy: no alert may read those."""
    files = rule_files(load_settings())
    recorded = {r.record: r.expr for file in files.values() for r in file.recording_rules()}

    def reads(expr: str, seen: frozenset[str] = frozenset()) -> set[str]:
        names = promql.selector_names(expr, "test")
        return names | {n for name in names - seen if name in recorded
                        for n in reads(recorded[name], seen | {name})}

    for rule in files["alerts.yml"].alerting_rules():
        forbidden = reads(rule.expr) & {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
                                        "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_SM_ACTIVE"}
        assert not forbidden, f"{rule.alert} reads {forbidden}"


def test_counters_csv_is_the_default_set_plus_what_the_rules_read() -> None:
    text = (REPO / "compose" / "dcgm-exporter" / "counters.csv").read_text()
    assert text == dcgm_csv.render(load_settings())
    # As dcgm-exporter reads it: Go's encoding/csv, `#` comments, exactly three fields per record.
    records = list(csv.reader(line for line in text.splitlines() if line and not line.startswith("#")))
    assert all(len(record) == 3 for record in records), [r for r in records if len(r) != 3]
    fields = [record[0] for record in records]
    assert fields[: len(UPSTREAM_DEFAULT)] == UPSTREAM_DEFAULT
    assert len(fields) == len(set(fields))
    read = {name for file in rule_files(load_settings()).values() for r in file.rules()
            for name in promql.selector_names(r.expr, "test") if name.startswith("DCGM_")}
    assert read <= set(fields), f"read by the rules but not collected: {sorted(read - set(fields))}"
    for needed in ("DCGM_FI_DEV_ENFORCED_POWER_LIMIT", "DCGM_FI_DEV_SLOWDOWN_TEMP", "DCGM_FI_DEV_GPU_TEMP_LIMIT",
                   "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "DCGM_FI_DEV_ROW_REMAP_PENDING", "DCGM_EXP_XID_ERRORS_COUNT",
                   "DCGM_EXP_CLOCK_EVENTS_COUNT", "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL"):
        assert needed in fields
    assert "# alerts: GpuEccDoubleBitError\nDCGM_FI_DEV_ECC_DBE_VOL_TOTAL" in text


def test_engine_gpu_info_from_the_inventory_or_an_argument() -> None:
    """One rule per engine (not per GPU), each yielding one series per GPU (tests/rules/test_promtool.py
    evaluates them)."""
    endpoints = {"gpu-7": [{"model": "llama-70b", "port": 8000, "gpus": [0, 1, 2, 3]},
                           {"model": "qwen-7b", "port": 8001, "gpus": [5], "address": "10.0.0.7"}]}
    for files in (render_rule_files(load_settings({"vllm_endpoints": endpoints})),
                  render_rule_files(load_settings().with_endpoints(endpoints))):
        rules = yaml.safe_load(files["inventory.yml"])["groups"][0]["rules"]
        assert [r["labels"] for r in rules] == [
            {"host": "gpu-7", "instance": "gpu-7:8000", "model_name": "llama-70b", "inference_engine": "vllm",
             "gpus": "0-3"},
            {"host": "gpu-7", "instance": "10.0.0.7:8001", "model_name": "qwen-7b", "inference_engine": "vllm",
             "gpus": "5"},
        ]
        assert all(r["record"] == ENGINE_GPU_INFO for r in rules)
        assert [re.findall(r'"gpu", "(\d+)"', r["expr"]) for r in rules] == [["0", "1", "2", "3"], ["5"]]


def test_engine_gpu_info_of_every_engine() -> None:
    settings = load_settings({"vllm_endpoints": {"h": [{"model": "a", "gpus": [0]}]},
                              "endpoints": {"h": [{"engine": "sglang", "model": "b", "gpus": [1, 2]},
                                                  {"engine": "llamacpp", "model": "c", "gpus": [4, 6, 7]}]}})
    rules = yaml.safe_load(render_rule_files(settings)["inventory.yml"])["groups"][0]["rules"]
    assert [(r["labels"]["instance"], r["labels"]["inference_engine"], r["labels"]["gpus"]) for r in rules] == [
        ("h:8000", "vllm", "0"), ("h:30000", "sglang", "1,2"), ("h:8080", "llamacpp", "4,6,7")]


def test_probe_ttft_targets_are_each_models_slo_target() -> None:
    """The prober's TTFT alert compares with the target the TTFT SLO uses: the default, or the model's own."""
    settings = load_settings({"vllm_endpoints": {"h": [{"model": "a", "gpus": [0]}, {"model": "b", "port": 8001,
                                                                                     "gpus": [1]}]},
                              "slo": {"defaults": {"ttft_seconds": 2.5}, "models": {"b": {"ttft_seconds": 5.0}}}})
    groups = yaml.safe_load(render_rule_files(settings)["inventory.yml"])["groups"]
    targets = next(g for g in groups if g["name"] == PROBE_TARGETS_GROUP)["rules"]
    assert [(r["record"], r["labels"], r["expr"]) for r in targets] == [
        (PROBE_TTFT_TARGET, {"model_name": "a"}, "vector(2.5)"), (PROBE_TTFT_TARGET, {"model_name": "b"}, "vector(5)")]


def test_existing_recording_rule_names_are_kept() -> None:
    recording = (REPO / "prometheus" / "rules" / "recording.yml").read_text()
    for name in ("instance_model:vllm_kv_cache_usage:max", "model:vllm_request_errors:ratio_rate5m",
                 "host_gpu:dcgm_power_usage:ratio_limit", "host_gpu:dcgm_temp_margin:celsius", "host:dcgm_gpus:count",
                 "fleet:vllm_generation_tokens_per_joule:ratio_rate5m", "model:vllm_time_to_first_token_seconds:"
                 "histogram_quantile5m"):
        assert f"record: {name}\n" in recording


def test_panel_thresholds_follow_the_settings() -> None:
    lines = panel_thresholds(load_settings({"thresholds": {"gpu_temp_margin_warning_celsius": 7}}))
    margin = {t["severity"]: t for t in lines["host_gpu:dcgm_temp_margin:celsius"]}
    assert margin["warning"]["value"] == 7 and margin["warning"]["direction"] == "below"
    assert margin["critical"]["value"] == 2
    errors = lines["instance_model:engine_request_errors:ratio_rate5m"]
    assert {t["severity"] for t in errors} == {"warning", "critical"}


def test_runbook_index_lists_every_page() -> None:
    index = (REPO / "docs" / "runbooks" / "README.md").read_text()
    pages = {p.name for p in Path(REPO / "docs" / "runbooks").glob("*.md")} - {"README.md"}
    linked = set(re.findall(r"\]\(([a-z0-9-]+\.md)\)", index))
    assert pages == linked


def test_each_histogram_is_a_group_of_its_own_at_the_histogram_interval() -> None:
    """One group per recorded histogram (Prometheus runs a group's rules in turn, groups side by side), at the
    catalog's histogram_interval; every other group at the global evaluation interval."""
    recording = catalog_mod.load().recording
    document = yaml.safe_load((REPO / "prometheus" / "rules" / "recording.yml").read_text())
    intervals = {group["name"]: group.get("interval") for group in document["groups"]}
    histograms = {f"{LATENCY_GROUP}.{h.name}" for h in recording.latency_histograms} | {
        f"{REQUEST_GROUP}.{h.name}" for h in recording.request_histograms}
    assert len(histograms) == len(recording.latency_histograms) + len(recording.request_histograms) > 10
    assert {name for name, interval in intervals.items() if interval} == histograms
    assert {intervals[name] for name in histograms} == {recording.histogram_interval}
    for group in document["groups"]:
        if group["name"] in histograms:  # a histogram's bucket rates per engine and per model, then quantiles
            records = {rule["record"] for rule in group["rules"]}
            assert len(records) == 4 and all(group["name"].rpartition(".")[2] in r for r in records), records
