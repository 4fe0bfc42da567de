"""GPU host preflight: turn the raw probe of a host into pass/warn/fail verdicts with a fix for each.

The Ansible role `gpu_preflight` runs a probe module on the host (it only collects tool output) and
hands the result to the filter `llmobs_gpu_preflight_report`, which calls `judge()` here; the role's timer
runs the same `judge()` on the host itself (llmobs.preflight.host). So this module and the parsers need
nothing but Python's standard library: the settings come validated, with the catalog's GPU models, in the
plan (llmobs.preflight.variables.plan, on the controller), before anything runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from llmobs.preflight import parsers
from llmobs.preflight.parsers import DockerInfo, GpuRow, KernelModule, SmiFailure, SmiLog

CheckName = Literal[
    "nvidia_smi", "kernel_module", "driver_version", "gpu_count", "gpu_model", "persistence_mode",
    "ecc", "memory_health", "container_toolkit", "fabric_manager",
]
CHECKS: tuple[str, ...] = CheckName.__args__  # type: ignore[attr-defined]
Action = Literal["fail", "warn", "skip"]
Verdict = Literal["PASS", "WARN", "FAIL", "SKIP"]

# Product brands of data-centre parts, for GPUs the catalog does not name (`Product Brand` in -q).
_DATACENTER_BRANDS = {"NVIDIA", "Tesla"}


@dataclass(frozen=True)
class GpuModelInfo:
    """What the checks need of a catalog GPU model (src/llmobs/catalog/gpus.yaml), carried by the plan."""

    model_name: str
    datacenter: bool
    nvlink: bool


@dataclass(frozen=True)
class Variables:
    """The role's variables, already validated by the plan (llmobs.preflight.variables)."""

    gpu_preflight_min_driver_version: str
    gpu_preflight_expected_gpu_count: int
    gpu_preflight_expected_model: str
    gpu_preflight_max_retired_pages: int
    gpu_preflight_nvswitch: str
    gpu_preflight_on_failure: str
    gpu_preflight_check_actions: dict[str, str]
    gpu_models: dict[str, GpuModelInfo] = field(default_factory=dict)

    def action(self, check: str) -> str:
        return self.gpu_preflight_check_actions.get(check, self.gpu_preflight_on_failure)

    @classmethod
    def from_plan(cls, plan: dict[str, Any]) -> Variables:
        models = {key: GpuModelInfo(**info) for key, info in plan["gpu_models"].items()}
        return cls(**plan["settings"], gpu_models=models)


# ------------------------------------------------------------------------------------- the probe
@dataclass(frozen=True)
class CommandResult:
    """One command as the probe module ran it; `found` is false when the executable is absent."""

    found: bool
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""


@dataclass(frozen=True)
class Probe:
    """Raw state of a host, as the `gpu_preflight_probe` module (or llmobs.preflight.probe) returns it."""

    query_fields: list[str]
    nvidia_smi_query: CommandResult
    nvidia_smi_q: CommandResult
    driver_version_file: str | None
    proc_modules: str | None
    lspci: CommandResult
    nvidia_ctk_version: CommandResult
    nvidia_ctk_cdi_list: CommandResult
    docker_info: CommandResult
    fabricmanager_pids: list[int]

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Probe:
        """The probe from its JSON form; a missing or unknown key is an error (TypeError)."""
        commands = {f.name for f in fields(cls) if f.type == "CommandResult"}
        return cls(**{key: CommandResult(**value) if key in commands else value for key, value in raw.items()})


@dataclass
class _Host:
    """The probe, parsed once."""

    smi_problem: tuple[str, str] | None  # (what is wrong, how to fix it)
    rows: list[GpuRow]
    log: SmiLog | None
    kernel: KernelModule | None
    modules: set[str] | None
    nvswitches: list[str] | None  # None: lspci is not installed
    probe: Probe

    @property
    def smi_ok(self) -> bool:
        return self.smi_problem is None


