"""Build the TensorRT-LLM 1.2.1 `trtllm-serve` `/prometheus/metrics` fixture from the source's metric definitions.

TensorRT-LLM cannot run here: PyPI's `tensorrt-llm==1.2.1` is a stub that downloads the wheel from NVIDIA's own
index, and the engine needs a GPU. So this script does not record anything. It declares the five metrics of
`tensorrt_llm/metrics/collector.py` as 1.2.x defines them (names, HELP, label names, buckets; see
docs/engines-upstream.md for the source and why these are the 1.2.1 ones), keeps them as trtllm-serve does
(prometheus_client multiprocess mode, `OpenAIServer.mount_metrics`: a `MultiProcessCollector` registry behind
`/prometheus/metrics`, nothing else in it), and feeds them the way `MetricsCollector.log_metrics_dict` does: one
`request_success_total` sample per request that finished with a reason (a cancelled request has none and is not
counted), and each latency histogram only when its value is non-zero. The label values are the ones 1.2.x
hard-codes in `OpenAIServer._init_llm`: `model_name="undefined"`, `engine_type="undefined"`.

Run it with any Python that has prometheus_client (the kit's own virtualenv will do):

    /work/main/.venv/bin/python tests/sim/data/build_trtllm.py tests/sim/data/trtllm-1.2.1.prom
"""

from __future__ import annotations

import importlib.metadata
import os
import random
import sys
import tempfile
from pathlib import Path

REQUEST_LATENCY = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
                   480.0, 960.0, 1920.0, 7680.0]
TTFT = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
        160.0, 640.0, 2560.0]
TPOT = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0]
LABELS = {"model_name": "undefined", "engine_type": "undefined"}
HEADER = """\
# TensorRT-LLM 1.2.1 trtllm-serve /prometheus/metrics: BUILT FROM THE SOURCE'S METRIC DEFINITIONS, NOT RECORDED.
# No GPU or engine ran: the names, types, HELP, labels and buckets are those of tensorrt_llm/metrics/collector.py
# (NVIDIA/TensorRT-LLM@89fd9b74ab7ae753b4c6b3db25a400dca7ea54a0, the collector before PR #11243 added the trtllm_
# prefix and the KV-cache gauges in 1.3.0rc5), with the label values of tensorrt_llm/serve/openai_server.py
# (OpenAIServer._init_llm) and its multiprocess /prometheus/metrics mount (mount_metrics); the values come from a
# synthetic workload. Built by tests/sim/data/build_trtllm.py with prometheus_client {version}; see
# docs/engines-upstream.md. Everything below this header is the exposition as prometheus_client renders it.
"""


def build(rng: random.Random) -> str:
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

    label_names = list(LABELS)
    success = Counter("request_success_total", "Count of successfully processed requests.",
                      [*label_names, "finished_reason"])
    e2e = Histogram("e2e_request_latency_seconds", "Histogram of end to end request latency in seconds.",
                    label_names, buckets=REQUEST_LATENCY)
    ttft = Histogram("time_to_first_token_seconds", "Histogram of time to first token in seconds.",
                     label_names, buckets=TTFT)
    tpot = Histogram("time_per_output_token_seconds", "Histogram of time per output token in seconds.",
                     label_names, buckets=TPOT)
    queue = Histogram("request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.",
                      label_names, buckets=REQUEST_LATENCY)
    for _ in range(64):  # Llama-3.1-8B on one H100: chat requests, a few cut at max_tokens, two cancelled
        if rng.random() < 0.03:
            continue  # cancelled (client disconnect): finish_reason stays unset, log_metrics_dict records nothing
        tokens = int(rng.lognormvariate(5.0, 0.6))
        reason = "length" if tokens >= 512 else "stop"
        tokens = min(tokens, 512)
        queued = rng.choice([0.0004, 0.0009, 0.002]) if rng.random() < 0.85 else rng.uniform(0.3, 2.2)
        first = queued + rng.uniform(0.025, 0.09) + rng.random() * 0.2
        per_token = rng.uniform(0.007, 0.016)
        success.labels(**LABELS, finished_reason=reason).inc()
        for histogram, value in ((e2e, first + per_token * (tokens - 1)), (ttft, first), (tpot, per_token),
                                 (queue, queued)):
            histogram.labels(**LABELS).observe(value)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry).decode()


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # before prometheus_client is imported, as trtllm-serve
        body = build(random.Random(121))
    out.write_text(HEADER.format(version=importlib.metadata.version("prometheus_client")) + body)
    print(f"{out}: {len(body.splitlines())} lines", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("trtllm-1.2.1.prom"))
