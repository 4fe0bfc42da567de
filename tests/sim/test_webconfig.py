"""The dcgm-exporter stand-in behind TLS and basic auth: `llmobs sim dcgm --web-config-file` (its
entrypoint) reads exporter-toolkit's web.yml as the roles write it (llmobs.roles, bcrypt hashes) and
answers as exporter-toolkit does: 401 without the right credentials, metrics over HTTPS with them."""

from __future__ import annotations

import base64
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pki import make_ca, make_server, pem

from llmobs import roles

from .conftest import catalog_counters

USER, PASSWORD = "prometheus", "a-test-only-password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_web_config(directory: Path) -> str:
    """web.yml and the TLS files exactly as compose_service writes them; returns the CA's PEM."""
    ca = make_ca("llmobs test CA")
    cert, key = make_server(ca, ["localhost", "127.0.0.1"])
    web = {"tls_cert": cert, "tls_key": key, "basic_auth_users": {USER: PASSWORD}}
    for relative, text in roles.compose_service_secret_files(
            {"secret_files": {}, "secrets": {}, "web": web, "config_mount": str(directory)}, "gpu-test-1").items():
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_text(text)
    return pem(ca[1])


def _sim(tmp_path: Path, web_config: Path) -> subprocess.Popen:
    counters = tmp_path / "counters.csv"
    counters.write_text(catalog_counters())
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llmobs", "sim", "dcgm", "-f", str(counters), "-a", f"127.0.0.1:{port}",
         "--fault-port", str(_free_port()), "--gpus", "2", "-c", "200", "--web-config-file", str(web_config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    process.port = port  # type: ignore[attr-defined]
    return process


def _get(url: str, context: ssl.SSLContext | None, auth: tuple[str, str] | None = None) -> tuple[int, str, dict]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ssl.SSLContext]]:
    tmp_path = tmp_path_factory.mktemp("web")
    ca_pem = _write_web_config(tmp_path)
    process = _sim(tmp_path, tmp_path / "web.yml")
    context = ssl.create_default_context(cadata=ca_pem)
    url = f"https://localhost:{process.port}/metrics"  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while True:
        try:
            if _get(url, context)[0] == 401:
                break
        except (urllib.error.URLError, ConnectionError) as error:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the stand-in did not come up ({error}): {process.communicate()[0][-2000:]}")
            time.sleep(0.3)
    yield url, context
    process.terminate()
    process.wait(timeout=10)


def test_metrics_over_tls_with_the_right_credentials(exporter) -> None:
    url, context = exporter
    status, body, _ = _get(url, context, (USER, PASSWORD))
    assert status == 200 and "DCGM_FI_DEV_GPU_TEMP{" in body


def test_401_without_or_with_wrong_credentials(exporter) -> None:
    url, context = exporter
    status, _, headers = _get(url, context)
    assert status == 401 and headers.get("WWW-Authenticate") == "Basic"
    assert _get(url, context, (USER, "not-the-password"))[0] == 401
    assert _get(url, context, ("someone-else", PASSWORD))[0] == 401


def test_the_certificate_is_checked_against_the_ca(exporter) -> None:
    url, _ = exporter
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        _get(url, ssl.create_default_context(cadata=pem(make_ca("some other CA")[1])), (USER, PASSWORD))
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        _get(url.replace("https://", "http://"), None, (USER, PASSWORD))


def test_a_web_config_key_it_does_not_know_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "web.yml").write_text("http_server_config: {http2: true}\n")
    process = _sim(tmp_path, tmp_path / "web.yml")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2 and "--web-config-file: http_server_config" in output, output