def _parse(probe: Probe) -> _Host:
    smi_problem: tuple[str, str] | None = None
    rows: list[GpuRow] = []
    log: SmiLog | None = None
    query, full = probe.nvidia_smi_query, probe.nvidia_smi_q
    if not query.found:
        smi_problem = ("nvidia-smi is not installed",
                       "install the NVIDIA driver's utilities (nvidia-utils-<branch>), or set "
                       "gpu_preflight_nvidia_smi_path to where nvidia-smi is")
    else:
        failure: SmiFailure | None = parsers.smi_failure(query.rc or 0, query.stdout, query.stderr)
        if failure is None:
            failure = parsers.smi_failure(full.rc or 0, full.stdout, full.stderr)
        if failure is not None:
            smi_problem = (f"{failure.cause}; nvidia-smi said: {failure.message}", failure.fix)
        else:
            try:
                rows = parsers.parse_query_gpu(query.stdout, probe.query_fields)
                log = parsers.parse_smi_q(full.stdout)
            except ValueError as error:
                smi_problem = (f"nvidia-smi printed something unexpected: {error}",
                               "report the nvidia-smi version and its output to the kit's maintainers")
            else:
                if not rows:
                    smi_problem = ("nvidia-smi lists no GPU", "check `lspci -d 10de:` and `dmesg | grep -i nvrm`")
    kernel = parsers.parse_driver_version_file(probe.driver_version_file) if probe.driver_version_file else None
    modules = parsers.parse_proc_modules(probe.proc_modules) if probe.proc_modules is not None else None
    nvswitches = parsers.parse_lspci_nvswitches(probe.lspci.stdout) if probe.lspci.found else None
    return _Host(smi_problem, rows, log, kernel, modules, nvswitches, probe)


# ------------------------------------------------------------------------------------- the checks
@dataclass(frozen=True)
class Finding:
    state: Literal["ok", "problem", "warning", "not_applicable"]
    detail: str
    fix: str = ""


_NEEDS_SMI = Finding("not_applicable", "nvidia-smi did not answer (see nvidia_smi)")


def _gpus(rows: list[GpuRow]) -> str:
    names = sorted({row.name for row in rows})
    return ", ".join(f"{sum(r.name == name for r in rows)} x {name}" for name in names)


def _indexes(rows: list[GpuRow]) -> str:
    return ", ".join(str(row.index) for row in rows)


def check_nvidia_smi(host: _Host, variables: Variables) -> Finding:
    if host.smi_problem:
        return Finding("problem", *host.smi_problem)
    cuda = host.log.cuda_version if host.log else None
    return Finding("ok", f"answers for {_gpus(host.rows)} (driver {host.rows[0].driver_version}"
                         f"{f', CUDA {cuda}' if cuda else ''})")


def check_kernel_module(host: _Host, variables: Variables) -> Finding:
    if host.modules is None:
        return Finding("warning", "cannot read /proc/modules on the host (set gpu_preflight_procfs?)",
                       "point gpu_preflight_procfs at the host's procfs")
    if "nvidia" not in host.modules:
        return Finding("problem", "the nvidia kernel module is not loaded",
                       "run `modprobe nvidia` and read `dmesg | grep -i nvrm`; after a kernel update rebuild "
                       "the module for `uname -r` (`dkms autoinstall`) and reboot")
    if host.kernel is None:
        return Finding("problem", "nvidia is in /proc/modules but /proc/driver/nvidia/version is missing",
                       "reload the driver (reboot) and read `dmesg | grep -i nvrm`")
    loaded = f"nvidia {host.kernel.version} loaded ({host.kernel.flavour} kernel modules)"
    if host.rows and host.rows[0].driver_version != host.kernel.version:
        return Finding("problem", f"{loaded}, but the user-space driver is {host.rows[0].driver_version}",
                       "the driver was upgraded while the old module stayed loaded: drain the node and reboot")
    extra = sorted(m for m in host.modules if m.startswith("nvidia_"))
    return Finding("ok", loaded + (f"; also {', '.join(extra)}" if extra else ""))


def check_driver_version(host: _Host, variables: Variables) -> Finding:
    if not host.smi_ok:
        return _NEEDS_SMI
    minimum = variables.gpu_preflight_min_driver_version
    version = host.rows[0].driver_version
    try:
        too_old = parsers.version_tuple(version) < parsers.version_tuple(minimum)
    except ValueError:
        return Finding("problem", f"cannot read the driver version {version!r}",
                       "report the nvidia-smi output to the kit's maintainers")
    if too_old:
        return Finding("problem", f"driver {version} is older than gpu_preflight_min_driver_version {minimum}",
                       f"install a driver of branch {minimum.split('.')[0]} or newer (data-centre driver, "
                       "with the matching nvidia-fabricmanager on NVSwitch systems) and reboot")
    return Finding("ok", f"driver {version} >= {minimum}")


