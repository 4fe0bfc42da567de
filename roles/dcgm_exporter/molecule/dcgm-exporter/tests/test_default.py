"""The dcgm_exporter role's result: the stand-in exporter (8 simulated H100s behind dcgm-exporter's flags)
answers on the GPU "server"'s own address with the kit's counters and the server's name as hostname."""

import re

CONTAINER = "llmobs-mol-dcgm-exporter-dcgm-exporter-dcgm-exporter-1"
COUNTERS = "/tmp/llmobs-mol-dcgm-exporter/llmobs-mol-dcgm-exporter/dcgm-exporter/config/counters.csv"


def metrics(host):
    return host.check_output("curl -sf http://llmobs-mol-dcgm-exporter:9400/metrics")


def test_container_runs_with_the_profiling_capability(host):
    container = host.docker(CONTAINER)
    assert container.is_running
    config = container.inspect()["HostConfig"]
    assert config["CapAdd"] in (["SYS_ADMIN"], ["CAP_SYS_ADMIN"])
    assert config["NetworkMode"] == f"container:{host.docker('llmobs-mol-dcgm-exporter').id}"


def test_hostname_label_is_the_servers_name(host):
    # `hostname` from dcgm-exporter 4.6.0-4.8.3 on (the pin), `Hostname` before: a site's older mirror.
    hostnames = set(re.findall(r'\b[Hh]ostname="([^"]*)"', metrics(host)))
    assert hostnames == {"llmobs-mol-dcgm-exporter"}


# In the CSV but not series on an H100: the driver version is a label of every series, and H100s remap
# rows instead of retiring pages.
NOT_SERIES_ON_H100 = {"DCGM_FI_DRIVER_VERSION", "DCGM_FI_DEV_RETIRED_SBE", "DCGM_FI_DEV_RETIRED_DBE",
                      "DCGM_FI_DEV_RETIRED_PENDING"}


def test_every_counter_of_the_kits_csv_is_exported(host):
    fields = {line.split(",")[0].strip() for line in host.file(COUNTERS).content_string.splitlines()
              if line.strip() and not line.startswith("#")}
    exported = metrics(host)
    # Fields the kit adds to dcgm-exporter's defaults for its alerts: the exporter read the kit's CSV.
    assert {"DCGM_FI_DEV_ENFORCED_POWER_LIMIT", "DCGM_FI_DEV_ROW_REMAP_FAILURE", "DCGM_EXP_XID_ERRORS_COUNT"} <= fields
    missing = {f for f in fields if f"{f}{{" not in exported}
    assert missing <= NOT_SERIES_ON_H100, missing - NOT_SERIES_ON_H100
    assert 'DCGM_FI_DRIVER_VERSION="' in exported


def test_eight_gpus_are_reported(host):
    gpus = set(re.findall(r'DCGM_FI_DEV_GPU_TEMP\{gpu="(\d+)"', metrics(host)))
    assert gpus == {str(i) for i in range(8)}
