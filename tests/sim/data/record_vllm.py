"""Record vLLM's /metrics page from vLLM's own metrics code, for tests/sim/test_vllm_upstream.py.

vLLM's Prometheus metrics are made by the frontend (the API server process), not by the GPU workers:
the engine core sends per-step outputs and scheduler stats, the frontend turns them into
`IterationStats` (vllm.v1.metrics.stats) and hands them to `StatLoggerManager.record()`, whose
`PrometheusStatLogger` (vllm.v1.metrics.loggers) updates prometheus_client's registry. This script
plays the engine core: a small step-by-step scheduler (chunked prefill, a token budget, a KV cache
of a few blocks, FIFO admission, preemption of the newest request when a block is missing) over a
fixed workload of requests of different lengths, every finish reason the release knows, shared
prefixes (prefix-cache hits), one preemption, a queue at the end and, where the release has it, an
admission rejection. Everything else is vLLM's: the config (EngineArgs.create_engine_config, on
vLLM's CPU platform, with a tiny local model config and no weights), the stats objects and their
update methods (IterationStats.update_from_output / update_from_finished_request,
ParentRequest.observe_finished_request, PrefixCacheStats, SchedulerStats), the loggers, the HTTP
instrumentation (vLLM's own mount function on a FastAPI app) and the /metrics endpoint, which is read
over ASGI. The engine core timestamps are synthetic (a clock the script advances per step); the
`_created` values are the time of the run.

One venv per release, CPU only (torch: `pip install torch==2.13.0` takes the CPU build on this disk;
vLLM with --no-deps, then just what its metrics, config and API-server modules import). prometheus_client
is pinned near the release each vLLM was published with (0.33.0: today's 0.26.0; 0.10.2 of 2025-09-13:
0.23.1 of 2025-09-11; 0.8.5.post1: 0.21.1); the text format of these pages is the same in all of them:

    python3 -m venv /tmp/vllm-0.33
    /tmp/vllm-0.33/bin/pip install torch==2.13.0
    /tmp/vllm-0.33/bin/pip install --no-deps vllm==0.33.0
    /tmp/vllm-0.33/bin/pip install packaging regex cachetools psutil numpy requests tqdm py-cpuinfo \
        'pydantic>=2.12' msgspec pyzmq cloudpickle pyyaml prometheus_client==0.26.0 \
        prometheus-fastapi-instrumentator==8.1.0 'fastapi<0.137,>=0.133' 'starlette>=1.0.1' \
        'transformers<5.21,>=5.16.1' 'huggingface_hub>=1.31' 'tokenizers>=0.23.2' blake3 cbor2 pybase64 \
        einops aiohttp openai openai-harmony pillow uvloop xgrammar partial-json-parser llguidance httpx
    VLLM_TARGET_DEVICE=cpu HF_HUB_OFFLINE=1 /tmp/vllm-0.33/bin/python tests/sim/data/record_vllm.py

    python3 -m venv /tmp/vllm-0.10.2
    /tmp/vllm-0.10.2/bin/pip install torch==2.13.0
    /tmp/vllm-0.10.2/bin/pip install --no-deps vllm==0.10.2 compressed-tensors==0.11.0
    /tmp/vllm-0.10.2/bin/pip install packaging regex cachetools psutil numpy requests tqdm py-cpuinfo \
        'pydantic>=2.11.7,<2.12' msgspec pyzmq cloudpickle pyyaml prometheus_client==0.23.1 \
        prometheus-fastapi-instrumentator==7.1.0 fastapi==0.116.1 transformers==4.56.1 \
        'tokenizers>=0.21.1,<0.23' blake3 cbor2 pybase64 einops aiohttp 'openai>=1.99.1,<2' pillow \
        partial-json-parser openai-harmony httpx sentencepiece protobuf 'llguidance>=0.7.11,<0.8' \
        xgrammar==0.1.23 gguf 'mistral_common>=1.8.2' opencv-python-headless setproctitle \
        python-json-logger diskcache==5.6.3 lark==1.2.2 outlines_core==0.2.11 watchfiles ninja scipy uvloop \
        uvicorn python-multipart frozendict
    HF_HUB_OFFLINE=1 /tmp/vllm-0.10.2/bin/python tests/sim/data/record_vllm.py

    python3 -m venv /tmp/vllm-0.8.5
    /tmp/vllm-0.8.5/bin/pip install torch==2.13.0
    /tmp/vllm-0.8.5/bin/pip install --no-deps vllm==0.8.5.post1 compressed-tensors==0.9.3
    /tmp/vllm-0.8.5/bin/pip install packaging regex cachetools psutil numpy requests tqdm py-cpuinfo \
        'pydantic>=2.9,<2.12' msgspec pyzmq cloudpickle pyyaml prometheus_client==0.21.1 \
        prometheus-fastapi-instrumentator==7.1.0 fastapi==0.115.12 transformers==4.51.3 \
        'tokenizers>=0.21.1,<0.22' blake3 cbor2 einops aiohttp 'openai>=1.52,<2' pillow partial-json-parser \
        httpx sentencepiece protobuf 'llguidance>=0.7.9,<0.8' gguf 'mistral_common>=1.5.4,<1.6' \
        opencv-python-headless python-json-logger lark==1.2.2 watchfiles ninja scipy uvloop uvicorn \
        python-multipart frozendict importlib_metadata 'huggingface-hub<1' triton==3.9.0
    HF_HUB_OFFLINE=1 /tmp/vllm-0.8.5/bin/python tests/sim/data/record_vllm.py

Each run writes tests/sim/data/vllm-<release>.prom: a comment header, then the page byte for byte.
"""

