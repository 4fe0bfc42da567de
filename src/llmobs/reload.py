"""Change a running Prometheus' or Alertmanager's configuration safely: validate, then put in place, then reload.

The new files are staged inside the service's own config directory (which the container mounts), so the
staged tree resolves its relative paths (rules/, targets/, templates/) like the live one; the service's own
checker (promtool, amtool) runs on it inside the running container, i.e. the exact version that would load
it. Only when it passes are the files moved into place (one rename each) and the lifecycle endpoint asked
to reload. A rejected configuration changes nothing: the service keeps running what it had.
Used by `llmobs lab reload` and the lab's tests; the Ansible roles validate the same way in their own tasks.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from llmobs import http
from llmobs.errors import ConfigError, UnreachableError
from llmobs.files import write_atomic, write_tree


@dataclass(frozen=True)
class Service:
    main_file: str
    check: tuple[str, ...]   # the checker, run in the container with the staged main file appended


SERVICES = {
    "prometheus": Service("prometheus.yml", ("promtool", "check", "config")),
    "alertmanager": Service("alertmanager.yml", ("amtool", "check-config")),
}
STAGING = ".staging"


def _staged_tree(config_dir: Path, files: dict[str, str]) -> Path:
    """config_dir/.staging: a copy of the live tree with `files` written over it."""
    staging = config_dir / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(config_dir, staging, ignore=shutil.ignore_patterns(STAGING))
    write_tree(staging, files)
    return staging


def validate(service: str, config_dir: Path, files: dict[str, str], container: str, mount: str) -> str:
    """Run the service's checker in `container` on the staged configuration; returns its report.

    `mount` is where the container sees `config_dir` (e.g. /etc/prometheus). Raises ConfigError when the
    configuration is rejected; the staged copy is removed either way.
    """
    spec = SERVICES[service]
    for relative in files:
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            raise ConfigError(relative, "is not a path inside the config directory", "give it relative to it")
    staging = _staged_tree(config_dir, files)
    try:
        result = subprocess.run(["docker", "exec", container, *spec.check, f"{mount}/{STAGING}/{spec.main_file}"],
                                capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report = (result.stdout + result.stderr).replace(f"{mount}/{STAGING}/", f"{mount}/")
    if result.returncode != 0:
        raise ConfigError(service, f"{spec.check[0]} rejected the new configuration:\n{report.strip()}",
                          "fix it; the running configuration is unchanged")
    return report


def _install(config_dir: Path, files: dict[str, str]) -> dict[Path, bytes | None]:
    """Move each file into place with one rename; returns what was there before (None: nothing)."""
    previous: dict[Path, bytes | None] = {}
    for relative, text in files.items():
        path = config_dir / relative
        previous[path] = path.read_bytes() if path.exists() else None
        write_atomic(path, text)
    return previous


def _restore(previous: dict[Path, bytes | None]) -> None:
    for path, content in previous.items():
        if content is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(content)


def reload(url: str) -> None:
    """POST /-/reload; raises ConfigError with the service's answer when it refuses, UnreachableError
    when it does not answer."""
    try:
        http.request(http.url(url, "/-/reload"), "POST", timeout=30,
                     hint="is the service up and started with its lifecycle endpoint enabled?")
    except http.HttpError as error:
        detail = error.response.text.strip()
        raise ConfigError("reload", f"{url} refused the new configuration: {detail or error}",
                          "the previous files were restored; fix the configuration") from None


def apply(service: str, config_dir: Path, files: dict[str, str], *, container: str, mount: str, url: str) -> str:
    """Validate `files` (paths relative to `config_dir`), put them in place, reload; returns the checker's
    report. On a rejection nothing is written; if the reload itself fails the previous files come back."""
    if service not in SERVICES:
        raise ConfigError("service", f"unknown service {service!r}", f"use one of {', '.join(SERVICES)}")
    report = validate(service, config_dir, files, container, mount)
    previous = _install(config_dir, files)
    try:
        reload(url)
    except (ConfigError, UnreachableError):
        _restore(previous)
        raise
    return report
