"""A simulated GPU server: its GPUs, its dcgm-exporter, its vLLM servers and a fault-injection port.

Ports are those of a real server: dcgm-exporter on :9400 (`-a`), each vLLM server on its own port,
plus the simulator's control port (LLMOBS_SIM_FAULT_PORT, 9401) with
  GET /sim/faults            faults in force and the kinds this host accepts
  POST /sim/faults           {"fault": "xid", "gpu": 3, "code": 79} (parameters as in llmobs.sim.faults)
  DELETE /sim/faults         clear all, or those matching ?fault=&gpu=&engine=
  GET /sim/state             GPUs and engines at a glance
A fault that takes an endpoint down closes its listening socket (connection refused), as a dead
process would; the control port keeps answering.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from llmobs import catalog as catalog_mod
from llmobs.conventions import PORTS, SIM_CONTROL_PORT
from llmobs.errors import ConfigError
from llmobs.sim import faults as faults_mod
from llmobs.sim import streaming
from llmobs.sim.dcgm import IDLE_LOAD, DcgmExporterSim, ExporterOptions, GpuLoad, GpuSim
from llmobs.sim.server import JsonHandler, Listener, Reply, Request, error_reply, handler
from llmobs.sim.vllm import Engine, EngineConfig, Served
from llmobs.sim.webconfig import WebConfig

log = logging.getLogger(__name__)

DEFAULT_FAULT_PORT = SIM_CONTROL_PORT
ENGINE_TICK_S = 1.0
CLIENT_TIMEOUT_S = 30.0
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class HostConfig:
    name: str                                  # the server's name (dcgm-exporter's hostname label)
    gpu_model: str                             # catalog key, e.g. H100-SXM
    gpus: int
    engines: tuple[EngineConfig, ...] = ()
    exporter: ExporterOptions | None = None    # None: no dcgm-exporter on this host
    exporter_address: tuple[str, int] = ("", PORTS["dcgm"])
    exporter_web: WebConfig | None = None      # --web-config-file: TLS and basic auth of the exporter
    fault_port: int = DEFAULT_FAULT_PORT
    bind: str = ""                             # address the engines and the control port listen on


def parse_address(address: str) -> tuple[str, int]:
    """dcgm-exporter's `-a` form: ":9400", "0.0.0.0:9400" or "localhost:9400"."""
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise ConfigError("--address", f"{address!r} has no port", "write it as :9400 or 0.0.0.0:9400")
    return host, int(port)


def engine_registry(engine: Engine) -> CollectorRegistry:
    """What an engine server's /metrics serves: the engine's families, and for vLLM prometheus_client's process
    collectors (SGLang's and trtllm-serve's multiprocess registries have none of these)."""
    registry = CollectorRegistry()
    if engine.flavour is None:
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=registry)
    registry.register(engine.collector())
    return registry


