"""Container images of the kit: the upstream pins, and local stand-ins where no registry answers.

The pins live in one place, the compose service files (`image: ${PROMETHEUS_IMAGE:-prom/prometheus:vX}`);
this module reads them from there. For each image variable it uses, in order: the value already in
the environment, the pinned upstream image if present locally or pullable, else a stand-in built from
Debian packages with the upstream interface (compose/standin/<name>/Dockerfile). The comment above each
pin names the Debian packages, suite and exact version, that stand in for it (`# Stand-in where no
registry answers: Debian sid prometheus=3.5.3+ds1-6 ...`): set-up fetches exactly those (llmobs.debian)
and copies their binaries into the image. Stand-ins are tagged with a hash of what they are built from
(Dockerfile, base image, package versions), so a second set-up finds them and builds nothing, and a new
package version gives a new tag.
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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmobs import __version__, debian
from llmobs.workspace import Workspace

# The checkout this process works in ($LLMOBS_ROOT or the working directory's, llmobs.workspace): the CLI,
# the tests and the Ansible controller run inside it; a copy installed without one (the simulator image)
# never reads these paths.
WORKSPACE = Workspace.find_or_cwd()
REPO = WORKSPACE.root
COMPOSE_DIR = WORKSPACE.compose_dir
CACHE_DIR = WORKSPACE.cache_dir
IMAGES_ENV = WORKSPACE.images_env

BASE_SUITE = "bookworm"
SIM_VARIABLE = "LLMOBS_SIM_IMAGE"
SIM_IMAGE = f"llmobs/sim:{__version__}"
# The lab's real engine, llama.cpp's llama-server (compose/llamacpp/Dockerfile): built here, never pulled.
LLAMACPP_VARIABLE = "LLMOBS_LLAMACPP_IMAGE"
LLAMACPP_REPOSITORY = "llmobs/llamacpp"
# The line compose/llamacpp/Dockerfile prints when the mirror no longer has a pinned package.
_MISSING_PACKAGE = re.compile(r"ERROR: the Debian mirror has no .*")
# Image variable -> stand-in directory under compose/standin (None: no stand-in can be built here).
STANDINS: dict[str, str | None] = {
    "PROMETHEUS_IMAGE": "prometheus",
    "ALERTMANAGER_IMAGE": "alertmanager",
    "NODE_EXPORTER_IMAGE": "node-exporter",
    "DCGM_EXPORTER_IMAGE": "dcgm-exporter",
    "VICTORIA_METRICS_IMAGE": "victoria-metrics",  # the long-term store (profile store)
    "VMAGENT_IMAGE": "vmagent",  # the OTLP gateway (compose/services/otlp-gateway.yaml), from the same package
    "GRAFANA_IMAGE": None,  # no Debian package, PyPI or npm source for a Grafana server
    # Traces (profile tracing): no Debian package; PyPI's one Collector wheel has no OTLP receiver.
    "OTELCOL_IMAGE": None,
    "JAEGER_IMAGE": None,
}
_PIN = re.compile(r"\$\{(?P<var>[A-Z0-9_]+_IMAGE):-(?P<image>[^}]+)\}")
_STANDIN_PACKAGES = re.compile(r"#\s*Stand-in where no registry answers: Debian (?P<suite>[a-z-]+) (?P<packages>.+)\n"
                               r"\s*image: \$\{(?P<var>[A-Z0-9_]+_IMAGE):-")
# The images' own binaries, asked for their versions (the test run reports what it really ran).
VERSION_PROBES = {"Prometheus": ("PROMETHEUS_IMAGE", "/bin/prometheus"),
                  "Alertmanager": ("ALERTMANAGER_IMAGE", "/bin/alertmanager"),
                  "node_exporter": ("NODE_EXPORTER_IMAGE", "/bin/node_exporter")}
# Images built here carry the checkout they were built from: a set-up removes only what it replaced
# itself, never the images of another clone sharing the Docker daemon.
CHECKOUT_LABEL = "org.llmobs.checkout"

Log = Callable[[str], None]


class ImageError(RuntimeError):
    pass


@dataclass(frozen=True)
class Resolved:
    variable: str
    image: str | None
    origin: str  # "environment", "local", "pulled", "stand-in", "kit's own", or why it is absent


def pins(compose_dir: Path = COMPOSE_DIR) -> dict[str, str]:
    """Image variable -> pinned upstream image, read from the compose files (the single source)."""
    found: dict[str, str] = {}
    for path in sorted(compose_dir.rglob("*.yaml")):
        for match in _PIN.finditer(path.read_text(encoding="utf-8")):
            previous = found.setdefault(match["var"], match["image"])
            if previous != match["image"]:
                raise ImageError(f"{match['var']} is pinned to both {previous} and {match['image']}: "
                                 f"keep one pin ({path})")
    return found


def standin_packages(compose_dir: Path = COMPOSE_DIR) -> dict[str, tuple[debian.Package, ...]]:
    """Image variable -> the Debian packages its stand-in is built from, read from the pins' comments."""
    found: dict[str, tuple[debian.Package, ...]] = {}
    for path in sorted(compose_dir.rglob("*.yaml")):
        for match in _STANDIN_PACKAGES.finditer(path.read_text(encoding="utf-8")):
            where = path.relative_to(compose_dir.parent).as_posix()
            pairs = [item.partition("=") for item in match["packages"].split()]
            if not pairs or any(not name or not version for name, _, version in pairs):
                raise ImageError(f"{where}: write the stand-in's packages as `Debian <suite> name=version ...`, "
                                 f"got {match['packages']!r}")
            found[match["var"]] = tuple(debian.Package(match["suite"], name, version, str(where))
                                        for name, _, version in pairs)
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