from __future__ import annotations

import collections
import dataclasses
import inspect
import math
import random
import tempfile
import time
from pathlib import Path

import vllm
import vllm.platforms
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.testclient import TestClient
from transformers import LlamaConfig


def use_cpu_platform() -> None:
    """vLLM's CPU platform. From 0.11 VLLM_TARGET_DEVICE=cpu selects it; 0.10 only detects it in a CPU
    build of vLLM, so the PyPI (CUDA) build is told here, as a platform plugin would."""
    if not vllm.platforms.current_platform.device_type:
        from vllm.platforms.cpu import CpuPlatform

        vllm.platforms._current_platform = CpuPlatform()


use_cpu_platform()  # before vLLM's modules read it at import

from vllm.engine.arg_utils import EngineArgs  # noqa: E402
from vllm.v1.engine import EngineCoreEvent, EngineCoreEventType, EngineCoreOutput, FinishReason  # noqa: E402
from vllm.v1.engine.parallel_sampling import ParentRequest  # noqa: E402
from vllm.v1.metrics import stats as vllm_stats  # noqa: E402

HERE = Path(__file__).resolve().parent
RELEASE = vllm.__version__
BLOCK_SIZE = 16
NUM_GPU_BLOCKS = 600             # a small cache (9600 tokens), so that the workload fills it
TOKEN_BUDGET = 2048              # max_num_batched_tokens: chunked prefill
MAX_NUM_QUEUED_REQS = 6          # --max-num-queued-reqs, where the release has it
STEP_BASE_S, STEP_PER_TOKEN_S = 0.018, 0.00002
LATE = math.inf                  # arrival of the late burst

