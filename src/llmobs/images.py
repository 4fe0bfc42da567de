"""Container images of the kit: the upstream pins, and local stand-ins where no registry answers.

The pins live in one place, the compose service files (`image: ${PROMETHEUS_IMAGE:-prom/prometheus:vX}`);
this module reads them from there. For each image variable it uses, in order: the value already in
the environment, the pinned upstream image if present locally or pullable, else a stand-in built from
Debian packages with the upstream interface (compose/standin/<name>/Dockerfile). Stand-ins are tagged
with a hash of what they are built from, so a second set-up finds them and builds nothing.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmobs import __version__
from llmobs.workspace import Workspace

BASE_UPSTREAM = "debian:bookworm-slim"
BASE_LOCAL = "llmobs/debian:bookworm"
SIM_VARIABLE = "LLMOBS_SIM_IMAGE"
SIM_IMAGE = f"llmobs/sim:{__version__}"
# Image variable -> stand-in directory under compose/standin (None: no stand-in can be built here).
STANDINS: dict[str, str | None] = {
    "PROMETHEUS_IMAGE": "prometheus",
    "ALERTMANAGER_IMAGE": "alertmanager",
    "NODE_EXPORTER_IMAGE": "node-exporter",
    "DCGM_EXPORTER_IMAGE": "dcgm-exporter",
    "GRAFANA_IMAGE": None,  # no Debian package, PyPI or npm source for a Grafana server
}
_PIN = re.compile(r"\$\{(?P<var>[A-Z0-9_]+_IMAGE):-(?P<image>[^}]+)\}")

Log = Callable[[str], None]


class ImageError(RuntimeError):
    pass


@dataclass(frozen=True)
class Resolved:
    variable: str
    image: str | None
    origin: str  # "environment", "local", "pulled", "stand-in", "built", or why it is absent


def pins(compose_dir: Path | None = None) -> dict[str, str]:
    """Image variable -> pinned upstream image, read from the compose files (the single source; default:
    those of the working directory's checkout)."""
    compose_dir = compose_dir or Workspace.find().compose_dir
    found: dict[str, str] = {}
    for path in sorted(compose_dir.rglob("*.yaml")):
        for match in _PIN.finditer(path.read_text(encoding="utf-8")):
            previous = found.setdefault(match["var"], match["image"])
            if previous != match["image"]:
                raise ImageError(f"{match['var']} is pinned to both {previous} and {match['image']}: "
                                 f"keep one pin ({path})")
    return found


def _docker(*args: str, check: bool = True, capture: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=check, capture_output=capture, text=True, **kwargs)


def present(image: str) -> bool:
    return _docker("image", "inspect", image, check=False).returncode == 0


def pullable(image: str) -> bool:
    """True when a registry answered with the image (fails fast when registries are unreachable)."""
    try:
        return _docker("pull", "--quiet", image, check=False, timeout=600).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _label(image: str, key: str) -> str | None:
    result = _docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{key}"}}}}', image, check=False)
    value = result.stdout.strip()
    return value if result.returncode == 0 and value not in ("", "<no value>") else None


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:12]


def _tree_bytes(root: Path, patterns: tuple[str, ...]) -> bytes:
    files = sorted(p for pattern in patterns for p in root.glob(pattern)
                   if p.is_file() and "__pycache__" not in p.parts)
    return b"".join(str(p.relative_to(root)).encode() + p.read_bytes() for p in files)


def _build(tag: str, context: Path, build_args: dict[str, str], source_hash: str, log: Log) -> None:
    args = ["build", "--quiet", "--tag", tag, "--label", f"org.llmobs.source-hash={source_hash}"]
    for key, value in build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    log(f"building {tag}")
    result = _docker(*args, str(context), check=False)
    if result.returncode != 0:
        raise ImageError(f"building {tag} failed:\n{result.stderr[-3000:]}")
    _remove_superseded(tag)


def _remove_superseded(tag: str) -> None:
    """The kit's images that a rebuild replaced: each is a few hundred MB that nothing uses any more.
    One that a container still runs stays (`docker image rm` refuses it)."""
    repository = tag.rpartition(":")[0]
    listed = _docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repository, check=False).stdout.split()
    if older := [name for name in listed if name != tag]:
        _docker("image", "rm", *older, check=False)
    _docker("image", "prune", "--force", "--filter", "label=org.llmobs.source-hash", check=False)


def base_image(log: Log) -> str:
    """A Debian bookworm image to build FROM: the registry's if it answers, else debootstrap's."""
    if present(BASE_UPSTREAM) or pullable(BASE_UPSTREAM):
        return BASE_UPSTREAM
    if present(BASE_LOCAL):
        return BASE_LOCAL
    if not shutil.which("debootstrap"):
        raise ImageError("no registry answers and debootstrap is missing: apt-get install debootstrap")
    log(f"no registry answers: building {BASE_LOCAL} with debootstrap (about a minute)")
    with tempfile.TemporaryDirectory(prefix="llmobs-rootfs-") as rootfs:
        mirror = os.environ.get("LLMOBS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", rootfs, mirror],
                       check=True, capture_output=True)
        # Drop the downloaded lists and packages, and date the lists directory at the epoch so
        # Ansible's apt `cache_valid_time` sees a stale cache and runs `apt-get update` first.
        root = Path(rootfs)
        for leftover in [*root.glob("var/lib/apt/lists/*_*"), *root.glob("var/cache/apt/archives/*.deb")]:
            leftover.unlink()
        os.utime(root / "var/lib/apt/lists", (0, 0))
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        _docker("import", "--change", 'CMD ["bash"]', "-", BASE_LOCAL, stdin=tar.stdout)
        tar.wait()
    return BASE_LOCAL


