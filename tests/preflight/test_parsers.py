"""The parsers against recorded real outputs (tests/fixtures/nvidia-smi, sources in its README)."""

from __future__ import annotations

import pytest
from gpu_recordings import FIXTURES, HOSTS

from llmobs.preflight import parsers


def read(*parts: str) -> str:
    return FIXTURES.joinpath(*parts).read_text()


def test_h100_q_reads_every_gpu_section_with_fabric_and_remap_state() -> None:
    log = parsers.parse_smi_q(read("h100-sxm-hgx", "nvidia-smi", "q.txt"))
    assert (log.driver_version, log.cuda_version, log.attached_gpus) == ("535.183.01", "12.2", 8)
    assert [gpu.bus_id for gpu in log.gpus][:2] == ["00000000:53:00.0", "00000000:64:00.0"]
    assert len(log.gpus) == 8
    first = log.gpus[0]
    assert (first.product_name, first.product_brand) == ("NVIDIA H100 80GB HBM3", "NVIDIA")
    assert (first.fabric_state, first.fabric_status) == ("Completed", "Success")
    assert (first.remapped_correctable, first.remapped_uncorrectable) == (0, 0)
    assert (first.remap_pending, first.remap_failure, first.reset_required) == (False, False, False)
    # Hopper reports row remapping, not page retirement: those fields read N/A.
    assert (first.retired_single_bit, first.retired_double_bit, first.retirement_pending) == (None, None, None)


def test_ampere_and_geforce_report_no_fabric_state() -> None:
    for host in ("a100-sxm4-hgx", "rtx4090-x8"):
        log = parsers.parse_smi_q(read(host, "nvidia-smi", "q.txt"))
        assert len(log.gpus) == 8
        assert {(gpu.fabric_state, gpu.fabric_status) for gpu in log.gpus} == {(None, None)}
    rtx = parsers.parse_smi_q(read("rtx4090-x8", "nvidia-smi", "q.txt"))
    assert {gpu.product_brand for gpu in rtx.gpus} == {"GeForce"}


def test_a10_with_a_pending_row_remap_is_read_as_pending() -> None:
    log = parsers.parse_smi_q(read("extra", "a10-remap-pending-q.txt"))
    (gpu,) = log.gpus
    assert (gpu.remapped_uncorrectable, gpu.remap_pending, gpu.remap_failure) == (4, True, False)


@pytest.mark.parametrize("host", [h for h in HOSTS if h != "driver-not-loaded"])
def test_query_gpu_rows_agree_with_the_q_recording(host: str) -> None:
    """The CSV fixtures were rendered from the -q recordings: every value must match its -q field."""
    text = read(host, "nvidia-smi", "query-gpu.csv")
    header, body = text.split("\n", 1)
    assert tuple(header.split(", ")) == parsers.QUERY_FIELDS
    rows = parsers.parse_query_gpu(body)
    q_text = read(host, "nvidia-smi", "q.txt")
    log = parsers.parse_smi_q(q_text)
    assert [row.bus_id for row in rows] == [gpu.bus_id for gpu in log.gpus]
    assert [row.index for row in rows] == list(range(8))
    for row, gpu in zip(rows, log.gpus, strict=True):
        assert row.name == gpu.product_name
        assert row.driver_version == log.driver_version
        assert f"GPU UUID                              : {row.uuid}" in q_text
    persistence = [line.split(":")[1].strip() for line in q_text.splitlines() if "Persistence Mode" in line]
    assert [row.persistence_mode for row in rows] == persistence


def test_query_gpu_maps_not_available_values_to_none() -> None:
    (row,) = parsers.parse_query_gpu("0, 00000000:0C:00.0, GPU-df6e, NVIDIA GeForce RTX 2080 SUPER, 471.11, "
                                     "Enabled, [N/A]\n")
    assert (row.persistence_mode, row.ecc_mode) == ("Enabled", None)