def _build(tag: str, context: Path, build_args: dict[str, str], source_hash: str, log: Log,
           quiet: bool = True) -> None:
    """`docker build`; quiet=False keeps the steps' output (the classic builder's `--quiet` drops even a
    failed step's), for the error message."""
    args = ["build", *(["--quiet"] if quiet else []), "--tag", tag, "--label", f"org.llmobs.source-hash={source_hash}",
            "--label", f"{CHECKOUT_LABEL}={REPO}"]
    for key, value in build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    log(f"building {tag}")
    result = _docker(*args, str(context), check=False)
    if result.returncode != 0:
        raise ImageError(f"building {tag} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    _remove_superseded(tag)


def _remove_superseded(tag: str) -> None:
    """The images of this checkout that a rebuild replaced: each is a few hundred MB that nothing uses any
    more. One that a container still runs stays (`docker image rm` refuses it); other clones' stay too."""
    repository = tag.rpartition(":")[0]
    ours = f"label={CHECKOUT_LABEL}={REPO}"
    listed = _docker("image", "ls", "--filter", ours, "--format", "{{.Repository}}:{{.Tag}}", repository,
                     check=False).stdout.split()
    if older := [name for name in listed if name != tag]:
        _docker("image", "rm", *older, check=False)
    _docker("image", "prune", "--force", "--filter", ours, check=False)


def base_image(log: Log, suite: str = BASE_SUITE) -> str:
    """A Debian image of `suite` to build FROM: the registry's if it answers, else one made with debootstrap
    (tagged llmobs/debian:<suite>). Images whose packages need a newer libc than bookworm's (sid's
    llama.cpp-tools, say) build FROM base_image(log, "sid")."""
    upstream, local = f"debian:{suite}-slim", f"llmobs/debian:{suite}"
    if present(upstream) or pullable(upstream):
        return upstream
    if present(local):
        return local
    if not shutil.which("debootstrap"):
        raise ImageError("no registry answers and debootstrap is missing: apt-get install debootstrap")
    log(f"no registry answers: building {local} with debootstrap (about a minute)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="llmobs-rootfs-") as rootfs:
        bootstrap = subprocess.run(["debootstrap", "--variant=minbase", f"--keyring={debian.KEYRING}", suite,
                                    rootfs, debian.mirror()], capture_output=True, text=True)
        if bootstrap.returncode != 0:
            raise ImageError(f"debootstrap of Debian {suite} failed:\n"
                             f"{bootstrap.stdout[-2000:]}{bootstrap.stderr[-1000:]}")
        # Drop the downloaded lists and packages, and date the lists directory at the epoch so
        # Ansible's apt `cache_valid_time` sees a stale cache and runs `apt-get update` first.
        root = Path(rootfs)
        for leftover in [*root.glob("var/lib/apt/lists/*_*"), *root.glob("var/cache/apt/archives/*.deb")]:
            leftover.unlink()
        os.utime(root / "var/lib/apt/lists", (0, 0))
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        _docker("import", "--change", 'CMD ["bash"]', "--change", f"LABEL {CHECKOUT_LABEL}={REPO}", "-", local,
                stdin=tar.stdout)
        tar.wait()
    log(f"built {local} ({time.monotonic() - started:.0f} s)")
    return local


def _wheels(log: Log) -> Path:
    """Wheels of the package and its dependencies for the image's Python (Debian 12: CPython 3.11)."""
    wheels = CACHE_DIR / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    for old in wheels.glob("llm_observability_stack-*.whl"):
        old.unlink()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    arch = {"x86_64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[platform.machine()]
    log("collecting wheels for the simulator image")
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(REPO)], check=True, capture_output=True)
    deps = subprocess.run(
        [*pip, "download", "-d", str(wheels), "--only-binary=:all:", "--python-version", "3.11",
         "--implementation", "cp", "--platform", f"manylinux_2_28_{arch}", "--platform", f"manylinux2014_{arch}",
         str(next(wheels.glob("llm_observability_stack-*.whl")))],
        capture_output=True, text=True,
    )
    if deps.returncode != 0:
        raise ImageError(f"downloading the simulator's dependencies from PyPI failed:\n{deps.stderr[-2000:]}")
    return wheels


def build_sim(base: str, log: Log) -> str:
    source_hash = _digest(_tree_bytes(REPO, ("pyproject.toml", "src/**/*")),
                          (COMPOSE_DIR / "sim" / "Dockerfile").read_bytes(), base.encode())
    if present(SIM_IMAGE) and _label(SIM_IMAGE, "org.llmobs.source-hash") == source_hash:
        return SIM_IMAGE
    wheels = _wheels(log)
    with tempfile.TemporaryDirectory(prefix="llmobs-sim-") as context:
        shutil.copy(COMPOSE_DIR / "sim" / "Dockerfile", context)
        shutil.copytree(wheels, Path(context) / "wheels")
        _build(SIM_IMAGE, Path(context), {"BASE_IMAGE": base}, source_hash, log)
    return SIM_IMAGE


def build_llamacpp(log: Log) -> str:
    """llama-server from Debian sid's llama.cpp-tools with the kit's tiny model baked in, tagged with a hash of
    what it is built from (the Dockerfile, the model generator, the gguf release, the sid base), so a second
    set-up builds nothing. A pinned package that sid dropped stops the build with the Dockerfile's message."""
    from importlib.metadata import version

    from llmobs.engines import llamacpp  # numpy and gguf: only when this image is built

    base = base_image(log, "sid")
    base_id = _docker("image", "inspect", "--format", "{{.Id}}", base).stdout.strip()
    source_hash = _digest(llamacpp.DOCKERFILE.read_bytes(), _tree_bytes(REPO / "src" / "llmobs" / "engines", ("*.py",)),
                          version("gguf").encode(), base_id.encode())
    tag = f"{LLAMACPP_REPOSITORY}:{llamacpp.upstream_version()}-{source_hash}"
    if present(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="llmobs-llamacpp-") as context:
        llamacpp.build_context(Path(context))
        started = time.monotonic()
        try:
            _build(tag, Path(context), {llamacpp.BASE_ARG: base}, source_hash, log, quiet=False)
        except ImageError as error:
            missing = _MISSING_PACKAGE.search(str(error))
            if missing:
                raise ImageError(f"cannot build the lab's llama.cpp server: {missing[0]}") from None
            raise
        log(f"built {tag} ({time.monotonic() - started:.0f} s)")
    return tag


def _unpack_into(rootfs: Path, packages: tuple[debian.Package, ...], log: Log) -> None:
    """The packages' files under rootfs/, hard-linked from the cache (the binaries are 20-100 MB each)."""
    trees = [debian.unpack(package, deb, CACHE_DIR) for package, deb in debian.fetch(packages, CACHE_DIR, log).items()]
    try:
        for tree in trees:
            shutil.copytree(tree, rootfs, symlinks=True, dirs_exist_ok=True, copy_function=os.link)
    except (OSError, shutil.Error):  # another filesystem: copy (never write through a link into the cache)
        shutil.rmtree(rootfs, ignore_errors=True)
        for tree in trees:
            shutil.copytree(tree, rootfs, symlinks=True, dirs_exist_ok=True)


def build_standin(name: str, base: str, sim: str, log: Log, packages: tuple[debian.Package, ...] = ()) -> str:
    """The stand-in image of compose/standin/<name>, its Debian packages unpacked in the context's rootfs/."""
    directory = COMPOSE_DIR / "standin" / name
    extra = {}
    if name == "dcgm-exporter":
        # The stand-in exporter bakes the kit's counters CSV as its default, like the upstream image does.
        extra["default-counters.csv"] = COMPOSE_DIR / "dcgm-exporter" / "counters.csv"
    parent = sim if name == "dcgm-exporter" else base
    parent_id = _docker("image", "inspect", "--format", "{{.Id}}", parent).stdout.strip()
    # A Debian version names one immutable file in the archive: the versions stand for the packages' bytes.
    versions = " ".join(f"{p.suite}/{p.name}={p.version}" for p in packages).encode()
    source_hash = _digest(_tree_bytes(directory, ("*",)), parent_id.encode(), versions,
                          *(path.read_bytes() for path in extra.values()))
    tag = f"llmobs-standin/{name}:{source_hash}"
    if present(tag):
        return tag
    # The context lives in the cache, on the same filesystem, so the packages' files are hard links.
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR, prefix=f"build-{name}-") as context:
        shutil.copytree(directory, context, dirs_exist_ok=True)
        for target, source in extra.items():
            shutil.copy(source, Path(context) / target)
        _unpack_into(Path(context) / "rootfs", packages, log)
        started = time.monotonic()
        _build(tag, Path(context), {"BASE_IMAGE": base, "SIM_IMAGE": sim}, source_hash, log)
        log(f"built {tag} ({time.monotonic() - started:.0f} s)")
    return tag


