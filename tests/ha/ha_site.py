"""The two-monitoring-host site of the HA test, on one Compose project: a Prometheus HA pair (prom-a on
mon-a, prom-b on mon-b, the same configuration but for the replica), a two-peer Alertmanager cluster
(am-a, am-b), the long-term store (VictoriaMetrics, on mon-a), the lab's alert sink and one simulated GPU
server (gpu-t4-1, dcgm-exporter and one vLLM server).

Every configuration comes from the kit's own code (llmobs.deploy, what the Ansible roles deploy) and
every service from the kit's compose service files (`extends`), with short intervals so that the
campaign stays short. Each Prometheus reaches "its" Alertmanager as `alertmanager` (the name the role
gives the host's own Alertmanager): /etc/hosts of prom-a names am-a so, of prom-b am-b.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmobs import deploy, http, images, yamlfmt
from llmobs.errors import UnreachableError
from llmobs.files import write_tree

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "compose" / "services"
INTERVAL_S = 5  # scrape, evaluation and the store's deduplication interval
GPU_HOST = "gpu-t4-1"
ENGINE = "phi-3-mini-4k-instruct"
SINK_URL = "http://alert-sink:9095/alerts"
# remote_write retries fast here, so that a store outage is over in seconds (a fleet keeps the defaults).
QUEUE = {"min_backoff": "100ms", "max_backoff": "2s", "batch_send_deadline": "1s"}
TIMING = {"group_wait": "5s", "group_interval": "10s", "repeat_interval": "1h"}  # 1h: a repeat is a duplicate
PAIR = {"a": "mon-a", "b": "mon-b"}
EXTERNAL_LABELS = {"site": "ha-test"}
IMAGES = ("PROMETHEUS_IMAGE", "ALERTMANAGER_IMAGE", "VICTORIA_METRICS_IMAGE", images.SIM_VARIABLE)


def settings() -> dict[str, Any]:
    """The site's llmobs_settings: the alerts the campaign raises fire after 10 s, every notification
    goes to the alert sink. HostDown is off: with the exporter and the engine of the one GPU server down
    at once it would inhibit both alerts whose notifications are counted."""
    return {
        "alerting": {"rules": {"DcgmExporterDown": {"for": "10s"}, "VllmEngineDown": {"for": "10s"},
                               "HostDown": {"enabled": False}}},
        "alertmanager": {"receivers": {"alert-sink": [{"kind": "webhook", "url": SINK_URL}]},
                         "default_receiver": "alert-sink",
                         "timing": {severity: TIMING for severity in ("critical", "warning", "info")}},
    }


def inventory() -> list[dict[str, Any]]:
    monitoring = [{"name": host, "address": host, "gpu": False, "monitoring": True, "grafana": False,
                   "exporters": [], "addresses": {"prometheus": f"prom-{side}", "alertmanager": f"am-{side}"}}
                  for side, host in PAIR.items()]
    gpu = {"name": GPU_HOST, "address": GPU_HOST, "gpu": True, "monitoring": False, "exporters": ["dcgm"],
           "vllm_endpoints": [{"model": ENGINE, "port": 8000, "gpus": [0]}]}
    return [*monitoring, gpu]


def prometheus_options(side: str) -> dict[str, Any]:
    interval = f"{INTERVAL_S}s"
    return {"scrape": {"scrape_interval": interval, "scrape_timeout": "4s", "evaluation_interval": interval,
                       "job_intervals": {"dcgm": interval, "vllm": interval}},
            "external_labels": EXTERNAL_LABELS, "replica": {"replica": PAIR[side]},
            "store": {"host": "mon-a", "address": "victoria-metrics", "dedup_interval": interval,
                      "queue_config": QUEUE}}


def _service(file: str, service: str, **override: Any) -> dict[str, Any]:
    return {"extends": {"file": str(SERVICES / file), "service": service}, **override}


def compose_document(root: Path, subnet: str) -> dict[str, Any]:
    """The project: every service extends the kit's file; what differs is named here."""
    prefix = subnet.rsplit(".", 1)[0]
    addresses = {"a": f"{prefix}.11", "b": f"{prefix}.12"}
    services: dict[str, Any] = {}
    for side in PAIR:
        other = "b" if side == "a" else "a"
        services[f"prom-{side}"] = _service(
            "prometheus.yaml", "prometheus", hostname=f"prom-{side}",
            command=["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
                     "--web.listen-address=:9090", "--web.enable-lifecycle",
                     # `for` state restored after a restart however short the alert's `for`
                     "--rules.alert.for-grace-period=1s", "--rules.alert.resend-delay=5s"],
            volumes=[f"{root}/prometheus-{side}:/etc/prometheus:ro", f"prom-{side}-data:/prometheus"],
            extra_hosts=[f"alertmanager:{addresses[side]}"])
        services[f"am-{side}"] = _service(
            "alertmanager.yaml", "alertmanager", hostname=f"am-{side}",
            command=["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager",
                     "--web.listen-address=:9093", "--cluster.listen-address=0.0.0.0:9094",
                     f"--cluster.peer=am-{other}:9094", "--cluster.pushpull-interval=10s",
                     "--cluster.settle-timeout=10s", "--data.maintenance-interval=10s"],
            volumes=[f"{root}/alertmanager:/etc/alertmanager:ro", f"am-{side}-data:/alertmanager"],
            networks={"default": {"ipv4_address": addresses[side]}})
    services["victoria-metrics"] = _service(
        "victoria-metrics.yaml", "victoria-metrics",
        command=["-storageDataPath=/victoria-metrics-data", "-retentionPeriod=1", "-httpListenAddr=:8428",
                 f"-dedup.minScrapeInterval={INTERVAL_S}s", "-search.latencyOffset=0s"])
    services["alert-sink"] = _service("alert-sink.yaml", "alert-sink")
    # compose/services/gpu-t4-1.yaml, whose `extends` is relative to the lab's project directory
    services[GPU_HOST] = {"extends": {"file": str(REPO / "compose" / "sim" / "gpu-host.yaml"), "service": "gpu-host"},
                          "hostname": GPU_HOST, "command": ["sim", "host", "--host", GPU_HOST]}
    volumes = {f"{kind}-{side}-data": {} for kind in ("prom", "am") for side in PAIR}
    return {"services": services, "volumes": {**volumes, "victoria-metrics-data": {}},
            "networks": {"default": {"ipam": {"config": [{"subnet": subnet}]}}}}