# The engine each recording describes (the lab engine that imitates the release serves the same model),
# and why the release was chosen.
ENGINES = {
    "0.33.0": {"served": "llama-3.1-8b-instruct", "max_model_len": 32768, "why": """\
vLLM 0.33.0 is the newest release on PyPI (2026-11); the kit's current names."""},
    "0.10.2": {"served": "phi-3-mini-4k-instruct", "max_model_len": 4096, "why": """\
vLLM 0.10.2 (2025-09-13) is the newest release that serves, by default, both old names the kit still
reads: vllm:gpu_cache_usage_perc and vllm:time_per_output_token_seconds. Established from
vllm/v1/metrics/loggers.py in the PyPI wheels: 0.9.2 and 0.10.2 create both unconditionally (with their
replacements vllm:kv_cache_usage_perc and, from 0.10, vllm:inter_token_latency_seconds beside them);
0.11.0 and 0.11.2 create vllm:gpu_cache_usage_perc and vllm:gpu_prefix_cache_* only `if
self.show_hidden_metrics` (--show-hidden-metrics-for-version=0.10); 0.12.0 no longer has
vllm:gpu_cache_usage_perc (vllm-project/vllm#29330) and hides vllm:time_per_output_token_seconds, which
#32661 removes for 0.13. 0.10.2 is the last 0.10 release. Its finish reasons are stop, length and abort.
vllm:gpu_prefix_cache_* count tokens here, as from 0.9; 0.8.x counted blocks (as its PrefixCacheStats
and its help text say) and had no vllm:prefix_cache_*."""},
    "0.8.5.post1": {"served": "llama-3.1-8b-instruct", "max_model_len": 32768, "prefix_cache_unit": BLOCK_SIZE,
                    "args": {"enable_chunked_prefill": True},  # the V1 engine's default; the CPU platform's is off
                    "why": """\
vLLM 0.8.5.post1 (2025-05-02), the last 0.8 release: the V1 engine's first metric set, before the 0.9
renames. vllm:gpu_prefix_cache_queries/_hits are its only prefix-cache counters and count KV blocks (of
16 tokens), not tokens (vllm/v1/core/kv_cache_manager.py adds len(block_hashes) and len(computed_blocks));
no vllm:kv_cache_usage_perc, vllm:prefix_cache_*, vllm:inter_token_latency_seconds yet; finish reasons
stop, length and abort. The kit does not imitate it; the recording documents what a fallback would read."""},
}


@dataclasses.dataclass
class Req:
    rid: str
    arrival: float
    prompt: int
    max_tokens: int
    output: int                  # tokens it generates before it finishes with `finish`
    finish: str
    cached: int = 0              # prompt tokens found in the prefix cache
    computed: int = 0            # tokens whose KV the engine holds
    blocks: int = 0              # KV blocks allocated to it
    generated: int = 0
    preempted: bool = False
    events: list = dataclasses.field(default_factory=list)
    stats: object = None

    def to_compute(self) -> int:
        """Tokens to compute before the next output: the prompt (and, after a preemption, what it had
        generated) in prefill, then one token per decode step."""
        return self.prompt + self.generated - self.computed


def workload(max_model_len: int) -> list[Req]:
    """Requests of different lengths; every finish reason the release has; shared prefixes."""
    reasons = {r.name.lower() for r in FinishReason}
    rng = random.Random(33)
    plan = [  # arrival (s), prompt, max_tokens, output, finish
        (0.00, 812, 256, 180, "stop"), (0.05, 37, 64, 64, "length"), (0.10, 1530, 512, 395, "stop"),
        (0.40, 2890, 128, 128, "length"), (0.55, 260, 1024, 400, "stop"), (0.70, 96, 32, 12, "abort"),
        (0.90, 812, 256, 21, "stop"), (1.20, 3100, 300, 60, "error"), (1.30, 150, 200, 150, "repetition"),
        (1.50, 1200, 400, 340, "stop"), (1.60, 45, 20, 20, "length"), (1.70, 600, 90, 33, "stop"),
        (2.00, 2400, 300, 290, "stop"), (2.05, 1900, 300, 250, "stop"), (2.10, 1700, 300, 280, "stop"),
        # The late burst: arrives together once the rest is done; the recording is taken mid-burst.
        (LATE, 3000, 64, 50, "stop"), (LATE, 2600, 64, 30, "stop"), (LATE, 500, 64, 40, "stop"),
        (LATE, 40, 64, 20, "stop"), (LATE, 220, 64, 30, "stop"), (LATE, 70, 16, 16, "length"),
        (LATE, 300, 64, 50, "stop"), (LATE, 900, 150, 40, "stop"),
    ]
    requests = []
    for i, (arrival, prompt, max_tokens, output, finish) in enumerate(plan):
        if finish not in reasons:
            continue
        prompt = min(prompt, max_model_len - max_tokens)
        # Most requests share the first one's system prompt: whole blocks of it hit the prefix cache.
        cached = min(prompt - 1, 512) // BLOCK_SIZE * BLOCK_SIZE if i and rng.random() < 0.7 else 0
        requests.append(Req(f"cmpl-{i:04d}", arrival, prompt, max_tokens, output, finish, cached))
    return requests


