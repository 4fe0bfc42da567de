"""promtool, amtool, Alertmanager, Prometheus and node_exporter on the host: the pinned images' versions, not
the host release's.

They validate the generated configuration, run the rule unit tests and a live Alertmanager in the tests
(no container needed), the fleet benchmark's Prometheus and node_exporter page (llmobs.fleetbench), and
the OTLP gateway's relabeling check (vmagent).
Alertmanager's default templates go where Debian's build reads them, /usr/share/prometheus/alertmanager/.
Each comes from the Debian package that stands in for its image (the pin's comment in
compose/services/*.yaml); Prometheus 2.x's promtool runs the rule unit tests too, since the kit supports 2.x.
`llmobs setup` unpacks them into .cache/tools/<tool>-<Debian version>/<tool>, and links the image's version
into .cache/tools/bin/ (the test suite puts that directory first on PATH). A new pinned version gets a new
directory; old ones are removed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmobs import debian, images

TOOLS_DIR = images.CACHE_DIR / "tools"
BIN_DIR = TOOLS_DIR / "bin"
# Tool -> (the image whose version it must be, the Debian package that ships it, its name in the package).
TOOLS = {
    "promtool": ("PROMETHEUS_IMAGE", "promtool", "promtool"),
    "amtool": ("ALERTMANAGER_IMAGE", "prometheus-alertmanager", "amtool"),
    "alertmanager": ("ALERTMANAGER_IMAGE", "prometheus-alertmanager", "prometheus-alertmanager"),
    "prometheus": ("PROMETHEUS_IMAGE", "prometheus", "prometheus"),
    "node_exporter": ("NODE_EXPORTER_IMAGE", "prometheus-node-exporter", "prometheus-node-exporter"),
    "vmagent": ("VMAGENT_IMAGE", "victoria-metrics", "vmagent"),
}
# Files a tool reads from a fixed system path: Debian's Alertmanager loads its default notification
# templates from /usr/share/prometheus/alertmanager/, not from the binary as upstream's does.
SYSTEM_FILES = {"alertmanager": ("usr/share/prometheus/alertmanager/default.tmpl",
                                 "usr/share/prometheus/alertmanager/email.tmpl")}
SYSTEM_ROOT = Path("/")
# Older releases the tests also run on (the README supports Prometheus 2.x): trixie, the stable suite.
OLDER = (debian.Package("trixie", "promtool", "2.53.3+ds1-2", "llmobs.tools.OLDER"),)

Log = Callable[[str], None]


@dataclass(frozen=True)
class Tool:
    name: str
    package: debian.Package
    default: bool  # the version of the pinned image (linked into bin/)

    @property
    def version(self) -> str:
        return self.package.upstream_version

    @property
    def path(self) -> Path:
        return TOOLS_DIR / f"{self.name}-{self.package.version}" / self.name


def pinned(compose_dir: Path = images.COMPOSE_DIR) -> list[Tool]:
    """Every tool version the kit tests with, the image's own first."""
    packages = images.standin_packages(compose_dir)
    found = []
    for name, (variable, package_name, _) in TOOLS.items():
        matching = [p for p in packages.get(variable, ()) if p.name == package_name]
        if not matching:
            raise images.ImageError(f"the stand-in comment of {variable} must list the Debian package "
                                    f"{package_name} (it ships {name})")
        found.append(Tool(name, matching[0], default=True))
        found += [Tool(name, older, default=False) for older in OLDER if older.name == package_name]
    return found


def versions(name: str) -> list[Tool]:
    """The installed versions of one tool (empty before `llmobs setup`), the image's own first."""
    return [tool for tool in pinned() if tool.name == name and tool.path.is_file()]


def install(log: Log) -> list[Tool]:
    """Unpack each pinned tool into .cache/tools (once) and link the images' versions into bin/."""
    wanted = pinned()
    debs = debian.fetch([tool.package for tool in wanted], images.CACHE_DIR, log)
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    for tool in wanted:
        if not tool.path.is_file():
            tree = debian.unpack(tool.package, debs[tool.package], images.CACHE_DIR)
            tool.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(tree / "usr" / "bin" / TOOLS[tool.name][2], tool.path)  # 20-100 MB each: no second copy
            except OSError:
                shutil.copy2(tree / "usr" / "bin" / TOOLS[tool.name][2], tool.path)
        if tool.default:
            _install_system_files(tool, debs[tool.package])
        link = BIN_DIR / tool.name
        if tool.default and (not link.is_symlink() or link.resolve() != tool.path.resolve()):
            link.unlink(missing_ok=True)
            link.symlink_to(os.path.relpath(tool.path, BIN_DIR))
    keep = {tool.path.parent for tool in wanted} | {BIN_DIR}
    for stale in TOOLS_DIR.iterdir():
        if stale not in keep:
            shutil.rmtree(stale)
    return wanted


def _install_system_files(tool: Tool, deb: Path) -> None:
    """Put the package's copies of the files the tool reads from system paths in place (set-up runs as root).
    A copy already there (the host's own prometheus-alertmanager package) is left alone: it belongs to dpkg."""
    tree = debian.unpack(tool.package, deb, images.CACHE_DIR)
    for relative in SYSTEM_FILES.get(tool.name, ()):
        source, target = tree / relative, SYSTEM_ROOT / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def reported_version(path: Path) -> str:
    """What the binary itself says (`promtool, version 3.5.3+ds1 ...` -> 3.5.3+ds1)."""
    result = subprocess.run([str(path), "--version"], capture_output=True, text=True)
    return images.version_in(result.stdout + result.stderr)
