"""The faults a simulated host can be given at runtime, and the book of those in force.

Each fault has a scope: a GPU (by index), the host's exporter, or an engine (by model name or port).
A fault stays in force until it is cleared; clearing models the repair NVIDIA or the operator would
do (GPU reset, exporter or engine restart), so counters that a reset zeroes go back to zero.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from llmobs.errors import ConfigError

Scope = Literal["gpu", "exporter", "engine"]


@dataclass(frozen=True)
class Param:
    name: str
    default: float | None  # None: required
    help: str
    integer: bool = False
    minimum: float | None = None


@dataclass(frozen=True)
class FaultKind:
    name: str
    scope: Scope
    summary: str
    params: tuple[Param, ...] = ()


KINDS: dict[str, FaultKind] = {kind.name: kind for kind in (
    FaultKind("overheat", "gpu", "cooling failure: the GPU heats up to `margin` degrees below its slowdown threshold",
              (Param("margin", 1.0, "degrees left before the GPU's own slowdown temperature"),)),
    FaultKind("xid", "gpu", "the driver reports XID `code` (sets DCGM_FI_DEV_XID_ERRORS, counts in the XID window)",
              (Param("code", None, "XID code, e.g. 79, 48, 119, 13, 154", integer=True, minimum=1),)),
    FaultKind("ecc-dbe", "gpu", "uncorrectable double-bit ECC errors (volatile and aggregate counters) with XID 48",
              (Param("count", 1, "errors to add", integer=True, minimum=1),)),
    FaultKind("row-remap-failure", "gpu", "a row could not be remapped (DCGM_FI_DEV_ROW_REMAP_FAILURE = 1)"),
    FaultKind("row-remap-pending", "gpu", "a row remap waits for a GPU reset (DCGM_FI_DEV_ROW_REMAP_PENDING = 1)"),
    FaultKind("thermal-throttle", "gpu",
              "thermal slowdown: clocks drop, THERMAL_VIOLATION accrues, temperature at the limit"),
    FaultKind("power-brake", "gpu", "hardware power brake: clocks and power drop, POWER_VIOLATION accrues"),
    FaultKind("power-over-limit", "gpu", "the power limiter does not hold: draw goes `ratio` times the enforced limit",
              (Param("ratio", 1.15, "power draw over the enforced limit"),)),
    FaultKind("nvlink-errors", "gpu", "a degrading NVLink: CRC errors at `rate` per second, each replayed, and"
              " link recoveries; the rate doubles every `growth` seconds (0: steady)",
              (Param("rate", 20.0, "CRC errors per second", minimum=0),
               Param("growth", 0.0, "seconds in which the rate doubles, 0 for a steady rate", minimum=0))),
    FaultKind("pcie-replay", "gpu", "a degrading PCIe link: replays at `rate` per second",
              (Param("rate", 50.0, "replays per second", minimum=0),)),
    FaultKind("fall-off-bus", "gpu", "the GPU falls off the bus: every series of that GPU disappears"),
    FaultKind("exporter-down", "exporter", "dcgm-exporter stops answering (connection refused)"),
    FaultKind("engine-down", "engine", "the vLLM server stops answering (connection refused) and frees its GPUs"),
    FaultKind("engine-stuck", "engine", "the engine hangs: requests keep queueing, no token is generated"),
    FaultKind("kv-saturation", "engine", "surge of long generations (factor/2 times the requests, factor times "
              "longer outputs): the KV cache fills and the scheduler preempts",
              (Param("factor", 4.0, "size of the surge"),)),
    FaultKind("error-burst", "engine",
              "a share `ratio` of requests fails in the engine (finished_reason=error, HTTP 5xx)",
              (Param("ratio", 0.3, "share of requests that fail"),)),
    FaultKind("latency", "engine", "the engine slows down `factor` times (prefill and decode)",
              (Param("factor", 6.0, "slow-down factor"),)),
    FaultKind("queue-limit", "engine", "the server refuses requests with HTTP 503 at admission while "
              "`max_queued` wait, as vLLM 0.33 with --max-num-queued-reqs (vllm:admission_rejections_total)",
              (Param("max_queued", 0, "queued requests beyond which it refuses; 0 refuses every request",
                     integer=True),)),
    # Faults between the client and the engine (a proxy, an auth layer, a full queue in front of it): the
    # engine never sees them, so only the outside-in prober (llmobs.prober) does.
    FaultKind("front-unavailable", "engine", "what is in front of the engine (a proxy, a load balancer) answers "
              "the OpenAI API with HTTP 503; the engine sees no request and its metrics stay fine"),
    FaultKind("front-stall", "engine", "what is in front of the engine holds each answer `seconds` before its "
              "first token (a buffering proxy, a queue in front); the engine's own metrics stay fine",
              (Param("seconds", 5.0, "seconds each answer is held before its first token", minimum=0),)),
)}


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    gpu: int | None = None
    engine: str | None = None  # the engine's model name
    params: dict[str, float] = field(default_factory=dict)
    since: float = field(default_factory=time.time)

    @property
    def target(self) -> str:
        if self.kind.scope == "gpu":
            return f"gpu {self.gpu}"
        return f"engine {self.engine}" if self.kind.scope == "engine" else "exporter"

    def to_json(self) -> dict[str, Any]:
        return {"fault": self.kind.name, "scope": self.kind.scope, "gpu": self.gpu, "engine": self.engine,
                "params": self.params, "since": self.since}


def _number(name: str, value: Any, param: Param) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(name, f"{value!r} is not a number", f"give {param.help}") from None
    if param.integer:
        if number != int(number):
            raise ConfigError(name, f"{value!r} is not a whole number", f"give {param.help}")
        number = int(number)
    if param.minimum is not None and number < param.minimum:
        raise ConfigError(name, f"{value!r} is below {param.minimum:g}", f"give {param.help}")
    return number


def parse(request: dict[str, Any], gpu_count: int, engines: dict[str, int]) -> Fault:
    """Validate an injection request ({"fault", "gpu"|"engine", params...}) against this host.

    `engines` maps model name -> port; an engine may be named by either.
    """
    name = request.get("fault")
    kind = KINDS.get(str(name))
    if kind is None:
        raise ConfigError("fault", f"unknown fault {name!r}", f"use one of {', '.join(KINDS)}")
    gpu = engine = None
    if kind.scope == "gpu":
        if gpu_count == 0:
            raise ConfigError("fault", f"{kind.name} needs a GPU and this host simulates none",
                              "send GPU faults to a host that runs the DCGM simulator")
        raw = request.get("gpu")
        if raw is None or str(raw) not in {str(i) for i in range(gpu_count)}:
            raise ConfigError("gpu", f"{raw!r} is not a GPU of this host", f"use an index from 0 to {gpu_count - 1}")
        gpu = int(raw)
    elif kind.scope == "engine":
        raw = request.get("engine")
        by_port = {str(port): model for model, port in engines.items()}
        if raw is None and len(engines) == 1:
            engine = next(iter(engines))
        elif str(raw) in engines:
            engine = str(raw)
        elif str(raw) in by_port:
            engine = by_port[str(raw)]
        else:
            raise ConfigError("engine", f"{raw!r} is not an engine of this host",
                              f"name one by model or port: {', '.join(f'{m} ({p})' for m, p in engines.items())}"
                              if engines else "send engine faults to a host that runs vLLM engines")
    known = {param.name for param in kind.params}
    unknown = sorted(set(request) - known - {"fault", "gpu", "engine"})
    if unknown:
        raise ConfigError(unknown[0], f"{kind.name} takes no parameter {unknown[0]!r}",
                          f"use {', '.join(sorted(known)) or 'no parameters'}")
    params: dict[str, float] = {}
    for param in kind.params:
        if request.get(param.name) is None:
            if param.default is None:
                raise ConfigError(param.name, f"{kind.name} needs {param.name}", f"give {param.help}")
            params[param.name] = param.default
        else:
            params[param.name] = _number(param.name, request[param.name], param)
    return Fault(kind, gpu, engine, params)


class FaultBook:
    """The faults in force on one host; a new fault replaces one of the same kind on the same target."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults = [f for f in self._faults if not self._same(f, fault)] + [fault]

    @staticmethod
    def _same(a: Fault, b: Fault) -> bool:
        return a.kind == b.kind and a.gpu == b.gpu and a.engine == b.engine

    def clear(self, fault: str | None = None, gpu: int | None = None, engine: str | None = None) -> list[Fault]:
        """Clear the faults that match every filter given; returns what was cleared."""
        def matches(f: Fault) -> bool:
            return ((fault is None or f.kind.name == fault) and (gpu is None or f.gpu == gpu)
                    and (engine is None or f.engine == engine))
        with self._lock:
            cleared = [f for f in self._faults if matches(f)]
            self._faults = [f for f in self._faults if not matches(f)]
        return cleared

    def all(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def on_gpu(self, gpu: int) -> dict[str, Fault]:
        return {f.kind.name: f for f in self.all() if f.gpu == gpu}

    def on_engine(self, engine: str) -> dict[str, Fault]:
        return {f.kind.name: f for f in self.all() if f.engine == engine}

    def has(self, name: str) -> bool:
        return any(f.kind.name == name for f in self.all())
