"""The lab's simulated GPU servers as Compose services (compose/services/gpu-*.yaml), one per simulated host
of the lab topology (compose/lab-topology.yml), with the engine servers the lab settings give it."""

from __future__ import annotations

from collections.abc import Mapping

from llmobs import templating
from llmobs.settings import Settings
from llmobs.sim.dcgm import PINNED_RELEASE
from llmobs.sim.topology import SimEngine, load_topology
from llmobs.sim.vllm_releases import CURRENT_RELEASE
from llmobs.workspace import Workspace

ENGINE_TITLES = {"vllm": "vLLM", "sglang": "SGLang", "trtllm": "TensorRT-LLM", "llamacpp": "llama.cpp"}


def _engines(host: str, sim_engines: Mapping[str, SimEngine], settings: Settings) -> list[dict[str, object]]:
    """Each engine server of the host: engine, model, port, GPUs, whether the simulator serves it (the lab's
    llama.cpp is a real server of its own), and its vLLM release where it is not the current one."""
    engines = []
    for endpoint in settings.all_endpoints:
        if endpoint.host != host:
            continue
        sim = sim_engines.get(endpoint.model)
        release = sim.vllm_version if sim is not None and endpoint.engine == "vllm" else CURRENT_RELEASE
        engines.append({"engine": ENGINE_TITLES[endpoint.engine], "model": endpoint.model, "port": endpoint.port,
                        "gpus": ("GPU " if len(endpoint.gpus) == 1 else "GPUs ") + ",".join(map(str, endpoint.gpus)),
                        "vllm": release if release != CURRENT_RELEASE else "",
                        "real": "" if sim is not None else f"compose/services/{endpoint.engine}.yaml"})
    return engines


def lab_gpu_services(settings: Settings, workspace: Workspace) -> dict[str, str]:
    """{compose/services/<host>.yaml: text} of every simulated GPU server: one container named after the
    host (`llmobs generate`). The releases a host imitates are named where they are not the kit's pins."""
    files = {}
    for host in load_topology(workspace.lab_topology).hosts:
        if (sim := host.sim) is None:
            continue
        files[f"compose/services/{host.name}.yaml"] = templating.render_file("lab/gpu-host.yaml.tmpl", {
            "host": host.name, "gpus": sim.gpus, "model": sim.gpu_model,
            "dcgm_exporter": sim.dcgm_exporter if sim.dcgm_exporter != PINNED_RELEASE else "",
            "engines": _engines(host.name, sim.engines, settings)})
    return files
