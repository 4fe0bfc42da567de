"""Parsers for the NVIDIA stack's own tool output, in the exact formats the tools print.

Every function takes the text a command printed (or a /proc file's content) and returns plain data;
none of them runs anything. The recorded outputs they are tested against, and where each format comes
from, are in tests/fixtures/nvidia-smi/README.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

# The `--query-gpu` fields the preflight asks for. Each is listed by `nvidia-smi --help-query-gpu`
# and has been for many driver branches; newer fields (fabric.*, remapped rows) come from `-q` instead,
# because one unknown field makes nvidia-smi reject the whole query.
QUERY_FIELDS: tuple[str, ...] = (
    "index", "pci.bus_id", "uuid", "name", "driver_version", "persistence_mode", "ecc.mode.current",
)
QUERY_FORMAT = "csv,noheader,nounits"

# What nvidia-smi prints for a value the GPU or driver does not provide.
_NOT_AVAILABLE = {"", "N/A", "[N/A]", "Not Supported", "[Not Supported]", "Unknown Error", "[Unknown Error]"}

# `key   : value` lines of `nvidia-smi -q`: the key is padded with spaces up to the colon. Section
# headers ("    Remapped Rows", "GPU 00000000:53:00.0") have no colon preceded by a space.
_Q_LINE = re.compile(r"^(?P<indent> *)(?P<key>\S.*?)\s+:\s?(?P<value>.*)$")


def available(value: str | None) -> str | None:
    """The value, or None where nvidia-smi says it is not available."""
    if value is None:
        return None
    value = value.strip()
    return None if value in _NOT_AVAILABLE else value


def _int(value: str | None) -> int | None:
    value = available(value)
    return int(value) if value is not None and value.isdigit() else None


def _yes(value: str | None) -> bool | None:
    value = available(value)
    return None if value is None else value.lower() == "yes"


# ---------------------------------------------------------------------------------------- nvidia-smi
@dataclass(frozen=True)
class SmiFailure:
    """nvidia-smi ran but did not answer: what it said and what to do about it."""

    message: str
    cause: str
    fix: str


# Known messages, first match wins. The texts are nvidia-smi's own (see the fixtures README).
_SMI_FAILURES: tuple[tuple[str, str, str], ...] = (
    ("couldn't communicate with the NVIDIA driver", "the NVIDIA kernel module is not loaded",
     "check `dmesg | grep -i nvrm`; after a kernel update rebuild the module for `uname -r` "
     "(`dkms autoinstall`, or reinstall the nvidia-dkms package of the driver branch) and reboot"),
    ("Driver/library version mismatch", "the user-space driver and the loaded kernel module differ",
     "the driver was upgraded while the old module stayed loaded: drain the node and reboot "
     "(or unload and reload the nvidia modules)"),
    ("No devices were found", "the driver sees no GPU",
     "check `lspci -d 10de:` for the GPUs, their power and seating, and `dmesg | grep -i nvrm`"),
    ("fallen off the bus", "a GPU fell off the PCIe bus (Xid 79)",
     "drain the node and power-cycle it; if it recurs, have the GPU and its slot inspected"),
    ("GPU is lost", "a GPU is lost (Xid 79)",
     "drain the node and power-cycle it; if it recurs, have the GPU and its slot inspected"),
    ("Unable to determine the device handle", "nvidia-smi cannot reach one of the GPUs",
     "look for Xid errors in `dmesg | grep -i xid`; reset the GPU (`nvidia-smi -r -i <n>`) or reboot"),
)


def smi_failure(rc: int, stdout: str, stderr: str) -> SmiFailure | None:
    """Why nvidia-smi did not answer, or None when it did (exit status 0)."""
    if rc == 0:
        return None
    said = " ".join(line.strip() for line in f"{stdout}\n{stderr}".splitlines() if line.strip())
    for needle, cause, fix in _SMI_FAILURES:
        if needle.lower() in said.lower():
            return SmiFailure(said, cause, fix)
    return SmiFailure(said or f"exit status {rc} and no output", f"nvidia-smi exited with status {rc}",
                      "run `nvidia-smi` on the host and read its message; see `dmesg | grep -i nvrm`")


@dataclass(frozen=True)
class GpuRow:
    """One row of `nvidia-smi --query-gpu=<QUERY_FIELDS> --format=csv,noheader,nounits`."""

    index: int
    bus_id: str
    uuid: str
    name: str
    driver_version: str
    persistence_mode: str | None
    ecc_mode: str | None


def parse_query_gpu(text: str, fields: tuple[str, ...] | list[str] = QUERY_FIELDS) -> list[GpuRow]:
    """Rows of a `--query-gpu` answer in csv,noheader,nounits format (values separated by ", ")."""
    fields = tuple(fields)
    missing = set(QUERY_FIELDS) - set(fields)
    if missing:
        raise ValueError(f"the query lacks the fields {sorted(missing)}")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        values = [value.strip() for value in line.split(",")]
        if len(values) != len(fields):
            raise ValueError(f"line {number} has {len(values)} values for {len(fields)} fields: {line!r}")
        row = dict(zip(fields, values, strict=True))
        rows.append(GpuRow(
            index=int(row["index"]), bus_id=row["pci.bus_id"], uuid=row["uuid"], name=row["name"],
            driver_version=row["driver_version"], persistence_mode=available(row["persistence_mode"]),
            ecc_mode=available(row["ecc.mode.current"]),
        ))
    return rows


@dataclass(frozen=True)
class GpuDetail:
    """What the preflight reads from one GPU's section of `nvidia-smi -q`."""

    bus_id: str
    product_name: str | None
    product_brand: str | None
    retired_single_bit: int | None
    retired_double_bit: int | None
    retirement_pending: bool | None
    remapped_correctable: int | None
    remapped_uncorrectable: int | None
    remap_pending: bool | None
    remap_failure: bool | None
    reset_required: bool | None
    fabric_state: str | None
    fabric_status: str | None


