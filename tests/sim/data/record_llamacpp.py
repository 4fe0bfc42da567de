"""Record the real llama.cpp server's answers: llamacpp-<version>.prom, -busy.prom and .json in this folder.

It builds compose/llamacpp (llama-server from Debian sid's llama.cpp-tools, with the kit's generated tiny
model baked in), runs it on a loopback port, sends it real OpenAI-compatible chat completions (streamed
and not) and writes what the server answered:

- `llamacpp-<version>.prom`: /metrics, verbatim, scraped once the load is over (the throughput gauges
  cover the requests since the scrape before, see docs/engines-llamacpp.md);
- `llamacpp-<version>-busy.prom`: /metrics, verbatim, scraped while three clients kept both slots busy
  and one request waiting;
- `llamacpp-<version>.json`: /health (loading and ready), /v1/models, /props, /slots, one chat completion
  and one stream, /metrics of a server started without `--metrics`, what an API key protects, the load
  that was sent, and the measured figures (also printed).

How to run, from the repository root (it uses Docker, so under the team's lock; a few minutes at most):

    flock /tmp/llmobs-docker.lock env PYTHONPATH=src /work/main/.venv/bin/python \\
        tests/sim/data/record_llamacpp.py --base-image llmobs/debian:sid

`--base-image` is a Debian sid image (`llmobs setup` builds one where no registry answers). `--image`
skips the build and records an image already built from compose/llamacpp. Containers are removed at
the end; the image built is kept under `--tag`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from llmobs.engines import llamacpp
from llmobs.engines.tiny_gguf import DEFAULT_MODEL

HERE = Path(__file__).resolve().parent
API_KEY = "recording-only-key"  # a throwaway key for the one container that shows what a key protects
PROMPTS = ("hello world", "What is the GPU doing?", "the model and the token", "Tell me about metrics.",
           "llama server engine", "Is it in the world?")


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        sys.exit(f"docker {' '.join(args[:2])} failed:\n{result.stderr[-3000:]}")
    return result


def _http(url: str, body: dict | None = None, headers: dict | None = None, timeout: float = 30.0):
    """(status, raw body) of a GET, or of a POST of `body` as JSON."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _content_type(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.headers["Content-Type"]


def _answer(status: int, raw: str) -> dict:
    try:
        return {"status": status, "body": json.loads(raw)}
    except json.JSONDecodeError:
        return {"status": status, "body": raw}


def build(base_image: str, tag: str) -> dict:
    """Build the image from a context of the Dockerfile and a freshly generated model."""
    with tempfile.TemporaryDirectory(prefix="llmobs-llamacpp-") as context:
        started = time.perf_counter()
        llamacpp.build_context(Path(context))
        generated = time.perf_counter() - started
        model = (Path(context) / llamacpp.MODEL_FILE).read_bytes()
        started = time.perf_counter()
        # No cache: the time measured is that of a first build (the packages' download included).
        _docker("build", "--no-cache", "--tag", tag, "--build-arg", f"{llamacpp.BASE_ARG}={base_image}", context)
        built = time.perf_counter() - started
    return {"model_generation_s": round(generated, 3), "image_build_s": round(built, 1),
            "model_bytes": len(model), "model_sha256": hashlib.sha256(model).hexdigest()}


@contextmanager
def serve(image: str, *run_args: str, command: tuple[str, ...] = ()):
    """A container of `image` published on an ephemeral loopback port: yields (base URL, container id)."""
    container = _docker("run", "--detach", "--publish", f"127.0.0.1::{llamacpp.PORT}", *run_args,
                        image, *command).stdout.strip()
    try:
        port = _docker("port", container, str(llamacpp.PORT)).stdout.split(":")[-1].strip()
        yield f"http://127.0.0.1:{port}", container
    except BaseException:
        print(_docker("logs", "--tail", "40", container, check=False).stderr[-4000:], file=sys.stderr)
        raise
    finally:
        _docker("rm", "--force", container, check=False)


def wait_ready(url: str, started: float, timeout: float = 60.0) -> dict:
    """Poll /health until it answers 200; keep the first other answer (the loading state), if caught."""
    loading = None
    while time.perf_counter() - started < timeout:
        try:
            status, raw = _http(f"{url}/health", timeout=2.0)
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.01)  # not listening yet
            continue
        if status == 200:
            return {"ready_s": round(time.perf_counter() - started, 2), "loading": loading,
                    "ready": _answer(status, raw)}
        loading = loading or _answer(status, raw)
        time.sleep(0.01)
    sys.exit(f"llama-server did not turn healthy within {timeout:.0f} s")


