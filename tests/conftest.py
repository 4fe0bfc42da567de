"""Fixtures shared by every area: the end-to-end lab, brought up once per test session.

`lab` is the compose project of compose/ under the name `llmobs-e2e-<pid>`, on ephemeral ports (it never
touches a developer's lab, nor another test session on the same machine), in `sim` mode: Prometheus,
Alertmanager, node_exporter, the alert sink, the four simulated GPU servers and Grafana when its image
exists. It mounts copies of the committed prometheus/ and alertmanager/ directories (so the configuration
tests can change them) and the committed counters CSV. It yields once every target is up and every
recording rule returns data, and is removed (with its volumes) at the end of the session; labs of killed
sessions are removed by the next one. An application instrumented with the OpenTelemetry SDK
(tests/genai_push.py) pushes GenAI metrics all along, so the llmobs.genai rules have data too: to Prometheus'
own OTLP receiver where it has one, else through the lab's OTLP gateway (compose/services/otlp-gateway.yaml:
the Debian stand-in has no receiver); `otlp_endpoint` says where. Where neither answers, those rules are left
out of the readiness and `otlp_missing` says why.
`lab_prometheus_url` and `lab_grafana` are shortcuts for other areas.

Under pytest-xdist (`-n 2 --dist loadgroup`, the suite's default) each test file runs whole on one worker,
so module fixtures such as a molecule campaign run once; every test that needs the lab, and the set-up
tests that rebuild its images, share one group, so one lab serves them all. The slow groups go first.
`figure` records a measured figure, printed in the run's summary (a worker's own output is not shown).
The summary also says what the run ran against: the versions that promtool, amtool and (when a test
used Docker) the Prometheus, Alertmanager and node_exporter images report themselves, Docker's and
Compose's. The pinned promtool and amtool (llmobs.tools) come first on PATH for every test.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from genai_push import GenAiApplication

from llmobs import http, images, tools
from llmobs.conventions import GENAI_GROUP, OTLP_GATEWAY_METRICS_PATH, OTLP_GATEWAY_SERVICE, OTLP_METRICS_PATH
from llmobs.files import make_readable
from llmobs.lab import PUBLISHED, Lab, LabError

REPO = Path(__file__).resolve().parents[1]
E2E_PREFIX = "llmobs-e2e-"
READY_TIMEOUT_S = 240
# The images of the services the lab starts in sim mode (Grafana only when its image exists).
LAB_IMAGES = ("PROMETHEUS_IMAGE", "ALERTMANAGER_IMAGE", "NODE_EXPORTER_IMAGE", "VMAGENT_IMAGE",
              images.SIM_VARIABLE, images.LLAMACPP_VARIABLE)
LAB_FIXTURES = {"lab", "lab_prometheus_url", "lab_grafana"}
LAB_GROUP = "lab"
# Groups that take minutes (mostly waiting on containers): started first so that they overlap.
SLOW_GROUPS = (LAB_GROUP, "tests/ha/test_ha.py", "tests/ansible/test_molecule.py",
               "tests/ansible/test_molecule_site.py", "tests/preflight/test_hostprep_molecule.py")

# The pinned promtool and amtool, not the host release's, for every test and every tool it starts.
if tools.BIN_DIR.is_dir():
    os.environ["PATH"] = f"{tools.BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"


def _group(item: pytest.Item) -> str:
    if LAB_FIXTURES & set(item.fixturenames) or item.path.name == "test_setup.py":
        return LAB_GROUP
    return item.path.relative_to(REPO).as_posix()


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook turns the markers into groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_group(item)))
    slow_first = {group: rank for rank, group in enumerate(SLOW_GROUPS)}
    items.sort(key=lambda item: slow_first.get(_group(item), len(SLOW_GROUPS)))  # stable: file order kept


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Fail loudly where xdist did not group: two workers would each start a lab and a molecule campaign."""
    if getattr(session.config.option, "loadgroup", False) and not all("@" in item.nodeid for item in session.items):
        raise pytest.UsageError("pytest-xdist did not tag the tests with their groups (a pytest/xdist version "
                                "mismatch?): install the versions pyproject.toml allows")


@pytest.fixture
def figure(record_property: Any) -> Any:
    """figure(text): a measured figure (timing, count) for the run's summary."""
    return lambda text: record_property("figure", text)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = [f"{report.nodeid.split('@')[0]}: {value}"
             for outcome in ("passed", "failed") for report in terminalreporter.stats.get(outcome, [])
             if report.when == "call" for name, value in report.user_properties if name == "figure"]
    if lines:
        terminalreporter.write_sep("=", "figures")
        for line in lines:
            terminalreporter.write_line(line)
    terminalreporter.write_sep("=", "versions used")
    for line in _versions_used(terminalreporter.stats):
        terminalreporter.write_line(line)