def check_gpu_count(host: _Host, variables: Variables) -> Finding:
    expected = variables.gpu_preflight_expected_gpu_count
    if not host.smi_ok:
        return _NEEDS_SMI
    found = len(host.rows)
    if not expected:
        return Finding("not_applicable", f"{found} GPUs; gpu_preflight_expected_gpu_count is not set")
    if found != expected:
        return Finding("problem", f"{found} GPUs visible, {expected} expected",
                       "a missing GPU has usually fallen off the bus or failed to initialise: look for Xid 79 "
                       "in `dmesg`, check `lspci -d 10de:`, power-cycle; fix the inventory if the count changed")
    return Finding("ok", f"{found} GPUs, as expected")


def check_gpu_model(host: _Host, variables: Variables) -> Finding:
    model = variables.gpu_preflight_expected_model
    if not host.smi_ok:
        return _NEEDS_SMI
    if not model:
        return Finding("not_applicable", f"{_gpus(host.rows)}; gpu_preflight_expected_model is not set")
    name = variables.gpu_models[model].model_name
    others = [row for row in host.rows if row.name != name]
    if others:
        return Finding("problem", f"GPUs {_indexes(others)} are {_gpus(others)}, not {name} ({model})",
                       "set gpu_preflight_expected_model to this host's model, or move the host to the right group")
    return Finding("ok", f"all {len(host.rows)} are {name} ({model})")


def check_persistence_mode(host: _Host, variables: Variables) -> Finding:
    if not host.smi_ok:
        return _NEEDS_SMI
    off = [row for row in host.rows if row.persistence_mode != "Enabled"]
    if off:
        return Finding("problem", f"persistence mode is off on GPUs {_indexes(off)}: the driver is torn down "
                                  "between jobs and monitoring sees gaps",
                       "enable the nvidia-persistenced service (`systemctl enable --now nvidia-persistenced`); "
                       "`nvidia-smi -pm 1` lasts only until the next reboot")
    return Finding("ok", f"enabled on all {len(host.rows)} GPUs")


def _is_datacenter(row: GpuRow, brand: str | None, variables: Variables) -> bool:
    for model in variables.gpu_models.values():
        if model.model_name == row.name:
            return model.datacenter
    return brand in _DATACENTER_BRANDS


def check_ecc(host: _Host, variables: Variables) -> Finding:
    if not host.smi_ok:
        return _NEEDS_SMI
    brands = {gpu.bus_id: gpu.product_brand for gpu in host.log.gpus} if host.log else {}
    datacenter = [row for row in host.rows if _is_datacenter(row, brands.get(row.bus_id), variables)]
    if not datacenter:
        return Finding("not_applicable", f"no data-centre GPU ({_gpus(host.rows)}): ECC is not expected")
    off = [row for row in datacenter if row.ecc_mode != "Enabled"]
    if off:
        return Finding("problem", f"ECC is {off[0].ecc_mode or 'not reported'} on data-centre GPUs {_indexes(off)}",
                       "enable it with `nvidia-smi -e 1` (all GPUs) and reboot; silent memory corruption is "
                       "otherwise possible")
    return Finding("ok", f"enabled on all {len(datacenter)} data-centre GPUs")


def check_memory_health(host: _Host, variables: Variables) -> Finding:
    if not host.smi_ok or host.log is None:
        return _NEEDS_SMI
    limit = variables.gpu_preflight_max_retired_pages
    problems: list[str] = []
    fixes: list[str] = []
    for gpu in host.log.gpus:
        if gpu.remap_failure:
            problems.append(f"{gpu.bus_id}: row remapping failed")
            fixes.append("a row-remapping failure meets NVIDIA's RMA criteria: drain the node, run the field "
                         "diagnostic and open an RMA")
        if gpu.remap_pending or gpu.reset_required:
            problems.append(f"{gpu.bus_id}: row remap pending ({gpu.remapped_uncorrectable or 0} uncorrectable rows)")
            fixes.append("a pending remap takes effect on GPU reset: drain the node, then `nvidia-smi -r` or reboot")
        if gpu.retirement_pending:
            problems.append(f"{gpu.bus_id}: page retirement pending")
            fixes.append("retired pages take effect when the driver reloads: drain the node and reboot")
        retired = (gpu.retired_single_bit or 0) + (gpu.retired_double_bit or 0)
        if retired > limit:
            problems.append(f"{gpu.bus_id}: {retired} retired pages > gpu_preflight_max_retired_pages {limit}")
            fixes.append("run `dcgmi diag -r 3` on the GPU and replace it if it keeps retiring pages")
    if problems:
        return Finding("problem", "; ".join(problems), "; ".join(dict.fromkeys(fixes)))
    return Finding("ok", f"no pending or failed row remaps, retired pages <= {limit} on all "
                         f"{len(host.log.gpus)} GPUs")