def _call(function, **kwargs):
    """Call a vLLM function with the keyword arguments its signature in this release takes."""
    names = inspect.signature(function).parameters
    return function(**{name: value for name, value in kwargs.items() if name in names})


class EngineCore:
    """A tiny engine core: schedules steps and hands the frontend's stats objects to the loggers."""

    def __init__(self, loggers: object, requests: list[Req], wall0: float, prefix_cache_unit: int = 1):
        self.loggers, self.pending, self.wall0 = loggers, collections.deque(requests), wall0
        self.prefix_cache_unit = prefix_cache_unit
        self.waiting: collections.deque[Req] = collections.deque()
        self.running: list[Req] = []
        self.now = 0.0
        self.preemptions = 0
        self.rejections = 0
        self.finished: collections.Counter[str] = collections.Counter()

    def free_blocks(self) -> int:
        return NUM_GPU_BLOCKS - sum(r.blocks for r in self.running)

    def arrive(self) -> None:
        while self.pending and self.pending[0].arrival <= self.now:
            req = self.pending.popleft()
            if hasattr(self.loggers, "record_admission_rejection") and len(self.waiting) >= MAX_NUM_QUEUED_REQS:
                self.loggers.record_admission_rejection("max_num_queued_reqs")   # the client gets a 503
                self.rejections += 1
                continue
            req.stats = vllm_stats.RequestStateStats(arrival_time=self.wall0 + req.arrival)
            req.events.append(EngineCoreEvent(EngineCoreEventType.QUEUED, req.arrival))
            self.waiting.append(req)

    def schedule(self, cache: object) -> dict[str, int]:
        """Token budget: running requests first, the newest preempted when a block is missing; then
        the queue, in order, while the cache has blocks for the next chunk."""
        budget, scheduled = TOKEN_BUDGET, {}
        for req in list(self.running):
            if req not in self.running or budget == 0:
                continue
            need = min(budget, req.to_compute())
            extra = math.ceil((req.computed + need) / BLOCK_SIZE) - req.blocks
            while extra > self.free_blocks() and self.running[-1] is not req:
                self.preempt(self.running[-1])
            if extra > self.free_blocks():
                continue
            req.blocks += extra
            scheduled[req.rid], budget = need, budget - need
        while self.waiting and budget > 0:
            req = self.waiting[0]
            req.computed = 0 if req.preempted else req.cached
            need = min(budget, req.to_compute())
            blocks = math.ceil((req.computed + need) / BLOCK_SIZE)
            if blocks > self.free_blocks():
                break
            self.waiting.popleft()
            self._record_lookup(cache, req)
            req.blocks = blocks
            req.events.append(EngineCoreEvent(EngineCoreEventType.SCHEDULED, self.now))
            self.running.append(req)
            scheduled[req.rid], budget = need, budget - need
        return scheduled

    def _record_lookup(self, cache: object, req: Req) -> None:
        hits = 0 if req.preempted else req.cached
        if self.prefix_cache_unit > 1:  # 0.8: whole blocks of the prompt looked up, and the blocks found
            cache.requests += 1
            cache.queries += req.prompt // self.prefix_cache_unit
            cache.hits += hits // self.prefix_cache_unit
        elif hasattr(cache, "record"):
            cache.record(num_tokens=req.prompt, num_hits=hits, preempted=req.preempted)
        else:  # before 0.11 the KV cache manager added to the fields itself
            cache.requests += 1
            cache.queries += req.prompt
            cache.hits += hits

    def preempt(self, victim: Req) -> None:
        """Free the newest request's blocks; it goes back to the head of the queue to recompute."""
        self.running.remove(victim)
        victim.preempted, victim.computed, victim.blocks = True, 0, 0
        victim.events.append(EngineCoreEvent(EngineCoreEventType.PREEMPTED, self.now))
        self.waiting.appendleft(victim)
        self.preemptions += 1

    def step(self) -> None:
        self.arrive()
        cache = vllm_stats.PrefixCacheStats()
        scheduled = self.schedule(cache)
        tokens = sum(scheduled.values())
        self.now += STEP_BASE_S + STEP_PER_TOKEN_S * tokens if tokens else 0.05
        iteration = vllm_stats.IterationStats()
        iteration.iteration_timestamp = self.wall0 + self.now
        for req in list(self.running):
            if req.rid in scheduled:
                req.computed += scheduled[req.rid]
                if req.to_compute() == 0:                # else a prefill chunk: no output yet
                    self.output(req, iteration)
        scheduler = _call(vllm_stats.SchedulerStats, num_running_reqs=len(self.running),
                          num_waiting_reqs=len(self.waiting),
                          kv_cache_usage=(NUM_GPU_BLOCKS - self.free_blocks()) / NUM_GPU_BLOCKS,
                          gpu_cache_usage=(NUM_GPU_BLOCKS - self.free_blocks()) / NUM_GPU_BLOCKS,
                          prefix_cache_stats=cache)
        self.loggers.record(scheduler_stats=scheduler, iteration_stats=iteration, engine_idx=0)

    def output(self, req: Req, iteration: object) -> None:
        """One new token of `req`, through the frontend's stats updates (output_processor.py)."""
        first = req.generated == 0
        req.generated += 1
        finish = None
        if req.generated >= req.max_tokens:
            finish = FinishReason.LENGTH
        elif req.generated >= req.output:
            finish = FinishReason[req.finish.upper()]
        output = EngineCoreOutput(request_id=req.rid, new_token_ids=[1000 + req.generated], finish_reason=finish,
                                  events=req.events or None)
        if first and hasattr(vllm_stats, "PrefillStats"):
            output.prefill_stats = vllm_stats.PrefillStats()
            output.prefill_stats.set(num_prompt_tokens=req.prompt, num_local_cached_tokens=req.cached,
                                     num_external_cached_tokens=0)
        req.events = []
        _call(iteration.update_from_output, output=output, engine_core_timestamp=self.now, is_prefilling=first,
              prompt_len=req.prompt, req_stats=req.stats, lora_stats=None, lora_states=_NoLoRA(), lora_name=None)
        if finish is not None:
            _call(iteration.update_from_finished_request, finish_reason=finish, request_id=req.rid,
                  num_prompt_tokens=req.prompt, max_tokens_param=req.max_tokens, req_stats=req.stats,
                  num_cached_tokens=req.cached)
            ParentRequest.observe_finished_request(None, iteration, req.stats.num_generation_tokens)
            self.running.remove(req)
            self.finished[str(finish)] += 1


