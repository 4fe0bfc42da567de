"""Exact versions of Debian packages from any suite, fetched without touching the host's apt sources.

The test beds run binaries from Debian's other suites (trixie, sid) on a bookworm host: each suite gets a
private apt configuration under .cache/apt/<suite>/ (its own sources, lists and cache), `apt-get
download` fetches the pinned version into .cache/debs/, and `dpkg -x` unpacks it into
.cache/debian/<package>_<version>/. apt checks the archive's signatures and the files' hashes; nothing
is installed on the host. Packages already in the cache are used as they are: a second set-up touches
no network. sid moves, so versions are pinned exactly; when the mirror no longer has one, DebianError
names the package, the version wanted and the versions found. Nothing ever falls back to another
version.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

Log = Callable[[str], None]

DEFAULT_MIRROR = "http://deb.debian.org/debian"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
_UPSTREAM = re.compile(r"^(?:\d+:)?(?P<upstream>\d+(?:\.\d+)*)")


class DebianError(RuntimeError):
    pass


def mirror() -> str:
    return os.environ.get("LLMOBS_DEBIAN_MIRROR", DEFAULT_MIRROR)


def architecture() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()


@dataclass(frozen=True)
class Package:
    """One exact version of a Debian package, and where the kit pins it (for error messages)."""

    suite: str
    name: str
    version: str
    # Not part of its identity: two images pinning the same package (the store and the OTLP gateway) fetch it once.
    pinned_in: str = field(default="", compare=False)

    @property
    def upstream_version(self) -> str:
        """The upstream release it packages: 3.5.3+ds1-6 -> 3.5.3, 1:2.0-1 -> 2.0."""
        match = _UPSTREAM.match(self.version)
        if not match:
            raise DebianError(f"{self.name} {self.version}: not a Debian version ({self.pinned_in})")
        return match["upstream"]

    @property
    def key(self) -> str:
        return f"{self.name}_{self.version.replace(':', '%3a')}"

    def __str__(self) -> str:
        return f"Debian {self.suite} {self.name} {self.version}"


class Apt:
    """apt-get and apt-cache with a private configuration for one suite (the host's sources stay as they are)."""

    def __init__(self, suite: str, root: Path, source: str | None = None) -> None:
        self.suite = suite
        self.root = root
        self.source = source or f"deb [signed-by={KEYRING}] {mirror()} {suite} main"

    def _options(self) -> list[str]:
        options = {
            "Dir::Etc::sourcelist": self.root / "sources.list",
            "Dir::Etc::sourceparts": self.root / "sources.list.d",
            "Dir::State::Lists": self.root / "lists",
            "Dir::Cache": self.root / "cache",
            "Dir::State::status": self.root / "status",  # not the host's: only the suite's index counts
            "Acquire::Languages": "none",
            "APT::Sandbox::User": "root",  # it downloads into the kit's cache, which _apt cannot write
        }
        return [arg for key, value in options.items() for arg in ("-o", f"{key}={value}")]

    def _run(self, tool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        for directory in ("sources.list.d", "lists/partial", "cache/archives/partial"):
            (self.root / directory).mkdir(parents=True, exist_ok=True)
        (self.root / "sources.list").write_text(self.source + "\n", encoding="utf-8")
        (self.root / "status").touch()
        return subprocess.run([tool, "-q", *self._options(), *args], capture_output=True, text=True, cwd=cwd,
                              env={**os.environ, "LC_ALL": "C"})

    def update(self) -> None:
        result = self._run("apt-get", "update")
        if result.returncode != 0 or "\nE: " in f"\n{result.stderr}" or "\nW: " in f"\n{result.stderr}":
            raise DebianError(f"`apt-get update` for Debian {self.suite} failed ({self.source}):\n"
                              f"{result.stderr[-2000:]}")

    def versions(self, name: str) -> list[str]:
        """Every version of `name` the suite's index lists, newest first."""
        result = self._run("apt-cache", "madison", name)
        return [fields[1] for line in result.stdout.splitlines()
                if len(fields := [field.strip() for field in line.split("|")]) == 3]

    def download(self, packages: list[Package], directory: Path) -> dict[Package, Path]:
        """Fetch exactly these versions into directory (one apt run); DebianError naming each one the suite
        does not have, with the versions it has."""
        packages = list(dict.fromkeys(packages))  # one package pinned twice is fetched once
        with tempfile.TemporaryDirectory(dir=directory, prefix=".download-") as partial:
            result = self._run("apt-get", "download", *(f"{p.name}={p.version}" for p in packages), cwd=Path(partial))
            if result.returncode == 0:
                fetched = {}
                for package in packages:
                    deb = next(Path(partial).glob(f"{package.key}_*.deb"))
                    fetched[package] = deb.replace(directory / deb.name)  # whole files only, never partial
                return fetched
        gone = [missing_version(p, found) for p in packages if p.version not in (found := self.versions(p.name))]
        raise DebianError("\n".join(gone) or f"`apt-get download` from Debian {self.suite} failed:\n"
                          f"{result.stderr[-2000:]}")


def missing_version(package: Package, found: list[str]) -> str:
    """What set-up says when the mirror no longer has a pinned version."""
    where = f" (pinned in {package.pinned_in})" if package.pinned_in else ""
    if not found:
        return (f"Debian {package.suite} no longer has the package {package.name}: set-up wanted {package.name} "
                f"{package.version}{where} and found no version of it. Pin a package of another suite.")
    minor = ".".join(package.upstream_version.split(".")[:2])
    return (f"Debian {package.suite} no longer has {package.name} {package.version}{where}: it has "
            f"{', '.join(found)}. Pin another {minor}.x version if one is listed, or move the image pin and "
            f"its packages together; set-up never swaps versions by itself.")


def fetch(packages: Iterable[Package], cache: Path, log: Log) -> dict[Package, Path]:
    """The .deb of each package, downloaded into cache/debs only when it is not there yet."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    arch = architecture()
    found: dict[Package, Path] = {}
    missing: dict[str, list[Package]] = {}
    for package in dict.fromkeys(packages):
        path = debs / f"{package.key}_{arch}.deb"
        if not path.exists():
            path = next(iter(debs.glob(f"{package.key}_*.deb")), path)  # Architecture: all
        if path.exists():
            found[package] = path
        else:
            missing.setdefault(package.suite, []).append(package)
    for suite, wanted in sorted(missing.items()):
        started = time.monotonic()
        apt = Apt(suite, cache / "apt" / suite)
        apt.update()
        found |= apt.download(wanted, debs)
        log(f"fetched from Debian {suite}: {', '.join(f'{p.name} {p.version}' for p in wanted)} "
            f"({time.monotonic() - started:.0f} s)")
    return found


def unpack(package: Package, deb: Path, cache: Path) -> Path:
    """The package's files (`dpkg -x`) under cache/debian/<package>_<version>/; unpacked once."""
    tree = cache / "debian" / package.key
    if tree.is_dir():
        return tree
    tree.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=tree.parent, prefix=f".{package.key}-"))
    try:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(partial)], check=True, capture_output=True)
        partial.rename(tree)
    except (subprocess.CalledProcessError, OSError) as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise DebianError(f"unpacking {deb} failed: {error}") from error
    return tree