def _docker(host: _Host) -> tuple[DockerInfo | None, str]:
    result = host.probe.docker_info
    if not result.found:
        return None, "docker is not installed"
    try:
        info = parsers.parse_docker_info(result.stdout)
    except ValueError:
        info = None
    if info is None or info.server_errors or result.rc:
        said = "; ".join(info.server_errors) if info and info.server_errors else (result.stderr or result.stdout)
        return None, f"the Docker daemon does not answer: {said.strip()}"
    return info, ""


def check_container_toolkit(host: _Host, variables: Variables) -> Finding:
    ctk = host.probe.nvidia_ctk_version
    version = parsers.parse_ctk_version(ctk.stdout) if ctk.found and ctk.rc == 0 else None
    if version is None:
        return Finding("problem", "the NVIDIA Container Toolkit is not installed (no working nvidia-ctk)",
                       "install the nvidia-container-toolkit package (NVIDIA's apt repository or your mirror)")
    docker, docker_problem = _docker(host)
    if docker is None:
        return Finding("problem", f"toolkit {version}, but {docker_problem}",
                       "run the docker_host role (it installs and starts Docker and registers the runtime)")
    if "nvidia" in docker.runtimes:
        return Finding("ok", f"toolkit {version}; Docker {docker.server_version} runtime nvidia -> "
                             f"{docker.runtimes['nvidia']}")
    cdi = host.probe.nvidia_ctk_cdi_list
    devices = parsers.parse_cdi_devices(cdi.stdout) if cdi.found and cdi.rc == 0 else []
    if devices and docker.cdi_spec_dirs:
        return Finding("ok", f"toolkit {version}; CDI lists {len(devices)} nvidia.com/gpu devices and Docker "
                             f"{docker.server_version} reads CDI specs from {', '.join(docker.cdi_spec_dirs)}")
    if devices:
        return Finding("problem", f"toolkit {version}; CDI lists {len(devices)} GPU devices but Docker "
                                  f"{docker.server_version} has CDI turned off and no nvidia runtime",
                       "set docker_host_nvidia_runtime: true (docker_host role), or enable Docker's cdi feature")
    return Finding("problem", f"toolkit {version} is installed but Docker has no nvidia runtime and no CDI spec "
                              "lists nvidia.com/gpu devices",
                   "set docker_host_nvidia_runtime: true (docker_host role), or run `nvidia-ctk runtime configure "
                   "--runtime=docker` and restart Docker; for CDI: `nvidia-ctk cdi generate "
                   "--output=/etc/cdi/nvidia.yaml`")


def _fabric_reported(host: _Host) -> list:
    gpus = host.log.gpus if host.log else []
    return [gpu for gpu in gpus if gpu.fabric_state not in (None, "Not Supported")]


def check_fabric_manager(host: _Host, variables: Variables) -> Finding:
    fabric = _fabric_reported(host)
    mode = variables.gpu_preflight_nvswitch
    if mode == "absent":
        return Finding("not_applicable", "gpu_preflight_nvswitch is absent")
    if mode == "present":
        where = "gpu_preflight_nvswitch says this host has NVSwitches"
    elif host.nvswitches:
        where = f"{len(host.nvswitches)} NVSwitches on the PCI bus"
    elif fabric:
        where = f"{len(fabric)} GPUs report an NVLink fabric state"
    elif host.nvswitches is None and any(
            model.nvlink and any(row.name == model.model_name for row in host.rows)
            for model in variables.gpu_models.values()):
        return Finding("warning", "cannot tell whether this SXM system has NVSwitches: lspci is not installed",
                       "install pciutils, or set gpu_preflight_nvswitch to present or absent")
    else:
        return Finding("not_applicable", "no NVSwitch: the fabric manager is not needed")
    pids = host.probe.fabricmanager_pids
    if not pids:
        return Finding("problem", f"{where}, but nv-fabricmanager is not running: CUDA fails with error 802 "
                                  "(system not yet initialized) until it is",
                       "install nvidia-fabricmanager of exactly the driver's version and "
                       "`systemctl enable --now nvidia-fabricmanager`; read /var/log/fabricmanager.log")
    unfinished = [gpu for gpu in fabric if (gpu.fabric_state, gpu.fabric_status) != ("Completed", "Success")]
    if unfinished:
        states = sorted({f"{gpu.fabric_state}/{gpu.fabric_status or 'N/A'}" for gpu in unfinished})
        return Finding("problem", f"{where}; nv-fabricmanager runs but {len(unfinished)} GPUs have not joined "
                                  f"the fabric ({', '.join(states)})",
                       "read /var/log/fabricmanager.log; its version must equal the driver's; restart it")
    joined = (f"; fabric Completed/Success on all {len(fabric)} GPUs" if fabric
              else "; these GPUs do not report a fabric state")
    return Finding("ok", f"{where}; nv-fabricmanager running (pid {', '.join(map(str, pids))}){joined}")