def _reported(tool: tools.Tool) -> str:
    """The binary's own version; Debian's victoria-metrics build reports none, so its package's then."""
    version = tools.reported_version(tool.path)
    return f"Debian {tool.package.version} (the binary reports no version)" if version == "no output" else version


def _versions_used(stats: dict[str, list[Any]]) -> list[str]:
    """What the binaries and images of this run say they are (asked, not read from the pins)."""
    lines = []
    for name in tools.TOOLS:
        found = [f"{_reported(tool)} ({tool.path.relative_to(REPO)})"
                 for tool in tools.pinned() if tool.name == name and tool.path.is_file()]
        lines.append(f"{name}: {', '.join(found) or 'not installed (`llmobs setup`)'}")
    # Containers only for a run that used Docker (such runs hold the team's Docker lock).
    used_docker = any("docker" in report.keywords for outcome in ("passed", "failed")
                      for report in stats.get(outcome, []) if report.when == "call")
    if not used_docker:
        return [*lines, "images, Docker Engine, Compose: not asked (no test of this run used Docker)"]
    running = images.running_versions({**images.pins(), **images.read_env()})
    return lines + [f"{component}: {version}" for component, version in running.items()]


def http_json(url: str, method: str = "GET", body: Any = None, timeout: float = 10) -> Any:
    return http.call_json(url, method, body, timeout=timeout)


@dataclass
class RunningLab:
    """The lab of this session, and what the tests need to talk to it."""

    lab: Lab
    config_root: Path      # holds the mounted copies: prometheus/, alertmanager/
    ready_at: float        # every target up and every recording rule with data
    otlp_endpoint: str | None = None  # where the application pushes: Prometheus' OTLP receiver or the gateway
    otlp_missing: str | None = None  # why nothing of the lab takes OTLP (then the GenAI rules have no data)
    application: GenAiApplication | None = None  # what pushes there

    def url(self, service: str) -> str:
        return self.lab.url(service)

    @staticmethod
    def call(url: str, method: str = "GET", body: Any = None) -> Any:
        return http_json(url, method, body)

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr, **({"time": f"{at:.3f}"} if at else {})}
        answer = http_json(f"{self.url('prometheus')}/api/v1/query?{urllib.parse.urlencode(params)}")
        return answer["data"]["result"]

    def query_range(self, expr: str, start: float, end: float, step: str = "10s") -> list[dict[str, Any]]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": step}
        answer = http_json(f"{self.url('prometheus')}/api/v1/query_range?{urllib.parse.urlencode(params)}")
        return answer["data"]["result"]

    def targets(self) -> list[dict[str, Any]]:
        return http_json(f"{self.url('prometheus')}/api/v1/targets?state=active")["data"]["activeTargets"]

    def notifications(self, since: float = 0) -> list[dict[str, Any]]:
        """What Alertmanager sent to the alert sink."""
        return http_json(f"{self.url('alert-sink')}/alerts?since={since}")

    def recorded_names(self) -> set[str]:
        names = set()
        for path in (self.config_root / "prometheus" / "rules").glob("*.yml"):
            for group in yaml.safe_load(path.read_text())["groups"]:
                if group["name"] == GENAI_GROUP and self.otlp_missing:
                    continue  # nothing can push the applications' metrics
                names.update(rule["record"] for rule in group["rules"] if "record" in rule)
        return names

    def not_ready(self) -> list[str]:
        """Why the lab is not ready yet (empty when it is)."""
        reasons = [f"target {t['labels']['job']} {t['labels']['instance']} is {t['health']}: {t['lastError']}"
                   for t in self.targets() if t["health"] != "up"]
        reasons += [f"recording rule {name} has no data" for name in sorted(self.recorded_names())
                    if not self.query(name)]
        return reasons

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while reasons := self.not_ready():
            if time.monotonic() > deadline:
                raise LabError("the lab did not get ready:\n  " + "\n  ".join(reasons[:20]))
            time.sleep(5)
        self.ready_at = time.time()


def _unavailable() -> str | None:
    """Why the lab cannot run here, or None."""
    if shutil.which("docker") is None:
        return "docker is not installed (`llmobs setup`)"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "Docker Engine does not answer (`llmobs setup` starts it)"
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        return "the Docker Compose v2 plugin is missing (`llmobs setup`)"
    missing = [path for path in ("prometheus/prometheus.yml", "alertmanager/alertmanager.yml",
                                 "compose/dcgm-exporter/counters.csv") if not (REPO / path).exists()]
    if missing:
        return f"generated files are missing: {', '.join(missing)} (`llmobs generate`)"
    chosen = {**images.pins(), **images.read_env()}
    absent = [chosen[variable] for variable in LAB_IMAGES if not images.present(chosen[variable])]
    if absent:
        return f"images are missing: {', '.join(absent)} (`llmobs setup` builds stand-ins)"
    return None