def resolve(log: Log) -> list[Resolved]:
    """Make every image of the kit available, building stand-ins where needed."""
    pinned = pins()
    missing = sorted(set(STANDINS) - set(pinned))
    if missing:
        raise ImageError(f"no compose file pins {', '.join(missing)}: add `image: ${{VAR:-<upstream>}}`")
    packages = standin_packages()
    base = base_image(log)
    sim = build_sim(base, log)
    # The kit's own images (rebuilt only when what they are built from changed: the log says so).
    resolved = [Resolved(SIM_VARIABLE, sim, "kit's own"), Resolved(LLAMACPP_VARIABLE, build_llamacpp(log), "kit's own")]
    for variable, upstream in sorted(pinned.items()):
        if variable in (SIM_VARIABLE, LLAMACPP_VARIABLE):
            continue
        if os.environ.get(variable):
            resolved.append(Resolved(variable, os.environ[variable], "environment"))
        elif present(upstream):
            resolved.append(Resolved(variable, upstream, "local"))
        elif pullable(upstream):
            resolved.append(Resolved(variable, upstream, "pulled"))
        elif STANDINS.get(variable):
            tag = build_standin(STANDINS[variable], base, sim, log, packages.get(variable, ()))
            resolved.append(Resolved(variable, tag, "stand-in"))
        else:
            resolved.append(Resolved(variable, None, f"{upstream} is not present and no registry answers"))
    return resolved


