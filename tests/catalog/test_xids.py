"""The XID catalogue (src/llmobs/catalog/xids.yaml): complete, classed by NVIDIA's resolution as the
committed alert rules see it, and refused with a clear error when an entry is wrong."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmobs import catalog as catalog_mod
from llmobs.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "prometheus" / "rules"

# NVIDIA's resolution buckets (its catalogue's immediate action) and the severity they must page with:
# a reset or a reboot is critical, a restart of the application or a person's check a warning, IGNORE
# only a record. Stated here independently of xids.yaml, so a wrong class in the data fails the test.
SEVERITY_OF_BUCKET = {
    "RESET_GPU": "critical", "RESTART_BM": "critical", "RESTART_VM": "critical", "WORKFLOW_XID_48": "critical",
    "WORKFLOW_NVLINK_ERR": "critical", "WORKFLOW_NVLINK5_ERR": "critical",
    "XID_154": "warning", "RESTART_APP": "warning", "WORKFLOW_XID_45": "warning", "CHECK_UVM": "warning",
    "CHECK_MECHANICALS": "warning", "UPDATE_SWFW": "warning", "CONTACT_SUPPORT": "warning",
    "IGNORE": "info",
}
NO_ACTION_LISTED = "warning"  # codes NVIDIA's catalogue gives no immediate action for (162-172)


def _committed(name: str) -> list[dict[str, Any]]:
    document = yaml.safe_load((RULES / name).read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _classes_as_recorded() -> dict[int, dict[str, str]]:
    """xid -> labels of its llmobs:xid_class:info series, as the committed recording rules record it."""
    return {int(rule["labels"]["xid"]): rule["labels"] for rule in _committed("recording.yml")
            if rule.get("record") == catalog_mod.XID_CLASS_INFO}


def _severity_of_class() -> dict[str, str]:
    """xid_class -> severity of the one committed alert that selects it."""
    found: dict[str, list[str]] = {}
    for rule in _committed("alerts.yml"):
        for xid_class in re.findall(r'xid_class="([a-z_]+)"', rule.get("expr", "")):
            found.setdefault(xid_class, []).append(rule["labels"]["severity"])
    assert all(len(severities) == 1 for severities in found.values()), found
    return {xid_class: severities[0] for xid_class, severities in found.items()}


def test_every_code_pages_with_the_severity_its_resolution_implies() -> None:
    xids = catalog_mod.load().xids
    recorded, severity = _classes_as_recorded(), _severity_of_class()
    assert set(recorded) == set(xids.codes), "every code has its llmobs:xid_class:info series"
    assert set(severity) == set(catalog_mod.XidClass.__args__), "every class has its alert"
    for code, xid in xids.codes.items():
        bucket = xids.resolutions[xid.resolution].nvidia
        expected = SEVERITY_OF_BUCKET.get(bucket, NO_ACTION_LISTED if xid.resolution == "none_listed" else None)
        assert expected, f"XID {code}: NVIDIA bucket {bucket!r} has no expected severity in this test"
        labels = recorded[code]
        assert labels["xid_class"] == xid.xid_class and labels["xid_name"] == xid.name, code
        assert severity[labels["xid_class"]] == expected, f"XID {code} ({bucket}) pages {severity[labels['xid_class']]}"


def test_restart_app_is_never_critical_and_ignore_never_warns() -> None:
    xids, severity = catalog_mod.load().xids, _severity_of_class()
    by_bucket: dict[str, set[str]] = {}
    for xid in xids.codes.values():
        by_bucket.setdefault(xids.resolutions[xid.resolution].nvidia, set()).add(severity[xid.xid_class])
    assert by_bucket["RESTART_APP"] == {"warning"}
    assert by_bucket["IGNORE"] == {"info"}


def test_the_codes_nvidia_and_the_issue_single_out() -> None:
    xids, severity = catalog_mod.load().xids, _severity_of_class()
    for code, name in ((160, "CHANNEL_RETIREMENT_EVENT"), (151, "ROBUST_CHANNEL_KEY_ROTATION_ERROR"),
                       (79, "ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS"), (48, "ROBUST_CHANNEL_GPU_ECC_DBE")):
        assert (xids.codes[code].name, xids.codes[code].xid_class) == (name, "fatal"), code
        assert severity["fatal"] == "critical"
    assert "reboot" in xids.actions[xids.codes[160].action]
    # 154 warns and tells the operator where the driver states the new recovery action.
    assert xids.codes[154].xid_class == "recovery_action" and severity["recovery_action"] == "warning"
    action = _classes_as_recorded()[154]["xid_action"]
    assert "nvidia-smi -q" in action and "GPU Recovery Action" in action and "kernel log" in action, action
    (alert,) = [r for r in _committed("alerts.yml") if 'xid_class="recovery_action"' in r["expr"]]
    assert "{{ $labels.xid_action }}" in alert["annotations"]["description"]
    # Application errors (13, 31) warn; records NVIDIA says to ignore (43, 63, 92) stay info.
    assert {xids.codes[code].xid_class for code in (13, 31, 45, 94)} == {"application"}
    assert {xids.codes[code].xid_class for code in (43, 63, 92, 161)} == {"informational"}


def test_the_catalogue_is_complete_with_the_exporters_messages() -> None:
    xids = catalog_mod.load().xids
    assert set(xids.codes) == set(range(1, 173)), "NVIDIA's catalogue and the exporter's table: 1-172"
    for code, xid in xids.codes.items():
        assert re.fullmatch(r"[A-Z0-9_]+( / [A-Z0-9_]+)?", xid.name), (code, xid.name)
        assert xid.message and xid.message != xids.exporter_messages.unknown, code
    assert (xids.message_of(0), xids.message_of(173)) == ("No Error", "Unknown Error")
    # Where xids.yaml departs from NVIDIA's catalogue, it says why.
    assert all(xids.codes[code].note for code in (108, 160, 162))


# --------------------------------------------------------------------------------------- bad input
def _xids_with(change) -> dict[str, Any]:
    data = copy.deepcopy(catalog_mod.raw())
    change(data["xids"])
    return data


BAD_XIDS = [
    pytest.param(lambda x: x["resolutions"]["restart_bm"].update({"class": "deadly"}),
                 "xids.resolutions.restart_bm.class",
                 "'fatal', 'recovery_action', 'application', 'investigate' or 'informational'", id="unknown-class"),
    pytest.param(lambda x: x["codes"][160].update(resolution="reboot"), "xids.codes",
                 "XID 160: unknown resolution 'reboot'; use one of check_mechanicals", id="unknown-resolution"),
    pytest.param(lambda x: x["codes"][160].pop("resolution"), "xids.codes",
                 "XID 160: `resolution` is missing", id="missing-resolution"),
    pytest.param(lambda x: x["codes"][160].update({"class": "fatal"}), "xids.codes",
                 "XID 160: `class` follows from the resolution; remove it", id="class-written-by-hand"),
    pytest.param(lambda x: x["codes"][160].update(action="reboot"), "xids.codes[160].action",
                 "Extra inputs are not permitted", id="old-action-field"),
    pytest.param(lambda x: x["exporter_messages"].pop("unknown"), "xids.exporter_messages.unknown",
                 "Field required", id="missing-exporter-message"),
]


@pytest.mark.parametrize(("change", "field", "words"), BAD_XIDS)
def test_a_wrong_entry_is_refused_naming_the_field_and_the_fix(change, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        catalog_mod.validate(_xids_with(change))
    errors = getattr(caught.value, "errors", [caught.value])
    assert [e.field for e in errors] == [field], [str(e) for e in errors]
    assert words in str(errors[0]) and errors[0].fix, str(errors[0])


def test_a_field_id_shared_by_two_metrics_is_refused() -> None:
    data = copy.deepcopy(catalog_mod.raw())
    data["metrics"][1]["dcgm"]["field_id"] = data["metrics"][0]["dcgm"]["field_id"]
    with pytest.raises(ConfigError, match=r"DCGM field IDs must be unique; shared by several metrics: \[100\]"):
        catalog_mod.validate(data)


def test_generate_writes_nothing_from_a_catalog_with_an_unknown_class(tmp_path: Path) -> None:
    """`llmobs generate` on a broken catalog: the error names the field and the fix, and no file is written."""
    package = tmp_path / "src" / "llmobs"
    shutil.copytree(REPO / "src" / "llmobs", package, ignore=shutil.ignore_patterns("__pycache__"))
    xids = package / "catalog" / "xids.yaml"
    text = xids.read_text()
    assert text.count("    class: informational\n") == 1
    xids.write_text(text.replace("    class: informational\n", "    class: harmless\n"))
    out = tmp_path / "out"
    out.mkdir()
    shutil.copytree(REPO / "compose", out / "compose")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    result = subprocess.run([sys.executable, "-m", "llmobs", "generate", "--out", str(out)], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(tmp_path / "src")}, timeout=120)
    output = " ".join((result.stdout + result.stderr).split())  # the console wraps long lines
    assert result.returncode != 0, output
    assert "nothing written" in output and "xids.resolutions.ignore.class" in output, output
    assert "Fix: use one of 'fatal', 'recovery_action', 'application', 'investigate' or 'informational'" in output
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before, "nothing may be written"
