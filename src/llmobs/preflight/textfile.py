"""The GPU preflight's verdicts as metrics, for node_exporter's textfile collector.

`render(report)` turns one host's report (llmobs.preflight.judge) into Prometheus' text format; the
gpu_preflight role writes it into the textfile directory (`<dir>/llmobs_gpu_preflight.prom`, atomically)
on every run, and node_exporter serves it under the host's `host` label. The alerts of the page
`gpu-host-stack` (catalog/alerts.yaml) read these series: a host whose NVIDIA stack regresses since it
was set up (persistence mode off, fabric manager down on an NVSwitch system, a driver version other than
the fleet's, pending row remaps). The names are catalogued in catalog/metrics.yaml (layer platform).

Standard library only, like the judge: the host's timer (llmobs.preflight.host) writes the same file. The
text is Prometheus' text exposition format, byte for byte what prometheus_client wrote before (tests/preflight
parse it with prometheus_client's parser).
"""

from __future__ import annotations

from typing import Any

FILE_NAME = "llmobs_gpu_preflight.prom"
CHECK = "llmobs_gpu_preflight_check"
GPUS = "llmobs_gpu_preflight_gpus"
NVSWITCHES = "llmobs_gpu_preflight_nvswitches"
FABRIC_MANAGER_RUNNING = "llmobs_gpu_preflight_fabric_manager_running"
PERSISTENCE_MODE_OFF_GPUS = "llmobs_gpu_preflight_persistence_mode_off_gpus"
ROW_REMAP_PENDING_GPUS = "llmobs_gpu_preflight_row_remap_pending_gpus"
DRIVER_INFO = "llmobs_gpu_preflight_driver_info"
# No run-time series: the file changes only when a verdict does, so a re-run of the role changes nothing
# (node_exporter's node_textfile_mtime_seconds says when the verdicts last changed).
NAMES = (CHECK, GPUS, NVSWITCHES, FABRIC_MANAGER_RUNNING, PERSISTENCE_MODE_OFF_GPUS, ROW_REMAP_PENDING_GPUS,
         DRIVER_INFO)


def _escape(text: str, quote: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if quote else text


def _gauge(name: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> list[str]:
    lines = [f"# HELP {name} {_escape(help_text, quote=False)}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        text = ",".join(f'{key}="{_escape(val, quote=True)}"' for key, val in labels.items())
        lines.append(f"{name}{{{text}}} {float(value)!r}" if labels else f"{name} {float(value)!r}")
    return lines


def render(report: dict[str, Any]) -> str:
    """The textfile of one host's preflight report."""
    facts = report["facts"]
    lines = _gauge(CHECK, "Verdict of each GPU preflight check: 1 for the current verdict (PASS, WARN, FAIL, SKIP).",
                   [({"check": result["name"], "verdict": result["verdict"]}, 1) for result in report["checks"]])
    lines += _gauge(GPUS, "GPUs nvidia-smi lists.", [({}, report["gpu_count"])])
    lines += _gauge(NVSWITCHES, "NVSwitches on the PCI bus.", [({}, report["nvswitch_count"])])
    lines += _gauge(FABRIC_MANAGER_RUNNING, "Whether nv-fabricmanager runs (1) or not (0).",
                    [({}, facts["fabric_manager_running"])])
    lines += _gauge(PERSISTENCE_MODE_OFF_GPUS, "GPUs with persistence mode off.",
                    [({}, facts["persistence_mode_off_gpus"])])
    lines += _gauge(ROW_REMAP_PENDING_GPUS, "GPUs with a row remap pending (or a reset required).",
                    [({}, facts["row_remap_pending_gpus"])])
    if facts["driver_version"]:
        lines += _gauge(DRIVER_INFO, "The NVIDIA driver version, as a label.",
                        [({"driver_version": facts["driver_version"]}, 1)])
    return "\n".join(lines) + "\n"