def chat(url: str, prompt: str, seed: int, stream: bool, max_tokens: int = 32) -> tuple[dict, int, list[str]]:
    """One chat completion: (request, completion tokens, raw response lines)."""
    request = {"model": DEFAULT_MODEL.name, "messages": [{"role": "user", "content": prompt}],
               "max_tokens": max_tokens, "seed": seed, "stream": stream}
    if stream:
        request["stream_options"] = {"include_usage": True}
    http = urllib.request.Request(f"{url}/v1/chat/completions", data=json.dumps(request).encode(),
                                  headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(http, timeout=120) as response:
        lines = [line.decode().rstrip("\n") for line in response]
    if not stream:
        return request, json.loads("".join(lines))["usage"]["completion_tokens"], lines
    events = [json.loads(line[len("data: "):]) for line in lines if line.startswith("data: {")]
    return request, next(event["usage"]["completion_tokens"] for event in events if event.get("usage")), lines


def load(url: str, clients: int, per_client: int, max_tokens: int = 32) -> dict:
    """`clients` threads, each sending `per_client` completions, alternately streamed and not."""
    tokens = [0] * clients

    def client(index: int) -> None:
        for n in range(per_client):
            seed = index * per_client + n
            tokens[index] += chat(url, PROMPTS[seed % len(PROMPTS)], seed, n % 2 == 1, max_tokens)[1]

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {"clients": clients, "requests": clients * per_client, "completion_tokens": sum(tokens),
            "wall_s": round(wall, 2), "tokens_per_s": round(sum(tokens) / wall, 1)}


def _gauge(text: str, name: str) -> float:
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(f"{name} "))


def busy_scrape(url: str, clients: int, per_client: int, max_tokens: int) -> tuple[str, dict]:
    """Load with more clients than slots while scraping; the scrape that saw the most work in flight."""
    best, samples, health, done = "", [], [], threading.Event()

    def scrape() -> None:
        nonlocal best
        while not done.is_set():
            text = _http(f"{url}/metrics")[1]
            sample = (_gauge(text, "llamacpp:requests_processing"), _gauge(text, "llamacpp:requests_deferred"))
            if not samples or sum(sample) > max(map(sum, samples)):
                best, health[:] = text, [_answer(*_http(f"{url}/health"))]
            samples.append(sample)
            time.sleep(0.05)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        figures = load(url, clients, per_client, max_tokens)
    finally:
        done.set()
        scraper.join()
    figures |= {"scrapes": len(samples), "max_requests_processing": max(s[0] for s in samples),
                "max_requests_deferred": max(s[1] for s in samples), "GET /health at that scrape": health[0]}
    return best, figures


