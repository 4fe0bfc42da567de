"""`llmobs setup` is idempotent and its choices are consistent with the compose files: each stand-in runs
the Debian package its pin's comment names, of the pin's minor version, and a version gone from the
mirror stops set-up with a message naming it."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from llmobs import debian, images, setup, tools

REPO = Path(__file__).resolve().parents[1]
# The binary of each stand-in's image that reports its version, and the package that ships it.
VERSIONED_BINARIES = {
    "PROMETHEUS_IMAGE": {"/bin/prometheus": "prometheus", "/bin/promtool": "promtool"},
    "ALERTMANAGER_IMAGE": {"/bin/alertmanager": "prometheus-alertmanager", "/bin/amtool": "prometheus-alertmanager"},
    "NODE_EXPORTER_IMAGE": {"/bin/node_exporter": "prometheus-node-exporter"},
}


def test_every_image_variable_is_pinned_once_to_a_tag() -> None:
    pinned = images.pins()
    assert set(images.STANDINS) <= set(pinned), "every image with a stand-in needs a pin in compose/"
    for variable, image in pinned.items():
        tag = image.rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
        assert tag and tag != "latest", f"{variable} must be pinned to an explicit tag, got {image!r}"


def _minor(version: str) -> tuple[str, str]:
    major, minor = version.lstrip("v").split(".")[:2]
    return major, minor


def test_each_standin_runs_the_minor_version_of_its_pin() -> None:
    pinned, packages = images.pins(), images.standin_packages()
    assert set(packages) == {v for v, d in images.STANDINS.items() if d and d != "dcgm-exporter"}, packages
    for variable, stand_in in packages.items():
        tag = pinned[variable].rsplit(":", 1)[1]
        for package in stand_in:
            assert _minor(package.upstream_version) == _minor(tag), f"{variable} {tag} stood in for by {package}"


def test_tools_are_the_images_versions_plus_prometheus_2() -> None:
    by_name = {(tool.name, tool.default): tool.version for tool in tools.pinned()}
    pinned = images.pins()
    assert _minor(by_name["promtool", True]) == _minor(pinned["PROMETHEUS_IMAGE"].rsplit(":", 1)[1])
    assert _minor(by_name["amtool", True]) == _minor(pinned["ALERTMANAGER_IMAGE"].rsplit(":", 1)[1])
    assert by_name["promtool", False].startswith("2."), "the rule unit tests also run on Prometheus 2.x"


def test_a_malformed_standin_comment_is_refused(tmp_path: Path) -> None:
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "p.yaml").write_text("    # Stand-in where no registry answers: Debian sid prometheus\n"
                                                  "    image: ${PROMETHEUS_IMAGE:-prom/prometheus:v3.5.3}\n")
    with pytest.raises(images.ImageError, match="name=version"):
        images.standin_packages(tmp_path)


def _flat_repository(root: Path, versions: list[str], payload: bytes = b"") -> str:
    """A Debian repository index listing promtool in `versions` (apt reads it); with a payload, each version's
    file holds it (apt checks only size and hash on download), else there are no files."""
    digest = hashlib.sha256(payload).hexdigest() if payload else "0" * 64
    for version in versions if payload else []:
        (root / f"promtool_{version}.deb").write_bytes(payload)
    stanzas = [f"Package: promtool\nVersion: {version}\nArchitecture: {debian.architecture()}\n"
               f"Maintainer: nobody <nobody@example.org>\nFilename: ./promtool_{version}.deb\n"
               f"Size: {len(payload) or 1}\nSHA256: {digest}\nDescription: index entry only\n" for version in versions]
    index = "\n".join(stanzas).encode()
    (root / "Packages").write_bytes(index)
    (root / "Release").write_text(f"Suite: sid\nDate: Tue, 01 Dec 2026 00:00:00 UTC\nSHA256:\n"
                                  f" {hashlib.sha256(index).hexdigest()} {len(index)} Packages\n")
    return f"deb [trusted=yes] file:{root} ./"


def test_a_version_gone_from_the_mirror_stops_setup_naming_what_it_found(tmp_path: Path) -> None:
    """Real apt on an index where sid moved on: the pinned 3.5.3+ds1-6 is gone, 3.6.0 and 2.53.3 are there."""
    repository = tmp_path / "repository"
    repository.mkdir()
    apt = debian.Apt("sid", tmp_path / "apt", _flat_repository(repository, ["3.6.0+ds1-1", "2.53.3+ds1-2"]))
    apt.update()
    wanted = debian.Package("sid", "promtool", "3.5.3+ds1-6", "compose/services/prometheus.yaml")
    with pytest.raises(debian.DebianError) as raised:
        apt.download([wanted], tmp_path)
    message = str(raised.value)
    for part in ("promtool 3.5.3+ds1-6", "compose/services/prometheus.yaml", "it has 3.6.0+ds1-1, 2.53.3+ds1-2",
                 "never swaps"):
        assert part in message, message
    assert not list(tmp_path.glob("*.deb")), "nothing may be fetched in its place"
    gone = debian.Package("sid", "prometheus", "3.5.3+ds1-6")
    with pytest.raises(debian.DebianError, match=r"no longer has the package prometheus: .* found no version"):
        apt.download([gone], tmp_path)


def test_a_package_two_images_pin_is_fetched_once(tmp_path: Path) -> None:
    """The store and the OTLP gateway both run victoria-metrics: the same version pinned in two files is one
    download (real apt on a local index), not a second look for a file the first one already moved."""
    repository = tmp_path / "repository"
    repository.mkdir()
    apt = debian.Apt("sid", tmp_path / "apt", _flat_repository(repository, ["3.5.3+ds1-6"], payload=b"deb"))
    apt.update()
    pins = [debian.Package("sid", "promtool", "3.5.3+ds1-6", pinned_in) for pinned_in in ("a.yaml", "b.yaml")]
    fetched = apt.download(pins, tmp_path)
    assert list(fetched) == pins[:1] and fetched[pins[1]].read_bytes() == b"deb"
    assert len({package for packages in images.standin_packages().values() for package in packages}) == len(
        {(p.suite, p.key) for packages in images.standin_packages().values() for p in packages})


def test_conflicting_pins_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("image: ${PROMETHEUS_IMAGE:-prom/prometheus:v1}\n")
    (tmp_path / "b.yaml").write_text("image: ${PROMETHEUS_IMAGE:-prom/prometheus:v2}\n")
    with pytest.raises(images.ImageError, match="PROMETHEUS_IMAGE is pinned to both"):
        images.pins(tmp_path)


@pytest.mark.docker
def test_second_setup_changes_nothing() -> None:
    """The suite runs after `llmobs setup`; running it again must build nothing and keep its choices."""
    if not setup.docker_answers():
        pytest.skip("Docker Engine is not running: run `./kit test`, which starts it")
    before = images.IMAGES_ENV.read_text()
    result = subprocess.run([sys.executable, "-m", "llmobs", "setup"], capture_output=True, text=True,
                            cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not any(word in result.stdout for word in ("building", "installing", "fetched", "built")), result.stdout
    assert images.IMAGES_ENV.read_text() == before


@pytest.mark.docker
def test_standins_keep_the_upstream_interface() -> None:
    """Entrypoint, user and ports of each stand-in match what the compose files expect of upstream."""
    chosen = images.read_env()
    if not chosen:
        pytest.skip("`llmobs setup` has not run on this machine")
    expected = {
        "PROMETHEUS_IMAGE": (["/bin/prometheus"], "nobody", "9090/tcp"),
        "ALERTMANAGER_IMAGE": (["/bin/alertmanager"], "nobody", "9093/tcp"),
        "NODE_EXPORTER_IMAGE": (["/bin/node_exporter"], "nobody", "9100/tcp"),
        "DCGM_EXPORTER_IMAGE": (["/usr/bin/dcgm-exporter"], "root", "9400/tcp"),
        "VMAGENT_IMAGE": (["/vmagent-prod"], "nobody", "8429/tcp"),  # the OTLP gateway
    }
    checked = 0
    for variable, (entrypoint, user, port) in expected.items():
        image = chosen.get(variable, "")
        if not image.startswith("llmobs-standin/"):
            continue  # the upstream image itself
        fmt = "{{json .Config.Entrypoint}}|{{.Config.User}}|{{json .Config.ExposedPorts}}"
        out = subprocess.run(["docker", "image", "inspect", "--format", fmt, image],
                             capture_output=True, text=True, check=True).stdout.strip()
        got_entrypoint, got_user, got_ports = out.split("|")
        assert got_entrypoint == str(entrypoint).replace("'", '"'), f"{image} entrypoint {got_entrypoint}"
        assert (got_user or "root") == user, f"{image} runs as {got_user!r}"
        assert port in got_ports, f"{image} does not expose {port}"
        checked += 1
    if not checked:
        pytest.skip("every image is the upstream one: no stand-in to compare")


@pytest.mark.docker
def test_standins_run_the_packages_their_pins_name() -> None:
    """Each stand-in's binaries (server, promtool, amtool) report the exact Debian version of the pin's comment."""
    chosen, packages = images.read_env(), images.standin_packages()
    stand_ins = {variable: image for variable, image in chosen.items()
                 if variable in VERSIONED_BINARIES and image.startswith("llmobs-standin/")}
    if not stand_ins:
        pytest.skip("`llmobs setup` chose no stand-in on this machine")
    for variable, image in stand_ins.items():
        versions = {package.name: package.version for package in packages[variable]}
        for binary, package in VERSIONED_BINARIES[variable].items():
            out = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", binary, image,
                                  "--version"], capture_output=True, text=True, timeout=60)
            assert f"revision: {versions[package]})" in out.stdout + out.stderr, f"{image} {binary}: {out}"


@pytest.mark.docker
def test_a_rebuild_removes_the_image_it_replaced_and_no_other_clones() -> None:
    if not setup.docker_answers():
        pytest.skip("Docker Engine is not running: run `./kit test`, which starts it")
    base = images.base_image(print)
    repository = "llmobs-standin/superseded-check"
    checkouts = {"old": images.REPO, "new": images.REPO, "other-clone": "/elsewhere/llm-observability-stack"}
    for tag, checkout in checkouts.items():
        subprocess.run(["docker", "build", "-q", "-t", f"{repository}:{tag}", "--label",
                        f"{images.CHECKOUT_LABEL}={checkout}", "-"], input=f"FROM {base}\n", text=True,
                       check=True, capture_output=True)
    try:
        images._remove_superseded(f"{repository}:new")
        assert not images.present(f"{repository}:old")
        assert images.present(f"{repository}:new") and images.present(base)
        assert images.present(f"{repository}:other-clone"), "another clone's image was removed"
    finally:
        subprocess.run(["docker", "image", "rm", *(f"{repository}:{tag}" for tag in checkouts)], capture_output=True)