def write_env(resolved: list[Resolved], path: Path = IMAGES_ENV) -> None:
    lines = ["# Written by `llmobs setup`: the images this machine runs the kit with.\n"]
    for item in resolved:
        if item.image:
            lines.append(f"{item.variable}={item.image}\n")
        else:
            lines.append(f"# {item.variable} unavailable: {item.origin}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")


def read_env(path: Path = IMAGES_ENV) -> dict[str, str]:
    """The image variables `llmobs setup` chose; empty when set-up has not run."""
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def version_in(output: str) -> str:
    """`prometheus, version 3.5.3 (branch: ...)` -> 3.5.3; the first line otherwise."""
    first = output.strip().splitlines()[0] if output.strip() else "no output"
    match = re.search(r"\bversion (\S+)", first)
    return match[1] if match else first


def running_versions(chosen: dict[str, str]) -> dict[str, str]:
    """Component -> the version its image's own binary reports, and Docker's and Compose's (needs Docker)."""
    found: dict[str, str] = {}
    for component, (variable, binary) in VERSION_PROBES.items():
        image = chosen.get(variable)
        if not image or not present(image):
            found[component] = f"unavailable ({variable} {image or 'not chosen'}: image absent)"
            continue
        result = _docker("run", "--rm", "--network", "none", "--entrypoint", binary, image, "--version", check=False)
        found[component] = f"{version_in(result.stdout + result.stderr)} ({image})"
    engine = _docker("version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})", check=False)
    found["Docker Engine"] = engine.stdout.strip() if engine.returncode == 0 else "does not answer"
    compose = _docker("compose", "version", "--short", check=False)
    found["Docker Compose"] = compose.stdout.strip() if compose.returncode == 0 else "missing"
    return found