def counters_mid_request(url: str, events_before_scrape: int = 40) -> dict:
    """When the token counters move: scraped before, during (mid-stream) and after one long request."""
    names = ("llamacpp:tokens_predicted_total", "llamacpp:prompt_tokens_total", "llamacpp:requests_processing")

    def scrape() -> dict:
        text = _http(f"{url}/metrics")[1]
        return {name: _gauge(text, name) for name in names}

    before, during, events = scrape(), None, 0
    request = {"messages": [{"role": "user", "content": PROMPTS[1]}], "max_tokens": 400, "seed": 7, "stream": True,
               "ignore_eos": True}
    http = urllib.request.Request(f"{url}/v1/chat/completions", data=json.dumps(request).encode(),
                                  headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(http, timeout=120) as response:
        for line in response:
            events += line.startswith(b"data: {")
            if events == events_before_scrape and during is None:
                during = scrape()
    return {"request": request, "stream_events": events, "before": before,
            f"after {events_before_scrape} stream events": during, "after the request": scrape()}


def memory(container: str) -> dict:
    """The container's memory now, and its peak (cgroup v1 or v2)."""
    now = _docker("stats", "--no-stream", "--format", "{{.MemUsage}}", container).stdout.strip()
    peak = _docker("exec", container, "cat", "/sys/fs/cgroup/memory/memory.max_usage_in_bytes",
                   check=False).stdout.strip()
    peak = peak or _docker("exec", container, "cat", "/sys/fs/cgroup/memory.peak", check=False).stdout.strip()
    return {"memory_now": now.split(" / ")[0], "memory_peak_mib": round(int(peak) / 2**20, 1) if peak else None}


def container_facts(container: str, started: float, timeout: float = 30.0) -> dict:
    """Who the server runs as, and when Docker's healthcheck first called the container healthy."""
    user, state = _docker("exec", container, "id").stdout.strip(), ""
    while time.perf_counter() - started < timeout:
        state = _docker("inspect", "--format", "{{.State.Health.Status}}", container).stdout.strip()
        if state == "healthy":
            return {"user": user, "docker_healthy_after_s": round(time.perf_counter() - started, 1)}
        time.sleep(0.5)
    sys.exit(f"Docker's healthcheck did not call the container healthy within {timeout:.0f} s (last: {state})")


def record_main(image: str) -> tuple[dict, str, str]:
    """The recording proper: (JSON answers and figures, idle exposition, busy exposition)."""
    started = time.perf_counter()
    with serve(image) as (url, container):
        health = wait_ready(url, started)
        answers = {"GET /health while loading": health["loading"], "GET /health": health["ready"]}
        _http(f"{url}/metrics")  # a scrape resets the throughput gauges: start from nothing
        for path in ("/v1/health", "/v1/models", "/props", "/slots"):
            answers[f"GET {path}"] = _answer(*_http(f"{url}{path}"))
        for stream in (False, True):
            request, _, lines = chat(url, PROMPTS[0], seed=1, stream=stream)
            body = [line for line in lines if line] if stream else json.loads("".join(lines))
            answers["POST /v1/chat/completions" + (" (stream)" if stream else "")] = {"request": request,
                                                                                        "body": body}
        answers["GET /metrics Content-Type"] = _content_type(f"{url}/metrics")
        answers["token counters around one long request"] = counters_mid_request(url)
        for _ in range(3):  # a queue shows only when three requests overlap at a scrape
            busy, busy_figures = busy_scrape(url, clients=3, per_client=8, max_tokens=96)
            if busy_figures["max_requests_deferred"] >= 1:
                break
        else:
            sys.exit("no scrape saw a request waiting for a slot: the busy recording would show no queue")
        _http(f"{url}/metrics")
        single = load(url, clients=1, per_client=8)
        idle = _http(f"{url}/metrics")[1]
        figures = {"server_start_s": health["ready_s"], "single_client": single, "three_clients": busy_figures,
                   **memory(container), **container_facts(container, started)}
        config = json.loads(_docker("inspect", "--format", "{{json .Config}}", container).stdout)
    figures["image_mib"] = round(int(_docker("image", "inspect", "--format", "{{.Size}}", image).stdout) / 2**20)
    return {"command": config["Entrypoint"] + config["Cmd"], "answers": answers, "measured": figures}, idle, busy


def record_options(image: str) -> tuple[dict, list[dict]]:
    """What changes with the options (no `--metrics`, an API key), and the loading answers caught."""
    answers, loading = {}, []
    command = ("--host", "0.0.0.0", "--port", str(llamacpp.PORT), "--model", f"/models/{llamacpp.MODEL_FILE}")
    with serve(image, "--entrypoint", "llama-server", command=command) as (url, _):
        loading.append(wait_ready(url, time.perf_counter())["loading"])
        answers["GET /metrics without --metrics"] = _answer(*_http(f"{url}/metrics"))
    with serve(image, "--env", f"LLAMA_API_KEY={API_KEY}") as (url, _):
        loading.append(wait_ready(url, time.perf_counter())["loading"])
        bearer = {"Authorization": f"Bearer {API_KEY}"}
        answers["with an API key"] = {
            "GET /health": _http(f"{url}/health")[0], "GET /v1/models": _http(f"{url}/v1/models")[0],
            "GET /metrics": _http(f"{url}/metrics")[0], "GET /metrics with the key": _http(f"{url}/metrics",
                                                                                           headers=bearer)[0]}
    return answers, loading


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-image", help="Debian sid image to build FROM")
    parser.add_argument("--image", help="an image already built from compose/llamacpp (skips the build)")
    parser.add_argument("--tag", default="llmobs/llamacpp:recording", help="tag of the image built")
    args = parser.parse_args()
    if not (args.image or args.base_image):
        parser.error("give --base-image (to build) or --image")
    print(f"building {args.tag} FROM {args.base_image}" if not args.image else f"recording {args.image}",
          file=sys.stderr)
    built = build(args.base_image, args.tag) if not args.image else {}
    image = args.image or args.tag
    recording, idle, busy = record_main(image)
    print("recorded the main server; now without --metrics and with an API key", file=sys.stderr)
    options, loading = record_options(image)
    recording["answers"] |= options
    # The model loads in a fraction of a second: keep the loading answer of whichever start caught one.
    answers = recording["answers"]
    answers["GET /health while loading"] = next(filter(None, [answers["GET /health while loading"], *loading]), None)
    version = llamacpp.upstream_version()
    recording = {"engine": "llama.cpp llama-server", "debian_package": f"llama.cpp-tools {llamacpp.pinned()}",
                 "libggml0": llamacpp.pinned("GGML_VERSION"), "model": asdict(DEFAULT_MODEL), **recording}
    recording["measured"] = built | recording["measured"]
    (HERE / f"llamacpp-{version}.prom").write_text(idle, encoding="utf-8")
    (HERE / f"llamacpp-{version}-busy.prom").write_text(busy, encoding="utf-8")
    (HERE / f"llamacpp-{version}.json").write_text(json.dumps(recording, indent=2, ensure_ascii=False) + "\n",
                                                   encoding="utf-8")
    print(json.dumps(recording["measured"], indent=2))


if __name__ == "__main__":
    main()
