"""The inference servers a site declares: each endpoint's engine, model, port and GPUs (settings
`endpoints` and `vllm_endpoints`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from llmobs.conventions import ENGINES, PORTS, Engine, instance
from llmobs.types import Address, LabelValue, Port, Strict


class Endpoint(Strict):
    """One inference server of a host and the GPUs (indexes) it runs on: an entry of a host's `endpoints`
    (or `vllm_endpoints`, whose engine is vLLM)."""

    engine: Engine = Field("vllm", description=f"the server: one of {', '.join(ENGINES)}")
    model: str = Field(min_length=1, description="served model name (the model_name label of its series)")
    port: Port = Field(description="unset: the engine's default port")
    gpus: tuple[Annotated[int, Field(ge=0)], ...] = Field(min_length=1)
    address: Address | None = Field(None, description="scrape address; unset: host")

    @model_validator(mode="before")
    @classmethod
    def _engine_port(cls, data: Any) -> Any:
        """An endpoint without a port listens on its engine's default port."""
        if isinstance(data, dict) and data.get("port") is None:
            engine = data.get("engine", "vllm")
            data = {**data, "port": PORTS.get(engine, PORTS["vllm"])}  # an unknown engine is reported by `engine`
        return data


class HostEndpoint(Endpoint):
    """An endpoint with the host it runs on (the inventory form `{host: [endpoints]}` names it once)."""

    host: LabelValue

    @property
    def instance(self) -> str:
        """The scrape target's `instance` label."""
        return instance(self.address or self.host, self.port)


class VllmEndpoint(HostEndpoint):
    """An entry of `vllm_endpoints`: a vLLM server (declare other engines under `endpoints`)."""

    engine: Literal["vllm"] = Field("vllm", description="vllm_endpoints run vLLM; list other engines in `endpoints`")


class EngineEndpoint(HostEndpoint):
    """An entry of `endpoints`: any engine, named."""

    engine: Engine = Field(description=f"the server: one of {', '.join(ENGINES)}")


def inventory_form(value: Any) -> Any:
    """Endpoints as a list, or in the inventory's form {host: [{engine, model, port, gpus}, ...]}."""
    if isinstance(value, dict):
        return [{"host": host, **endpoint} for host, endpoints in value.items() for endpoint in endpoints or ()]
    return value