class _NoLoRA:
    """The frontend's LoRA bookkeeping: no adapter is served."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


def engine_config(served: str, max_model_len: int, extra: dict | None = None):
    """vLLM's own config, from EngineArgs, for a local model directory with just a config.json."""
    model_dir = tempfile.mkdtemp(prefix="vllm-model-")
    LlamaConfig(architectures=["LlamaForCausalLM"], hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=4, vocab_size=32000,
                max_position_embeddings=max_model_len).save_pretrained(model_dir)
    fields = {f.name for f in dataclasses.fields(EngineArgs)}
    args = {"model": model_dir, "served_model_name": [served], "skip_tokenizer_init": True,
            "max_model_len": max_model_len, "max_num_batched_tokens": TOKEN_BUDGET}
    args.update(extra or {})
    if "max_num_queued_reqs" in fields:
        args["max_num_queued_reqs"] = MAX_NUM_QUEUED_REQS
    config = EngineArgs(**args).create_engine_config()
    # What the engine core reports back once its KV cache is allocated (core_client.py).
    cache = config.cache_config
    cache.num_gpu_blocks = NUM_GPU_BLOCKS
    if hasattr(cache, "kv_cache_size_tokens"):
        cache.kv_cache_size_tokens = NUM_GPU_BLOCKS * BLOCK_SIZE
        cache.kv_cache_max_concurrency = round(NUM_GPU_BLOCKS * BLOCK_SIZE / max_model_len, 2)
    return config