class HostSim:
    """Owns the simulated hardware and software of one host and the threads that run them."""

    def __init__(self, config: HostConfig, catalog: catalog_mod.Catalog | None = None):
        self.config = config
        self.catalog = catalog or catalog_mod.load()
        if config.gpu_model not in self.catalog.gpu_models:
            raise ConfigError("gpu_model", f"unknown GPU model {config.gpu_model!r}",
                              f"use one of {', '.join(self.catalog.gpu_models)} (LLMOBS_SIM_GPU_MODEL)")
        model = self.catalog.gpu_models[config.gpu_model]
        seed = int.from_bytes(hashlib.sha256(config.name.encode()).digest()[:8], "big")
        self.rng = random.Random(seed)
        self.gpus = [GpuSim(config.name, i, model, random.Random(seed + i + 1))
                     for i in range(config.gpus)]
        self._check_engines()
        self.engines = [Engine(engine, model, random.Random(seed + 100 + i), self.catalog)
                        for i, engine in enumerate(config.engines)]
        self.faults = faults_mod.FaultBook()
        self.exporter = DcgmExporterSim(self.gpus, config.exporter, self.catalog) if config.exporter else None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.listeners: dict[str, Listener] = {}
        if self.exporter:
            self.listeners["exporter"] = Listener("dcgm-exporter", config.exporter_address, self._exporter_handler(),
                                                  config.exporter_web)
        for engine in self.engines:
            self.listeners[engine.config.model] = Listener(f"{engine.config.engine} {engine.config.model}",
                                                           (config.bind, engine.config.port),
                                                           self._engine_handler(engine))
        self.control = Listener("control", (config.bind, config.fault_port), self._control_handler())

    def _check_engines(self) -> None:
        used: dict[int, str] = {}
        ports: dict[int, str] = {self.config.fault_port: "the fault port"}
        if self.config.exporter:
            ports[self.config.exporter_address[1]] = "dcgm-exporter"
        for engine in self.config.engines:
            if engine.port in ports:
                raise ConfigError(f"engines.{engine.model}.port",
                                  f"port {engine.port} is taken by {ports[engine.port]}",
                                  "give each server its own port")
            ports[engine.port] = engine.model
            for gpu in engine.gpus:
                if gpu >= self.config.gpus:
                    raise ConfigError(f"engines.{engine.model}.gpus", f"GPU {gpu} does not exist",
                                      f"use indexes below {self.config.gpus}")
                if gpu in used:
                    raise ConfigError(f"engines.{engine.model}.gpus", f"GPU {gpu} already runs {used[gpu]}",
                                      "give each engine its own GPUs")
                used[gpu] = engine.model

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        now = time.time()
        for gpu in self.gpus:
            gpu.step(now, 0.0, self._load(gpu.index), {})
        if self.exporter:
            self.exporter.collect(now)
        for listener in (*self.listeners.values(), self.control):
            listener.start()
        threading.Thread(target=self._loop, name="sim-loop", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        for listener in (*self.listeners.values(), self.control):
            listener.stop()

    def _loop(self) -> None:
        collect_s = self.config.exporter.collect_interval_ms / 1000 if self.config.exporter else None
        last_tick = last_collect = time.monotonic()
        while not self._stop.wait(min(ENGINE_TICK_S, collect_s or ENGINE_TICK_S) / 2):
            mono, now = time.monotonic(), time.time()
            with self._lock:
                if mono - last_tick >= ENGINE_TICK_S:
                    for engine in self.engines:
                        engine.tick(now, mono - last_tick, self.faults.on_engine(engine.config.model))
                    last_tick = mono
                if collect_s and mono - last_collect >= collect_s:
                    for gpu in self.gpus:
                        gpu.step(now, mono - last_collect, self._load(gpu.index), self.faults.on_gpu(gpu.index))
                    self.exporter.collect(now)
                    last_collect = mono

    def _load(self, gpu: int) -> GpuLoad:
        for engine in self.engines:
            if gpu in engine.config.gpus:
                return engine.load if engine.up else IDLE_LOAD
        return IDLE_LOAD

    # ------------------------------------------------------------------ faults
    def inject(self, request: dict[str, Any]) -> faults_mod.Fault:
        engines = {engine.config.model: engine.config.port for engine in self.engines}
        fault = faults_mod.parse(request, len(self.gpus), engines)
        if fault.kind.name == "queue-limit":
            self._engine(fault.engine).require_admission_limits()
        if fault.kind.scope == "exporter" and not self.exporter:
            raise ConfigError("fault", "this host runs no dcgm-exporter", "send it to a host with GPUs")
        if fault.gpu is not None:
            self.gpus[fault.gpu].check_fault(fault)
        now = time.time()
        with self._lock:
            self.faults.add(fault)
            name = fault.kind.name
            if name == "xid":
                self.gpus[fault.gpu].record_xid(now, int(fault.params["code"]))
            elif name == "ecc-dbe":
                self.gpus[fault.gpu].add_dbe(now, int(fault.params["count"]))
            elif name == "exporter-down":
                self.listeners["exporter"].stop()
            elif name == "engine-down":
                self.listeners[fault.engine].stop()
                self._engine(fault.engine).go_down()
        log.warning("fault injected: %s on %s %s", name, fault.target, fault.params or "")
        return fault

    def clear(self, fault: str | None = None, gpu: int | None = None,
              engine: str | None = None) -> list[faults_mod.Fault]:
        now = time.time()
        with self._lock:
            cleared = self.faults.clear(fault, gpu, engine)
            for item in cleared:
                name = item.kind.name
                if name in ("xid", "ecc-dbe", "fall-off-bus"):
                    self.gpus[item.gpu].reset()
                elif name == "exporter-down":
                    self.listeners["exporter"].start()
                elif name == "engine-down":
                    self._engine(item.engine).restart()
                    self.listeners[item.engine].start()
                elif name == "kv-saturation":
                    self._engine(item.engine).end_surge(now)
                log.warning("fault cleared: %s on %s", name, item.target)
        return cleared

    def _engine(self, model: str) -> Engine:
        return next(engine for engine in self.engines if engine.config.model == model)

    def state(self) -> dict[str, Any]:
        with self._lock:
            gpus = [{"gpu": g.index, "UUID": g.uuid, "model": g.model.model_name, "present": g.present,
                     "temp": round(g.temp, 1), "power": round(g.power, 1),
                     "util": g.values.get("DCGM_FI_DEV_GPU_UTIL"), "last_xid": g.last_xid} for g in self.gpus]
        return {"host": self.config.name, "exporter_up": self.listeners["exporter"].up if self.exporter else None,
                "gpus": gpus, "engines": [engine.state() for engine in self.engines],
                "faults": [f.to_json() for f in self.faults.all()]}

    # ------------------------------------------------------------------ HTTP routes
    def _exporter_handler(self) -> type[JsonHandler]:
        return handler("ExporterHandler", {
            ("GET", "/metrics"): lambda _: Reply(HTTPStatus.OK, self.exporter.render(), TEXT_FORMAT),
            ("GET", "/health"): lambda _: Reply(HTTPStatus.OK, "OK", "text/plain"),
        }, lambda _: Reply(HTTPStatus.NOT_FOUND, "404 page not found\n", "text/plain"))

    def _engine_handler(self, engine: Engine) -> type[JsonHandler]:
        served = Served(engine)
        registry = engine_registry(engine)
        metrics_path = self.catalog.engines[engine.config.engine].metrics_path

        def models(request: Request) -> Reply:
            engine.count_http(request.path, "GET", "2xx")
            return Reply(HTTPStatus.OK, served.models())

        healthy = Reply(HTTPStatus.OK, b"", "application/json")
        return handler("EngineHandler", {
            ("GET", metrics_path): lambda _: Reply(HTTPStatus.OK, generate_latest(registry), CONTENT_TYPE_LATEST),
            ("GET", "/health"): lambda _: healthy, ("GET", "/ping"): lambda _: healthy,
            ("GET", "/version"): lambda _: Reply(HTTPStatus.OK, served.version()),
            ("GET", "/v1/models"): models,
            ("POST", "/v1/completions"): lambda request: self._completion(engine, request),
            ("POST", "/v1/chat/completions"): lambda request: self._completion(engine, request),
        }, lambda _: Reply(HTTPStatus.NOT_FOUND, {"detail": "Not Found"}))

    def _completion(self, engine: Engine, request: Request) -> Reply | None:
        """An OpenAI request, counted in http_requests_total as the API server counts it (unless a fault in
        front of the engine answers it; a wrong key is refused as vLLM's --api-key refuses it)."""
        if "front-unavailable" in self.faults.on_engine(engine.config.model):
            return Reply(HTTPStatus.SERVICE_UNAVAILABLE, "<html><body><h1>503 Service Unavailable</h1></body></html>\n",
                         "text/html")
        key = engine.config.api_key
        if key and request.handler.headers.get("Authorization") != f"Bearer {key}":
            engine.count_http(request.path, "POST", "4xx")
            return Reply(HTTPStatus.UNAUTHORIZED, {"error": "Unauthorized"})
        try:
            body = request.json()
        except ConfigError as error:
            engine.count_http(request.path, "POST", "4xx")
            return error_reply(error)
        answer = self.complete(engine, request.path, body)
        if answer is None:  # the client gave up on a stuck engine: no response at all
            return None
        status, response = answer
        engine.count_http(request.path, "POST", f"{status // 100}xx")
        if isinstance(response, streaming.StreamPlan):
            return Reply(status, streaming.events(response), "text/event-stream; charset=utf-8")
        return Reply(status, response)

    def complete(self, engine: Engine, path: str,
                 body: dict[str, Any]) -> tuple[int, dict[str, Any] | streaming.StreamPlan] | None:
        """Answer an OpenAI completion request; the request also enters the engine's simulated queue.
        None: no answer (a stuck engine never answers; the client gives up after CLIENT_TIMEOUT_S)."""
        model = engine.config.model
        if body.get("model") not in (None, model):
            return HTTPStatus.NOT_FOUND, {"error": {"message": f"The model `{body.get('model')}` does not exist.",
                                                    "type": "NotFoundError", "param": None, "code": 404}}
        if path.endswith("chat/completions"):
            text = " ".join(str(m.get("content", "")) for m in body.get("messages") or [] if isinstance(m, dict))
        else:
            text = str(body.get("prompt", ""))
        prompt_tokens = max(1, round(len(text.split()) * 1.3))
        max_tokens = int(body.get("max_tokens") or 16)
        faults = self.faults.on_engine(model)
        if "engine-stuck" in faults:
            deadline = time.monotonic() + CLIENT_TIMEOUT_S
            while "engine-stuck" in self.faults.on_engine(model):
                if time.monotonic() > deadline:
                    return None
                time.sleep(0.5)
        request = engine.submit(time.time(), prompt_tokens, max_tokens, path, faults)
        if request is None:  # refused at admission: the queue is at its limit
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": {"message": "The server is overloaded; retry later.",
                                                              "type": "ServiceUnavailableError", "code": 503}}
        if request.fails:
            return HTTPStatus.INTERNAL_SERVER_ERROR, {"error": {"message": "EngineCore encountered an issue.",
                                                                "type": "InternalServerError", "code": 500}}
        completion = min(max_tokens, request.target)
        factor = faults["latency"].params["factor"] if "latency" in faults else 1.0
        finish = "length" if completion >= max_tokens else "stop"
        vocabulary = ("the", "GPU", "token", "model", "serves", "a", "fast", "reply")
        if body.get("stream"):
            options = body.get("stream_options") or {}
            return HTTPStatus.OK, streaming.StreamPlan(
                f"chatcmpl-{self.rng.getrandbits(64):016x}", model,
                tuple(self.rng.choice(vocabulary) for _ in range(completion)), finish, prompt_tokens,
                prefill=prompt_tokens / engine.prefill_rate * factor, itl=engine.base_itl * factor,
                usage=bool(isinstance(options, dict) and options.get("include_usage")),
                chat=path.endswith("chat/completions"),
                held=faults["front-stall"].params["seconds"] if "front-stall" in faults else 0.0)
        time.sleep(min(10.0, (prompt_tokens / engine.prefill_rate + completion * engine.base_itl) * factor))
        words = " ".join(self.rng.choice(vocabulary) for _ in range(completion))
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
        if path.endswith("chat/completions"):
            choice["message"] = {"role": "assistant", "content": words}
            kind = "chat.completion"
        else:
            choice["text"] = words
            kind = "text_completion"
        return HTTPStatus.OK, {
            "id": f"cmpl-{self.rng.getrandbits(64):016x}", "object": kind, "created": int(time.time()),
            "model": model, "choices": [choice],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                      "total_tokens": prompt_tokens + completion}}

    def _control_handler(self) -> type[JsonHandler]:
        def not_found(request: Request) -> Reply:
            return Reply(HTTPStatus.NOT_FOUND, {"error": f"no {request.path}" if request.method == "GET"
                                                else f"{request.method} /sim/faults"})

        return handler("ControlHandler", {
            ("GET", "/health"): lambda _: Reply(HTTPStatus.OK, {"status": "ok"}),
            ("GET", "/sim/faults"): lambda _: Reply(HTTPStatus.OK, self._faults_in_force()),
            ("GET", "/sim/state"): lambda _: Reply(HTTPStatus.OK, self.state()),
            ("POST", "/sim/faults"): self._inject_request,
            ("DELETE", "/sim/faults"): self._clear_request,
        }, not_found)

    def _faults_in_force(self) -> dict[str, Any]:
        kinds = {k.name: {"scope": k.scope, "summary": k.summary, "params": {p.name: p.default for p in k.params}}
                 for k in faults_mod.KINDS.values()}
        return {"host": self.config.name, "faults": [f.to_json() for f in self.faults.all()], "kinds": kinds}

    def _inject_request(self, request: Request) -> Reply:
        body = request.json()
        if not isinstance(body, dict):
            raise ConfigError("body", "not a JSON object", 'send {"fault": ..., ...}')
        fault = self.inject(body)
        return Reply(HTTPStatus.CREATED, {"host": self.config.name, "fault": fault.to_json()})

    def _clear_request(self, request: Request) -> Reply:
        """DELETE /sim/faults?fault=&gpu=&engine= (an engine by model name or port)."""
        gpu, engine = request.query.get("gpu"), request.query.get("engine")
        if gpu is not None and not gpu.isdigit():
            raise ConfigError("gpu", f"{gpu!r} is not a GPU index", "give a number")
        if engine is not None:
            engine = {str(e.config.port): e.config.model for e in self.engines}.get(engine, engine)
        cleared = self.clear(request.query.get("fault"), int(gpu) if gpu is not None else None, engine)
        return Reply(HTTPStatus.OK, {"host": self.config.name, "cleared": [f.to_json() for f in cleared]})

    def wait(self) -> None:
        """Block until stopped (SIGTERM/SIGINT end the process)."""
        self._stop.wait()
