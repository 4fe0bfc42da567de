"""A structural check of an OpenTelemetry Collector configuration, offline: what `otelcol validate` would
refuse, or accept and then run wrong, found before anything reaches a host (the Collector and Jaeger v2,
itself a Collector build, have the same layout).

- every pipeline names receivers and exporters, and each component it names is defined;
- every defined receiver, processor, exporter and connector is used by a pipeline, every extension is
  listed in service.extensions and every one listed there is defined (an unused component is a typo or
  dead configuration the Collector runs silently);
- memory_limiter, where a pipeline has it, comes first (upstream: it must refuse data before any work);
- every `endpoint` is host:port with a port in 1..65535 (an OTLP/HTTP exporter's is an http(s) URL);
- with `store_port` given, every OTLP exporter of a traces pipeline sends to that port (the store's OTLP
  receiver), so spans do not go to the UI or a wrong service.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from llmobs.errors import ConfigError

SECTIONS = ("receivers", "processors", "exporters", "connectors", "extensions")
PIPELINE_ROLES = ("receivers", "processors", "exporters")
SIGNALS = ("traces", "metrics", "logs", "profiles")
# The OTLP exporters, under their current names and the deprecated aliases (collector CHANGELOG v0.144.0).
OTLP_GRPC_EXPORTERS = ("otlp_grpc", "otlp")
OTLP_HTTP_EXPORTERS = ("otlp_http", "otlphttp")
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]*):(?P<port>[0-9]+)$")


def component_type(name: str) -> str:
    """`otlp_grpc/jaeger` -> `otlp_grpc` (a component's id is type[/name])."""
    return name.split("/", 1)[0]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _endpoints(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every `endpoint` key under `node`, with its dotted path."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = f"{path}.{key}"
            if key == "endpoint":
                yield here, value
            else:
                yield from _endpoints(value, here)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _endpoints(value, f"{path}[{index}]")


def _port_of(field: str, endpoint: Any, url: bool) -> tuple[int | None, list[ConfigError]]:
    """The port of a host:port (or, with `url`, of an http(s) URL), or the error that says why there is none."""
    text = str(endpoint) if endpoint is not None else ""
    if url:
        parts = urlsplit(text)
        try:
            port = parts.port
        except ValueError:
            port = 0
        if parts.scheme not in ("http", "https") or not parts.hostname or port is None or not 1 <= port <= 65535:
            return None, [ConfigError(field, f"{text!r} is not an http(s)://host:port URL with a port in 1..65535",
                                      "write the URL with its port, e.g. http://jaeger:4318")]
        return port, []
    match = _HOST_PORT.match(text)
    if not match or not 1 <= int(match["port"]) <= 65535:
        return None, [ConfigError(field, f"{text!r} is not host:port with a port in 1..65535",
                                  "write host:port, e.g. 0.0.0.0:4317 (a listener) or jaeger:4317 (a destination)")]
    return int(match["port"]), []


def _pipeline_errors(name: str, pipeline: Any, config: Mapping[str, Any]) -> list[ConfigError]:
    field = f"service.pipelines.{name}"
    if component_type(name) not in SIGNALS:
        return [ConfigError(field, f"{component_type(name)!r} is not a signal",
                            f"name the pipeline after its signal ({', '.join(SIGNALS)}), e.g. traces or traces/vllm")]
    pipeline = _mapping(pipeline)
    errors = [ConfigError(f"{field}.{role}", "is empty", f"list at least one of the {role} defined under {role}:")
              for role in ("receivers", "exporters") if not pipeline.get(role)]
    for role in PIPELINE_ROLES:
        for used in pipeline.get(role) or []:
            defined = _mapping(config.get(role))
            connector = role != "processors" and used in _mapping(config.get("connectors"))
            if used not in defined and not connector:
                errors.append(ConfigError(f"{field}.{role}", f"{used!r} is not defined",
                                          f"define {used} under {role}: or remove it from the pipeline"))
    processors = list(pipeline.get("processors") or [])
    limiters = [p for p in processors if component_type(p) == "memory_limiter"]
    if limiters and processors[0] != limiters[0]:
        errors.append(ConfigError(f"{field}.processors", f"memory_limiter comes after {processors[0]}",
                                  "put memory_limiter first, so data is refused before any work is done on it"))
    return errors


def _unused(config: Mapping[str, Any], pipelines: Mapping[str, Any]) -> list[ConfigError]:
    errors = []
    for section in ("receivers", "processors", "exporters", "connectors"):
        roles = PIPELINE_ROLES if section == "connectors" else (section,)
        used = {c for p in pipelines.values() for role in roles for c in _mapping(p).get(role) or []}
        errors += [ConfigError(f"{section}.{name}", "is defined but no pipeline uses it",
                               f"add {name} to a pipeline under service.pipelines, or remove it")
                   for name in _mapping(config.get(section)) if name not in used]
    listed = list(_mapping(config.get("service")).get("extensions") or [])
    extensions = _mapping(config.get("extensions"))
    errors += [ConfigError(f"extensions.{name}", "is defined but not listed in service.extensions",
                           f"add {name} to service.extensions, or remove it")
               for name in extensions if name not in listed]
    errors += [ConfigError("service.extensions", f"{name!r} is not defined",
                           f"define {name} under extensions:, or remove it from service.extensions")
               for name in listed if name not in extensions]
    return errors


def _endpoint_errors(config: Mapping[str, Any], pipelines: Mapping[str, Any],
                     store_port: int | None) -> list[ConfigError]:
    errors: list[ConfigError] = []
    for section in SECTIONS:
        for name, component in _mapping(config.get(section)).items():
            url = section == "exporters" and component_type(name) in OTLP_HTTP_EXPORTERS
            for field, endpoint in _endpoints(component, f"{section}.{name}"):
                errors += _port_of(field, endpoint, url)[1]
    readers = _mapping(_mapping(_mapping(config.get("service")).get("telemetry")).get("metrics")).get("readers") or []
    for index, reader in enumerate(readers):
        prometheus = _mapping(_mapping(_mapping(reader).get("pull")).get("exporter")).get("prometheus")
        if prometheus is not None:
            port = _mapping(prometheus).get("port")
            if not isinstance(port, int) or not 1 <= port <= 65535:
                errors.append(ConfigError(f"service.telemetry.metrics.readers[{index}].pull.exporter.prometheus.port",
                                          f"{port!r} is not a port in 1..65535",
                                          "give the port Prometheus scrapes the Collector's own metrics on, e.g. 8888"))
    if store_port is not None:
        errors += _store_errors(config, pipelines, store_port)
    return errors


def _store_errors(config: Mapping[str, Any], pipelines: Mapping[str, Any], store_port: int) -> list[ConfigError]:
    errors = []
    exporters = _mapping(config.get("exporters"))
    traced = {exporter for name, pipeline in pipelines.items() if component_type(name) == "traces"
              for exporter in _mapping(pipeline).get("exporters") or []}
    for name in sorted(traced):
        kind = component_type(name)
        if name not in exporters or kind not in OTLP_GRPC_EXPORTERS + OTLP_HTTP_EXPORTERS:
            continue
        field = f"exporters.{name}.endpoint"
        grpc = kind in OTLP_GRPC_EXPORTERS
        port, bad = _port_of(field, _mapping(exporters[name]).get("endpoint"), url=not grpc)
        expected = store_port if grpc else store_port + 1  # OTLP's pair: gRPC 4317, HTTP 4318
        if not bad and port != expected:
            errors.append(ConfigError(field, f"sends to port {port}, not the trace store's OTLP "
                                      f"{'gRPC' if grpc else 'HTTP'} port {expected}",
                                      f"point it at the store's OTLP receiver, e.g. jaeger:{expected}"))
    return errors


def check_collector_config(config: Any, store_port: int | None = None, source: str | None = None) -> list[ConfigError]:
    """Every structural error of a Collector configuration (empty: none); `store_port` is the trace
    store's OTLP gRPC port the traces pipelines must export to (None: not checked)."""
    if not isinstance(config, Mapping):
        return [ConfigError("(top level)", "is not a mapping", "give the Collector's YAML configuration", source)]
    errors = [ConfigError(key, "is not a section of a Collector configuration",
                          f"use only {', '.join(SECTIONS)} and service")
              for key in config if key not in (*SECTIONS, "service")]
    pipelines = _mapping(_mapping(config.get("service")).get("pipelines"))
    if not pipelines:
        errors.append(ConfigError("service.pipelines", "is empty", "define at least one pipeline, e.g. traces"))
    for name, pipeline in pipelines.items():
        errors += _pipeline_errors(name, pipeline, config)
    errors += _unused(config, pipelines) + _endpoint_errors(config, pipelines, store_port)
    return [ConfigError(e.field, e.problem, e.fix, source) for e in errors]