@dataclass(frozen=True)
class SmiLog:
    """`nvidia-smi -q`: the header and one GpuDetail per GPU section."""

    driver_version: str | None
    cuda_version: str | None
    attached_gpus: int | None
    gpus: list[GpuDetail] = field(default_factory=list)


def _q_tree(text: str) -> tuple[dict, list[tuple[str, dict]]]:
    """The indentation tree of `nvidia-smi -q`: the header mapping and (bus id, mapping) per GPU."""
    header: dict = {}
    gpus: list[tuple[str, dict]] = []
    stack: list[tuple[int, dict]] = [(-1, header)]
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("="):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent == 0 and line.startswith("GPU "):
            section: dict = {}
            gpus.append((line[4:].strip(), section))
            stack = [(-1, header), (0, section)]
            continue
        while len(stack) > 1 and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        match = _Q_LINE.match(line)
        if match:
            # Repeated keys (one per process, per MIG device) keep the first: the preflight reads none.
            parent.setdefault(match["key"].strip(), match["value"].strip())
        else:
            child = parent.setdefault(line.strip(), {})
            if isinstance(child, dict):
                stack.append((indent, child))
    return header, gpus


def _section(gpu: dict, name: str) -> dict:
    value = gpu.get(name)
    return value if isinstance(value, dict) else {}


def parse_smi_q(text: str) -> SmiLog:
    """`nvidia-smi -q` (the text format, as recorded on real hosts) into an SmiLog."""
    header, sections = _q_tree(text)
    gpus = []
    for bus_id, gpu in sections:
        retired = _section(gpu, "Retired Pages")
        remapped = _section(gpu, "Remapped Rows")
        reset = _section(gpu, "GPU Reset Status")
        fabric = _section(gpu, "Fabric")
        gpus.append(GpuDetail(
            bus_id=bus_id,
            product_name=available(gpu.get("Product Name")),
            product_brand=available(gpu.get("Product Brand")),
            retired_single_bit=_int(retired.get("Single Bit ECC")),
            retired_double_bit=_int(retired.get("Double Bit ECC")),
            # Renamed from "Pending Page Blacklist" in newer drivers' wording; accept both.
            retirement_pending=_yes(retired.get("Pending Page Blacklist", retired.get("Pending Page Retirement"))),
            remapped_correctable=_int(remapped.get("Correctable Error")),
            remapped_uncorrectable=_int(remapped.get("Uncorrectable Error")),
            remap_pending=_yes(remapped.get("Pending")),
            remap_failure=_yes(remapped.get("Remapping Failure Occurred")),
            reset_required=_yes(reset.get("Reset Required")),
            fabric_state=available(fabric.get("State")),
            fabric_status=available(fabric.get("Status")),
        ))
    return SmiLog(
        driver_version=available(header.get("Driver Version")),
        cuda_version=available(header.get("CUDA Version")),
        attached_gpus=_int(header.get("Attached GPUs")),
        gpus=gpus,
    )