class _PerEngineLoggers:
    """vLLM 0.8's frontend loggers: a plain list per engine (setup_default_loggers), fed the same stats."""

    def __init__(self, loggers: list) -> None:
        self.loggers = loggers

    def record(self, scheduler_stats: object, iteration_stats: object, engine_idx: int = 0) -> None:
        for stat_logger in self.loggers:
            stat_logger.record(scheduler_stats=scheduler_stats, iteration_stats=iteration_stats)


def stat_loggers(config: object) -> object:
    """The frontend's stat loggers as AsyncLLM makes them in this release."""
    from vllm.v1.metrics import loggers

    if not hasattr(loggers, "StatLoggerManager"):
        return _PerEngineLoggers(loggers.setup_default_loggers(config, log_stats=True, engine_num=1)[0])
    manager = _call(loggers.StatLoggerManager, vllm_config=config, engine_idxs=[0])
    manager.log_engine_initialized()
    return manager


def mount_metrics(app: FastAPI) -> None:
    """vLLM's own /metrics mount and HTTP instrumentation, from wherever this release keeps it."""
    try:
        from vllm.entrypoints.serve.instrumentator.metrics import attach_router
    except ImportError:
        from vllm.entrypoints.openai.api_server import mount_metrics as attach_router
    attach_router(app)


def http_app() -> FastAPI:
    """The API server's routes that the workload's clients call (answers only; vLLM instruments them)."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    @app.post("/v1/completions")
    async def complete(status: int = 200) -> JSONResponse:
        return JSONResponse({"object": "text_completion"}, status_code=status)

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        return JSONResponse({"object": "list", "data": []})

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({})

    mount_metrics(app)
    return app


def main() -> None:
    engine = ENGINES[RELEASE]
    config = engine_config(engine["served"], engine["max_model_len"], engine.get("args"))
    core = EngineCore(stat_loggers(config), workload(engine["max_model_len"]), wall0=time.time() - 60,
                      prefix_cache_unit=engine.get("prefix_cache_unit", 1))
    while core.running or core.waiting or core.pending[0].arrival != LATE:
        core.step()
    for req in core.pending:
        req.arrival = core.now
    for _ in range(2):                                   # the burst: a batch and a queue
        core.step()
    client = TestClient(http_app())
    for i in range(len(core.finished) + 8):
        client.post("/v1/chat/completions" if i % 3 else "/v1/completions")
    client.post("/v1/completions?status=400")
    client.post("/v1/chat/completions?status=500")
    client.post("/v1/chat/completions?status=503")       # an admission rejection's answer
    client.get("/v1/models")
    client.get("/health")                                # excluded from the HTTP metrics
    page = client.get("/metrics")
    assert page.status_code == 200, page.status_code
    assert core.preemptions and core.waiting and core.running, "the workload must end with a queue and a batch"
    header = (
        f"# /metrics of vLLM {RELEASE} ({config.model_config.served_model_name}, max_model_len "
        f"{config.model_config.max_model_len}), recorded by tests/sim/data/record_vllm.py from vLLM's own\n"
        f"# metrics code on the CPU: {sum(core.finished.values())} finished requests "
        f"({', '.join(f'{k} {v}' for k, v in sorted(core.finished.items()))}), {core.preemptions} preemption(s), "
        f"{core.rejections} admission rejection(s),\n# {len(core.running)} running and {len(core.waiting)} waiting "
        f"at the end. Content-Type: {page.headers['content-type']}. vllm:cache_config_info carries the values of\n"
        f"# vLLM's CPU-platform config; the label names are the release's. The page follows this header unchanged.\n"
    )
    header += "".join(f"# {line}\n" for line in engine["why"].splitlines())
    assert not any(line.split()[1:2] in (["HELP"], ["TYPE"]) for line in header.splitlines()), "a comment, not HELP"
    out = HERE / f"vllm-{RELEASE}.prom"
    out.write_bytes(header.encode() + page.content)
    print(f"wrote {out} ({len(page.content)} bytes)")


if __name__ == "__main__":
    main()