def write_site(root: Path) -> tuple[Path, str]:
    """Every configuration file and the compose file under root; returns the compose file and its subnet."""
    for side in PAIR:
        write_tree(root / f"prometheus-{side}",
               deploy.prometheus_files(settings(), inventory(), PAIR[side], prometheus_options(side)))
    write_tree(root / "alertmanager", deploy.alertmanager_files(settings()))
    subnet = f"10.{random.randint(100, 250)}.{random.randint(0, 250)}.0/24"
    compose_file = root / "compose.yaml"
    header = "# The HA test's site (tests/ha/ha_site.py)\n"
    compose_file.write_text(yamlfmt.dump(compose_document(root, subnet), header), encoding="utf-8")
    return compose_file, subnet


PUBLISHED = {"prom-a": 9090, "prom-b": 9090, "am-a": 9093, "am-b": 9093, "victoria-metrics": 8428,
             "alert-sink": 9095, GPU_HOST: 9401}
PORT_VARIABLES = ("LLMOBS_PROMETHEUS_PORT", "LLMOBS_ALERTMANAGER_PORT", "LLMOBS_STORE_PORT", "LLMOBS_ALERT_SINK_PORT")


@dataclass
class Site:
    compose_file: Path
    project: str
    env: dict[str, str]
    urls: dict[str, str] = field(default_factory=dict)

    def compose(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        command = ["docker", "compose", "-f", str(self.compose_file), "-p", self.project,
                   "--profile", "sim", "--profile", "store", *args]
        result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **self.env},
                                timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"`docker compose {' '.join(args)}` failed:\n{result.stderr[-3000:]}")
        return result

    def up(self, *services: str) -> None:
        self.compose("up", "-d", "--wait", *services)
        for service in services or PUBLISHED:
            port = self.compose("port", service, str(PUBLISHED[service])).stdout.strip().rsplit(":", 1)[1]
            self.urls[service] = f"http://127.0.0.1:{port}"

    def stop(self, *services: str) -> float:
        self.compose("stop", "-t", "10", *services)
        return time.time()

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", check=False)

    def call(self, service: str, path: str, method: str = "GET", body: Any = None, **params: Any) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return http.call_json(f"{self.urls[service]}{path}{query}", method, body, timeout=10)

    def samples(self, service: str, selector: str, start: float, end: float) -> dict[str, list[float]]:
        """Raw sample timestamps per series of `selector` in [start, end] (a range selector, never a step),
        each series named by its labels without the external ones (which only the store's copy carries)."""
        window = max(1, round(end - start))
        answer = self.call(service, "/api/v1/query", query=f"{selector}[{window}s]", time=f"{end:.3f}")
        series = {}
        for found in answer["data"]["result"]:
            labels = {k: v for k, v in found["metric"].items() if k not in EXTERNAL_LABELS}
            series[json.dumps(labels, sort_keys=True)] = [float(t) for t, _ in found["values"]]
        return series

    def alerts(self, service: str) -> list[dict[str, Any]]:
        return self.call(service, "/api/v1/alerts")["data"]["alerts"]

    def notifications(self, alertname: str, status: str = "firing", since: float = 0) -> list[dict[str, Any]]:
        """The alert sink's notifications (webhook posts) of `alertname`'s group with that status."""
        posts = self.call("alert-sink", "/alerts", since=since)
        return [p for p in posts if p["groupLabels"].get("alertname") == alertname and p["status"] == status]


def wait_for(what: str, check: Any, timeout: float, every: float = 1.0) -> Any:
    """check()'s first truthy value; AssertionError naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (UnreachableError, http.HttpError, OSError, KeyError) as error:  # a service restarting
            last = error
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {str(last)[:500]})")