# ------------------------------------------------------------------------------- kernel and /proc
@dataclass(frozen=True)
class KernelModule:
    """The loaded NVIDIA kernel module, from /proc/driver/nvidia/version."""

    version: str
    flavour: str  # "open" (open GPU kernel modules) or "proprietary"


_NVRM_VERSION = re.compile(r"^NVRM version:.*?Kernel Module(?: for \S+)?\s+(?P<version>\d+(?:\.\d+)+)\s", re.M)


def parse_driver_version_file(text: str) -> KernelModule | None:
    """/proc/driver/nvidia/version: `NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.01  <date>`
    or, for the open modules, `NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  ...`."""
    match = _NVRM_VERSION.search(text)
    if not match:
        return None
    first_line = text.splitlines()[0]
    return KernelModule(match["version"], "open" if "Open Kernel Module" in first_line else "proprietary")


def parse_proc_modules(text: str) -> set[str]:
    """Names of the loaded modules in /proc/modules (`name size refcount deps state address [taints]`)."""
    return {line.split()[0] for line in text.splitlines() if line.strip()}


# ------------------------------------------------------------------------------------------ lspci
_PCI_LINE = re.compile(r"^(?P<slot>\S+) (?P<cls>.+?) \[(?P<code>[0-9a-f]{4})\]: (?P<desc>.*)$")


def parse_lspci_nvswitches(text: str) -> list[str]:
    """PCI slots of NVSwitches in `lspci -nn -d 10de:`: NVIDIA devices of class 0680 ("Bridge")."""
    slots = []
    for line in text.splitlines():
        match = _PCI_LINE.match(line.strip())
        if match and match["code"] == "0680" and "[10de:" in match["desc"].lower():
            slots.append(match["slot"])
    return slots


# --------------------------------------------------------------------- container toolkit and docker
_CTK_VERSION = re.compile(r"NVIDIA Container Toolkit CLI version (?P<version>\S+)")


def parse_ctk_version(text: str) -> str | None:
    """`nvidia-ctk --version`: `NVIDIA Container Toolkit CLI version 1.17.8` then `commit: <sha>`."""
    match = _CTK_VERSION.search(text)
    return match["version"] if match else None


def parse_cdi_devices(stdout: str) -> list[str]:
    """NVIDIA GPU devices from `nvidia-ctk cdi list` (one `nvidia.com/gpu=<id>` per line on stdout;
    the `Found N CDI devices` log line goes to stderr)."""
    return [line.strip() for line in stdout.splitlines() if line.strip().startswith("nvidia.com/gpu=")]


@dataclass(frozen=True)
class DockerInfo:
    """What the preflight reads from `docker info --format '{{json .}}'`."""

    server_version: str | None
    runtimes: dict[str, str]  # name -> binary path
    default_runtime: str | None
    cdi_spec_dirs: list[str]
    server_errors: list[str]


def parse_docker_info(text: str) -> DockerInfo:
    """`docker info --format '{{json .}}'`. A CLI that cannot reach the daemon still prints its part of
    the JSON, with the reason in ServerErrors."""
    data = json.loads(text)
    runtimes = {name: (spec or {}).get("path", "") for name, spec in (data.get("Runtimes") or {}).items()}
    return DockerInfo(
        server_version=data.get("ServerVersion") or None,
        runtimes=runtimes,
        default_runtime=data.get("DefaultRuntime") or None,
        cdi_spec_dirs=list(data.get("CDISpecDirs") or []),
        server_errors=list(data.get("ServerErrors") or []),
    )


def version_tuple(version: str) -> tuple[int, ...]:
    """`535.183.01` -> (535, 183, 1); raises ValueError for anything but dotted numbers."""
    if not re.fullmatch(r"\d+(\.\d+)*", version.strip()):
        raise ValueError(f"{version!r} is not a dotted version number")
    return tuple(int(part) for part in version.strip().split("."))