def _otlp_refusal(url: str) -> str | None:
    """Why `url` takes no OTLP push (an empty protobuf request is a valid one), or None."""
    request = urllib.request.Request(url, data=b"", method="POST", headers={"Content-Type": "application/x-protobuf"})
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except urllib.error.URLError as error:
        return f"it answers {getattr(error, 'code', None) or error.reason} to an OTLP push"
    return None


def _otlp_endpoint(lab: Lab) -> tuple[str | None, str | None]:
    """(Where the lab takes OTLP metrics, why nowhere): Prometheus' receiver, else the OTLP gateway."""
    native = lab.url("prometheus") + OTLP_METRICS_PATH
    refused = _otlp_refusal(native)
    if not refused:
        return native, None
    why = (f"its Prometheus has no OTLP receiver ({refused}: the stand-in, Debian's 3.5.3, is built"
           " without it: Debian #1080354; upstream's prom/prometheus has it, with --web.enable-otlp-receiver)")
    if OTLP_GATEWAY_SERVICE not in lab.services():
        return None, f"{why}, and the lab has no {OTLP_GATEWAY_SERVICE} service"
    gateway = lab.url(OTLP_GATEWAY_SERVICE) + OTLP_GATEWAY_METRICS_PATH
    refused = _otlp_refusal(gateway)
    return (None, f"{why}, and its {OTLP_GATEWAY_SERVICE}: {refused}") if refused else (gateway, None)


def _remove_abandoned_labs() -> None:
    """Labs of test sessions that were killed before their teardown (their process is gone)."""
    listed = subprocess.run(["docker", "compose", "ls", "--all", "--format", "json"], capture_output=True, text=True)
    for project in json.loads(listed.stdout or "[]"):
        pid = project["Name"].removeprefix(E2E_PREFIX)
        if project["Name"].startswith(E2E_PREFIX) and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            Lab(project=project["Name"]).down(volumes=True)


def _copy_config(root: Path) -> None:
    for name in ("prometheus", "alertmanager"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("tests"))
    make_readable(root)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLab]:
    reason = _unavailable()
    if reason:
        pytest.skip(f"no lab: {reason}")
    # The simulators run from the sim image: rebuild it if the package changed since (no-op otherwise).
    images.build_sim(images.base_image(print), print)
    root = tmp_path_factory.mktemp("lab-config")
    _copy_config(root)
    env = {variable: "0" for variable, _ in PUBLISHED.values()}
    env.update(LLMOBS_PROMETHEUS_CONFIG_DIR=str(root / "prometheus"),
               LLMOBS_ALERTMANAGER_CONFIG_DIR=str(root / "alertmanager"),
               GRAFANA_ADMIN_PASSWORD=secrets.token_urlsafe(18))
    _remove_abandoned_labs()
    lab = Lab(project=f"{E2E_PREFIX}{os.getpid()}", env=env)
    running = RunningLab(lab, root, 0.0)
    try:
        for note in lab.up():
            print(f"\nlab: {note}")
        # An application pushes its GenAI metrics over OTLP, so the llmobs.genai rules have data too.
        running.otlp_endpoint, running.otlp_missing = _otlp_endpoint(lab)
        if running.otlp_endpoint:
            running.application = GenAiApplication(running.otlp_endpoint).start()
        else:
            print(f"\nlab: no OTLP push: {running.otlp_missing}")
        running.wait_ready()
        yield running
    finally:
        if running.application:
            running.application.stop()
        if running.ready_at == 0.0:
            print(lab.compose("logs", "--tail", "30", check=False).stdout[-6000:])
        lab.down(volumes=True)


@pytest.fixture(scope="session")
def lab_prometheus_url(lab: RunningLab) -> str:
    return lab.url("prometheus")


@pytest.fixture(scope="session")
def lab_grafana(lab: RunningLab) -> tuple[str, str, str]:
    """(URL, user, password) of the lab's Grafana; skipped where its image is missing."""
    running, reason = lab.lab.grafana_available()
    if not running:
        pytest.skip(f"Grafana is not part of the lab here: {reason}")
    return lab.url("grafana"), "admin", lab.lab.env["GRAFANA_ADMIN_PASSWORD"]