def test_query_gpu_rejects_rows_that_do_not_fit_the_fields() -> None:
    with pytest.raises(ValueError, match="7 fields"):
        parsers.parse_query_gpu("0, NVIDIA H100 80GB HBM3\n")
    with pytest.raises(ValueError, match="lacks the fields"):
        parsers.parse_query_gpu("", fields=("index", "name"))


def test_smi_failures_are_recognised_with_their_fix() -> None:
    failure = parsers.smi_failure(9, read("driver-not-loaded", "nvidia-smi", "failure.txt"), "")
    assert failure is not None
    assert failure.cause == "the NVIDIA kernel module is not loaded"
    assert "dkms" in failure.fix
    # nvidia-smi after a driver upgrade without reboot (anderskm/gputil#55 shows this text, exit 18).
    mismatch = parsers.smi_failure(18, "Failed to initialize NVML: Driver/library version mismatch\n"
                                       "NVML library version: 535.161\n", "")
    assert mismatch is not None and "reboot" in mismatch.fix
    unknown = parsers.smi_failure(255, "", "")
    assert unknown is not None and "exit status 255" in unknown.message
    assert parsers.smi_failure(0, "anything", "") is None


def test_driver_version_file_proprietary_and_open_modules() -> None:
    module = parsers.parse_driver_version_file(read("h100-sxm-hgx", "proc", "driver", "nvidia", "version"))
    assert module == parsers.KernelModule("535.183.01", "proprietary")
    open_module = parsers.parse_driver_version_file(
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build  "
        "(dvs-builder@U16-I3-B03-4-3)  Tue Mar  5 22:16:25 UTC 2024\n"
        "GCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n")
    assert open_module == parsers.KernelModule("550.54.15", "open")
    assert parsers.parse_driver_version_file("garbage") is None


def test_proc_modules_names() -> None:
    assert {"nvidia", "nvidia_uvm"} <= parsers.parse_proc_modules(read("h100-sxm-hgx", "proc", "modules"))
    assert "nvidia" not in parsers.parse_proc_modules(read("driver-not-loaded", "proc", "modules"))


def test_lspci_finds_nvswitches_of_both_generations_and_none_on_geforce() -> None:
    assert parsers.parse_lspci_nvswitches(read("h100-sxm-hgx", "lspci.txt")) == [
        "0000:07:00.0", "0000:08:00.0", "0000:09:00.0", "0000:0a:00.0"]
    assert len(parsers.parse_lspci_nvswitches(read("a100-sxm4-hgx", "lspci.txt"))) == 6
    assert parsers.parse_lspci_nvswitches(read("rtx4090-x8", "lspci.txt")) == []


def test_container_toolkit_outputs() -> None:
    assert parsers.parse_ctk_version(read("h100-sxm-hgx", "nvidia-ctk", "version.txt")) == "1.17.8"
    devices = parsers.parse_cdi_devices(read("a100-sxm4-hgx", "nvidia-ctk", "cdi-list.stdout"))
    assert len(devices) == 17 and "nvidia.com/gpu=all" in devices
    assert parsers.parse_cdi_devices("") == []


def test_docker_info_of_a_real_daemon_and_of_a_cli_without_daemon() -> None:
    info = parsers.parse_docker_info(read("extra", "docker-info-debian-20.10.json"))
    assert info.server_version == "20.10.24+dfsg1" and info.runtimes["runc"] == "runc"
    assert "nvidia" not in info.runtimes and info.cdi_spec_dirs == []
    gpu_host = parsers.parse_docker_info(read("h100-sxm-hgx", "docker-info.json"))
    assert gpu_host.runtimes["nvidia"] == "nvidia-container-runtime"
    down = parsers.parse_docker_info(read("extra", "docker-info-daemon-down.json"))
    assert down.server_version is None and down.runtimes == {}


def test_version_tuple() -> None:
    assert parsers.version_tuple("535.183.01") == (535, 183, 1)
    assert parsers.version_tuple("535") < parsers.version_tuple("535.54.03")
    with pytest.raises(ValueError):
        parsers.version_tuple("535.x")
