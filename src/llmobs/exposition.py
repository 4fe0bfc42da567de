"""What the exporters expose, in the one copy that the simulators (llmobs.sim) and the promtool tests'
input series (llmobs.rules.testing) both read: dcgm-exporter's GPU label set and its values, vLLM's
engine labels and bucket boundaries, and the labels Prometheus gives every scrape target.

Sources: dcgm-exporter 4.x (pkg/cmd/app.go flags, internal/pkg/collector label order), vLLM V1
(vllm/v1/metrics/loggers.py), Prometheus' scrape (job, instance and the kit's host label).
"""

from __future__ import annotations

import math
import uuid

# ------------------------------------------------------------------------------------- dcgm-exporter
DRIVER_VERSION = "570.133.20"  # DCGM_FI_DRIVER_VERSION of the recorded H100 hosts (tests/fixtures/nvidia-smi)
DRIVER_VERSION_FIELD = "DCGM_FI_DRIVER_VERSION"  # a label-type field of the counters CSV
COLLECT_INTERVAL_MS = 30000  # -c
XID_WINDOW_MS = 300000  # -x: the window of DCGM_EXP_XID_ERRORS_COUNT
CLOCK_EVENTS_WINDOW_MS = 300000  # the window of DCGM_EXP_CLOCK_EVENTS_COUNT
WINDOW_LABEL = "window_size_in_ms"
# HGX boards enumerate their GPUs on these PCI buses; PCIe servers use similar ones.
_PCI_BUSES = (0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB)


def gpu_uuid(host: str, index: int) -> str:
    """A stable, unique GPU UUID for a simulated GPU (the real ones come from the board)."""
    return f"GPU-{uuid.uuid5(uuid.NAMESPACE_DNS, f'{host}/gpu{index}')}"


def pci_bus_id(index: int) -> str:
    bus = _PCI_BUSES[index] if index < len(_PCI_BUSES) else 0x10 + index
    return f"00000000:{bus:02X}:00.0"


def gpu_labels(index: int, gpu_uuid: str, model_name: str, hostname: str | None, uuid_label: str = "UUID",
               hostname_label: str = "Hostname") -> list[tuple[str, str]]:
    """The labels of every GPU series, in dcgm-exporter's order: gpu, UUID, pci_bus_id, device, modelName
    and, unless `-n`, the host name (`Hostname` up to release 4.5.3-4.8.2, `hostname` since; label-type
    fields such as the driver version follow)."""
    labels = [("gpu", str(index)), (uuid_label, gpu_uuid), ("pci_bus_id", pci_bus_id(index)),
              ("device", f"nvidia{index}"), ("modelName", model_name)]
    return labels + ([(hostname_label, hostname)] if hostname else [])


# ------------------------------------------------------------------------------------------- vLLM
ENGINE_INDEX = "0"  # the `engine` label of a server with one engine core


def vllm_labels(model_name: str, engine: str = ENGINE_INDEX) -> dict[str, str]:
    """The labels vLLM puts on every engine series."""
    return {"model_name": model_name, "engine": engine}


def le_value(boundary: float) -> str:
    """A histogram bucket's `le` as prometheus_client writes it: `1.0`, `0.25`, `+Inf`."""
    return "+Inf" if boundary == math.inf else repr(float(boundary))


# ------------------------------------------------------------------------------------- scrape targets
def target_labels(job: str, instance: str, host_label: str, host: str) -> dict[str, str]:
    """What Prometheus adds to every series of a target: its job and instance, and the kit's host label."""
    return {"instance": instance, "job": job, host_label: host}