def _wheels(workspace: Workspace, log: Log) -> Path:
    """Wheels of the package and its dependencies for the image's Python (Debian 12: CPython 3.11)."""
    wheels = workspace.cache_dir / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    for old in wheels.glob("llm_observability_stack-*.whl"):
        old.unlink()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    arch = {"x86_64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[platform.machine()]
    log("collecting wheels for the simulator image")
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(workspace.root)], check=True,
                   capture_output=True)
    deps = subprocess.run(
        [*pip, "download", "-d", str(wheels), "--only-binary=:all:", "--python-version", "3.11",
         "--implementation", "cp", "--platform", f"manylinux_2_28_{arch}", "--platform", f"manylinux2014_{arch}",
         str(next(wheels.glob("llm_observability_stack-*.whl")))],
        capture_output=True, text=True,
    )
    if deps.returncode != 0:
        raise ImageError(f"downloading the simulator's dependencies from PyPI failed:\n{deps.stderr[-2000:]}")
    return wheels


def build_sim(base: str, log: Log, workspace: Workspace | None = None) -> str:
    workspace = workspace or Workspace.find()
    source_hash = _digest(_tree_bytes(workspace.root, ("pyproject.toml", "src/**/*")),
                          (workspace.compose_dir / "sim" / "Dockerfile").read_bytes(), base.encode())
    if present(SIM_IMAGE) and _label(SIM_IMAGE, "org.llmobs.source-hash") == source_hash:
        return SIM_IMAGE
    wheels = _wheels(workspace, log)
    with tempfile.TemporaryDirectory(prefix="llmobs-sim-") as context:
        shutil.copy(workspace.compose_dir / "sim" / "Dockerfile", context)
        shutil.copytree(wheels, Path(context) / "wheels")
        _build(SIM_IMAGE, Path(context), {"BASE_IMAGE": base}, source_hash, log)
    return SIM_IMAGE


def build_standin(name: str, base: str, sim: str, log: Log, workspace: Workspace) -> str:
    directory = workspace.compose_dir / "standin" / name
    extra = {}
    if name == "dcgm-exporter":
        # The stand-in exporter bakes the kit's counters CSV as its default, like the upstream image does.
        extra["default-counters.csv"] = workspace.compose_dir / "dcgm-exporter" / "counters.csv"
    parent = sim if name == "dcgm-exporter" else base
    parent_id = _docker("image", "inspect", "--format", "{{.Id}}", parent).stdout.strip()
    source_hash = _digest(_tree_bytes(directory, ("*",)), parent_id.encode(),
                          *(path.read_bytes() for path in extra.values()))
    tag = f"llmobs-standin/{name}:{source_hash}"
    if present(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix=f"llmobs-{name}-") as context:
        shutil.copytree(directory, context, dirs_exist_ok=True)
        for target, source in extra.items():
            shutil.copy(source, Path(context) / target)
        _build(tag, Path(context), {"BASE_IMAGE": base, "SIM_IMAGE": sim}, source_hash, log)
    return tag


def resolve(log: Log, workspace: Workspace) -> list[Resolved]:
    """Make every image of the kit available, building stand-ins where needed."""
    pinned = pins(workspace.compose_dir)
    missing = sorted(set(STANDINS) - set(pinned))
    if missing:
        raise ImageError(f"no compose file pins {', '.join(missing)}: add `image: ${{VAR:-<upstream>}}`")
    base = base_image(log)
    sim = build_sim(base, log, workspace)
    resolved = [Resolved(SIM_VARIABLE, sim, "built")]
    for variable, upstream in sorted(pinned.items()):
        if variable == SIM_VARIABLE:
            continue
        if os.environ.get(variable):
            resolved.append(Resolved(variable, os.environ[variable], "environment"))
        elif present(upstream):
            resolved.append(Resolved(variable, upstream, "local"))
        elif pullable(upstream):
            resolved.append(Resolved(variable, upstream, "pulled"))
        elif STANDINS.get(variable):
            standin = build_standin(STANDINS[variable], base, sim, log, workspace)
            resolved.append(Resolved(variable, standin, "stand-in"))
        else:
            resolved.append(Resolved(variable, None, f"{upstream} is not present and no registry answers"))
    return resolved


def write_env(resolved: list[Resolved], path: Path) -> None:
    lines = ["# Written by `llmobs setup`: the images this machine runs the kit with.\n"]
    for item in resolved:
        if item.image:
            lines.append(f"{item.variable}={item.image}\n")
        else:
            lines.append(f"# {item.variable} unavailable: {item.origin}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")


def read_env(path: Path | None = None) -> dict[str, str]:
    """The image variables `llmobs setup` chose (default: in the working directory's checkout); empty when
    set-up has not run."""
    path = path or Workspace.find().images_env
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#"))
    return {key: value for key, value in pairs}