_CHECK_FUNCTIONS = {
    "nvidia_smi": check_nvidia_smi,
    "kernel_module": check_kernel_module,
    "driver_version": check_driver_version,
    "gpu_count": check_gpu_count,
    "gpu_model": check_gpu_model,
    "persistence_mode": check_persistence_mode,
    "ecc": check_ecc,
    "memory_health": check_memory_health,
    "container_toolkit": check_container_toolkit,
    "fabric_manager": check_fabric_manager,
}
assert tuple(_CHECK_FUNCTIONS) == CHECKS, "every check name needs its function, in order"


# ------------------------------------------------------------------------------------- the report
@dataclass(frozen=True)
class CheckResult:
    name: str
    verdict: Verdict
    detail: str
    fix: str


def _verdict(finding: Finding, action: Action) -> Verdict:
    if finding.state == "ok":
        return "PASS"
    if finding.state == "not_applicable":
        return "SKIP"
    if finding.state == "warning":
        return "WARN"
    return "FAIL" if action == "fail" else "WARN"


def judge(probe: dict[str, Any] | Probe, plan: dict[str, Any], host: str = "") -> dict[str, Any]:
    """The report of one host: a verdict per check, the summary table, and the checks that stop the play.
    `plan` is what llmobs.preflight.variables.plan returned (validated settings, the catalog's GPU models)."""
    variables = Variables.from_plan(plan)
    probe = probe if isinstance(probe, Probe) else Probe.from_dict(probe)
    parsed = _parse(probe)
    results = []
    for name, function in _CHECK_FUNCTIONS.items():
        action = variables.action(name)
        if action == "skip":
            results.append(CheckResult(name, "SKIP", "turned off by gpu_preflight_check_actions", ""))
            continue
        finding = function(parsed, variables)
        results.append(CheckResult(name, _verdict(finding, action), finding.detail, finding.fix))
    gpus = _gpus(parsed.rows) if parsed.rows else "no GPU answered"
    driver = parsed.rows[0].driver_version if parsed.rows else "unknown"
    return {
        "host": host,
        "summary": f"GPU preflight of {host or 'this host'}: {gpus}; driver {driver}",
        "checks": [asdict(result) for result in results],
        "verdicts": {result.name: result.verdict for result in results},
        "failed": [result.name for result in results if result.verdict == "FAIL"],
        "warned": [result.name for result in results if result.verdict == "WARN"],
        "gpu_count": len(parsed.rows),
        "nvswitch_count": len(parsed.nvswitches or []),
        "facts": _facts(parsed),
        "lines": _table(f"GPU preflight of {host or 'this host'}: {gpus}; driver {driver}", results),
    }


def _facts(host: _Host) -> dict[str, Any]:
    """What the host-health metrics (llmobs.preflight.textfile) count, beside the verdicts."""
    gpus = host.log.gpus if host.log else []
    return {
        "driver_version": host.rows[0].driver_version if host.rows else "",
        "persistence_mode_off_gpus": sum(row.persistence_mode != "Enabled" for row in host.rows),
        "row_remap_pending_gpus": sum(bool(gpu.remap_pending or gpu.reset_required) for gpu in gpus),
        "fabric_manager_running": bool(host.probe.fabricmanager_pids),
    }


def _table(title: str, results: list[CheckResult]) -> list[str]:
    width = max(len(result.name) for result in results)
    lines = [title, f"{'CHECK':<{width}}  VERDICT  DETAIL"]
    for result in results:
        lines.append(f"{result.name:<{width}}  {result.verdict:<7}  {result.detail}")
        if result.verdict in ("FAIL", "WARN") and result.fix:
            lines.append(f"{'':<{width}}  {'':<7}  fix: {result.fix}")
    return lines
