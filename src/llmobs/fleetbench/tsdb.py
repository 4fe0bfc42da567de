"""Loading the synthetic fleet into a real TSDB (promtool's backfill) and running the real Prometheus over it.

promtool memory-maps its OpenMetrics input and reads it once per block, so the input cannot be a FIFO: the
fleet is written in chunks of hosts, each backfilled into its own (overlapping) blocks while the next chunk
is generated, and deleted once loaded.
"""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmobs import http
from llmobs.errors import UnreachableError


@dataclass
class Backfill:
    """Chunks backfilled beside the generator, up to `parallel` promtool processes at once."""

    promtool: Path
    data: Path
    log: Callable[[str], None]
    parallel: int = 1
    running: list[tuple[subprocess.Popen, Path, float]] = field(default_factory=list)
    seconds: float = 0.0   # promtool's time, summed over the processes
    samples: int = 0

    def submit(self, chunk: Path, samples: int) -> None:
        while len(self.running) >= self.parallel:
            self._wait_one()
        self.samples += samples
        process = subprocess.Popen([str(self.promtool), "tsdb", "create-blocks-from", "openmetrics", str(chunk),
                                    str(self.data)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.running.append((process, chunk, time.perf_counter()))

    def wait(self) -> None:
        while self.running:
            self._wait_one()

    def _wait_one(self) -> None:
        process, chunk, started = self.running.pop(0)
        _, errors = process.communicate()
        self.seconds += time.perf_counter() - started
        if process.returncode:
            raise RuntimeError(f"promtool backfill of {chunk} failed: {errors.strip()[-2000:]}")
        chunk.unlink()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Prometheus:
    """A Prometheus 3.5 process on a loopback port over `data`, evaluating `rules` (none: no rule files)."""

    def __init__(self, binary: Path, workdir: Path, data: Path, evaluation_s: float, rules: list[Path] | None):
        self.binary, self.workdir, self.data = binary, workdir, data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {"global": {"scrape_interval": "15s", "evaluation_interval": f"{evaluation_s:g}s"},
                  "rule_files": [str(path) for path in rules or []]}
        self.config = workdir / ("prometheus-rules.yml" if rules else "prometheus-data.yml")
        self.config.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.process: subprocess.Popen | None = None
        self.log = workdir / "prometheus.log"

    def __enter__(self) -> Prometheus:
        with self.log.open("a", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [str(self.binary), f"--config.file={self.config}", f"--storage.tsdb.path={self.data}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=3650d",
                 "--query.max-samples=500000000", "--query.timeout=5m"],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Prometheus exited; see {self.log}")
            try:
                if http.request(f"{self.url}/-/ready", check=False, timeout=5).status == 200:
                    return self
            except UnreachableError:  # not listening yet
                pass
            time.sleep(0.5)
        raise RuntimeError(f"Prometheus not ready after 600 s; see {self.log}")

    def __exit__(self, *_: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def api(self, path: str, params: dict[str, Any] | None = None, timeout: float = 300) -> Any:
        body = http.request(http.url(self.url, path, params), timeout=timeout).json()
        return body["data"]

    def rss_bytes(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="utf-8")
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1]) * 1024

    def metric(self, name: str) -> list[tuple[dict[str, str], float]]:
        """Samples of one of Prometheus' own metrics, from its /metrics page."""
        page = http.request(f"{self.url}/metrics", timeout=60).text
        found = []
        for line in page.splitlines():
            if line.startswith(name + " "):
                found.append(({}, float(line.rpartition(" ")[2])))
            elif line.startswith(name + "{"):
                head, _, value = line.rpartition(" ")
                pairs = head[len(name) + 1:-1]
                labels = dict(part.split("=", 1) for part in pairs.split('",') if part)
                found.append(({k: v.strip('"') for k, v in labels.items()}, float(value)))
        return found


    def wait_compacted(self, timeout_s: float = 3600) -> float:
        """Wait until the TSDB has merged the backfill's overlapping blocks (promtool writes hundreds of small
        ones; Prometheus 3 merges them in its compaction cycle, a minute or two after its start): until no two
        blocks overlap in time. Queries over the unmerged blocks cost many times more. The seconds waited."""
        began = time.monotonic()
        while time.monotonic() - began < timeout_s and overlapping(self.data):
            time.sleep(5)
        return time.monotonic() - began


def overlapping(data: Path) -> bool:
    spans = []
    for meta in data.glob("*/meta.json"):
        try:
            block = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # being written or deleted by the compactor
            return True
        spans.append((block["minTime"], block["maxTime"]))
    spans.sort()
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))


def backfill_rules(prometheus: Prometheus, promtool: Path, rules: list[Path], start: float, end: float,
                   out: Path, evaluation_s: float) -> None:
    """promtool's rule backfill over [start, end) against the running `prometheus`, into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(promtool), "tsdb", "create-blocks-from", "rules", f"--start={int(start)}",
                    f"--end={int(end)}", f"--url={prometheus.url}", f"--output-dir={out}",
                    f"--eval-interval={evaluation_s:g}s", *map(str, rules)],
                   check=True, capture_output=True, text=True, timeout=3600)


def move_blocks(source: Path, data: Path) -> int:
    moved = 0
    for block in source.iterdir():
        if (block / "meta.json").exists():
            shutil.move(str(block), data / block.name)
            moved += 1
    return moved


def disk_bytes(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())
