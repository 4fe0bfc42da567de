"""The lab's simulated fleet (compose/lab-topology.yml): hosts, their exporters and simulated hardware.

The vLLM servers themselves (model, port, GPUs) are the settings' `vllm_endpoints` (compose/lab-settings.yml),
the one list the rules, the scrape targets and the simulators all read; the topology adds what only the
lab needs: each host's exporters (scrape input, llmobs.scrape.Host), its GPU model and count, and the
traffic and size of each simulated engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from llmobs import catalog as catalog_mod
from llmobs.errors import ConfigError, ConfigErrors, from_validation_error
from llmobs.scrape import Host, ScrapeOptions
from llmobs.settings import Settings
from llmobs.sim import dcgm
from llmobs.sim.vllm import EngineConfig
from llmobs.sim.vllm_releases import CURRENT_RELEASE, RELEASES
from llmobs.types import Strict


class SimEngine(Strict):
    """Size and traffic of a simulated engine (the defaults suit an 8B model)."""

    params_b: float = Field(8.0, gt=0, description="billions of parameters")
    rps: float = Field(2.0, ge=0, description="mean request rate")
    prompt_tokens: int = Field(1500, gt=0)
    output_tokens: int = Field(250, gt=0)
    max_tokens: int = Field(1024, gt=0)
    max_num_seqs: int = Field(256, gt=0)
    max_model_len: int = Field(32768, gt=1)
    period_s: float = Field(900.0, gt=0, description="period of the request-rate swing")
    vllm_version: Literal[tuple(RELEASES)] = Field(  # type: ignore[valid-type]
        CURRENT_RELEASE, description="the vLLM release whose /metrics it serves; 0.10.2 still has the old names "
        "vllm:gpu_cache_usage_perc and vllm:time_per_output_token_seconds")
    max_num_queued_reqs: int | None = Field(None, gt=0, description="vLLM's --max-num-queued-reqs: beyond it "
                                            "requests are refused with 503 at admission (0.33 only)")


class SimHardware(Strict):
    gpu_model: str = Field(description="a key of src/llmobs/catalog/gpus.yaml")
    gpus: int = Field(ge=0, le=16)
    engines: dict[str, SimEngine] = Field(default_factory=dict, description="by served model name")
    dcgm_exporter: str = Field(dcgm.PINNED_RELEASE, description="the dcgm-exporter release the host's exporter "
                               "imitates (up to 4.5.3-4.8.2 its hostname label is spelled Hostname)")

    @model_validator(mode="after")
    def _known_model(self) -> SimHardware:
        models = catalog_mod.load().gpu_models
        if self.gpu_model not in models:
            raise ValueError(f"unknown GPU model {self.gpu_model!r}; use one of {', '.join(models)}")
        return self

    @field_validator("dcgm_exporter")
    @classmethod
    def _simulated_release(cls, release: str) -> str:
        if release not in dcgm.RELEASES:
            raise ValueError(f"{release!r} is not a simulated dcgm-exporter release; "
                             f"use one of {', '.join(dcgm.RELEASES)}")
        return release


class LabHost(Host):
    sim: SimHardware | None = None


class LabTopology(Strict):
    prometheus: ScrapeOptions = Field(default_factory=ScrapeOptions)
    hosts: tuple[LabHost, ...] = Field(min_length=1)

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise ConfigError("--host", f"{name!r} is not a host of the lab topology",
                          f"use one of {', '.join(h.name for h in self.hosts)}")

    def scrape_hosts(self) -> list[dict[str, Any]]:
        """The hosts as llmobs.scrape takes them (without the simulator's part)."""
        return [host.model_dump(exclude={"sim"}, exclude_none=True) for host in self.hosts]

    def simulated(self) -> list[LabHost]:
        return [host for host in self.hosts if host.sim is not None]


def load_topology(path: Path) -> LabTopology:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(str(path), f"cannot read the lab topology: {error}", "fix the file or the path") from None
    try:
        return LabTopology.model_validate(data)
    except ValidationError as error:
        raise from_validation_error(error, source=str(path)) from None


def engine_configs(host: LabHost, settings: Settings) -> tuple[EngineConfig, ...]:
    """The host's engines: endpoints from the settings, size and traffic from the topology."""
    if host.sim is None:
        return ()
    endpoints = [e for e in settings.vllm_endpoints if e.host == host.name]
    errors = [ConfigError(f"hosts.{host.name}.sim.engines.{model}", "has no vLLM endpoint in the settings",
                          "add it to vllm_endpoints (compose/lab-settings.yml) or remove it here")
              for model in host.sim.engines if model not in {e.model for e in endpoints}]
    for endpoint in endpoints:
        for gpu in endpoint.gpus:
            if gpu >= host.sim.gpus:
                errors.append(ConfigError(f"vllm_endpoints.{host.name}.{endpoint.model}.gpus",
                                          f"GPU {gpu} does not exist on {host.name} ({host.sim.gpus} GPUs)",
                                          f"use indexes below {host.sim.gpus}"))
    if errors:
        raise ConfigErrors(errors)
    configs = []
    for endpoint in endpoints:
        sim = host.sim.engines.get(endpoint.model, SimEngine())
        configs.append(EngineConfig(model=endpoint.model, port=endpoint.port, gpus=tuple(endpoint.gpus),
                                    **sim.model_dump()))
    return tuple(configs)
