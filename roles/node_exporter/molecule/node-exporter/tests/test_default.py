"""The node_exporter role's result: the exporter answers on the GPU "server"'s own address."""

CONTAINER = "llmobs-mol-node-exporter-node-exporter-node-exporter-1"


def test_container_runs_as_non_root_in_the_servers_network(host):
    container = host.docker(CONTAINER)
    assert container.is_running
    assert host.check_output(f"docker exec {CONTAINER} id -u") != "0"
    server = host.docker("llmobs-mol-node-exporter").id
    assert container.inspect()["HostConfig"]["NetworkMode"] == f"container:{server}"


def test_metrics_answer_on_the_servers_address(host):
    metrics = host.check_output("curl -sf http://llmobs-mol-node-exporter:9100/metrics")
    assert "node_filesystem_avail_bytes" in metrics
    assert 'node_exporter_build_info{' in metrics
