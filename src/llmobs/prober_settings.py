"""Settings of the endpoint prober (`prober`): how often and how each declared endpoint is probed from the
outside, the URL a client calls where it is not the scrape address (a proxy, TLS, an auth layer), and the
file that holds each endpoint's API key. Keys never live in the settings: only the path of a file the
prober reads (a Compose secret, a file the role writes from Ansible Vault)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import Field

from llmobs.endpoints import HostEndpoint
from llmobs.errors import ConfigError
from llmobs.types import Duration, Strict, duration_seconds

KeyFile = Annotated[str, Field(pattern=r"^/\S+$", description="absolute path inside the prober's container")]
Url = Annotated[str, Field(pattern=r"^https?://[^\s/?#@]+(/\S*)?$",
                           description="http(s)://host[:port][/base path], without credentials")]


class ProbeOverride(Strict):
    """One endpoint's own probe settings (key: its instance, address:port)."""

    url: Url | None = Field(None, description="what a client calls, e.g. https://llm.example.com; "
                                              "unset: http://<instance>")
    api_key_file: KeyFile | None = Field(None, description="file holding the endpoint's API key; "
                                                        "unset: prober.api_key_file")
    enabled: bool = True


class ProberSettings(Strict):
    interval: Duration = Field("15s", description="time between two probes of one endpoint")
    timeout: Duration = Field("10s", description="a probe without a complete answer by then fails (timeout)")
    max_tokens: int = Field(8, ge=1, le=256, description="tokens each probe asks for: keep it small")
    prompt: str = Field("Say hello in five words.", min_length=1)
    api_key_file: KeyFile | None = Field(None, description="the API key of every endpoint without its own; unset: none")
    endpoints: dict[str, ProbeOverride] = Field(default_factory=dict, description="per instance (address:port)")

    def override_for(self, endpoint: HostEndpoint) -> ProbeOverride:
        return self.endpoints.get(endpoint.instance) or ProbeOverride()


def check_prober(prober: ProberSettings, endpoints: Iterable[HostEndpoint]) -> list[ConfigError]:
    """A probe ends before the next one starts; every per-endpoint entry names a declared endpoint."""
    errors = []
    if duration_seconds(prober.timeout) >= duration_seconds(prober.interval):
        errors.append(ConfigError("prober.timeout", f"{prober.timeout} is not shorter than prober.interval "
                                  f"({prober.interval})", "shorten prober.timeout or lengthen prober.interval"))
    instances = sorted({endpoint.instance for endpoint in endpoints})
    return errors + [ConfigError(f"prober.endpoints.{name}", f"{name} is not a declared endpoint",
                        f"use an instance (address:port) of vllm_endpoints or endpoints: {', '.join(instances)}"
                        if instances else "declare the endpoint in vllm_endpoints or endpoints first")
            for name in prober.endpoints if name not in instances]
