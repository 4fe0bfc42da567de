"""Free loopback ports for servers the tests start in-process, and waiting until one answers."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest
import requests


def free_ports(count: int) -> list[int]:
    """`count` distinct ports nothing listens on now (all bound at once, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def wait_until_ready(url: str, process: subprocess.Popen, what: str, attempts: int = 100) -> None:
    """Poll `url` until it answers 200; fail with the server's stderr if it exits or never answers."""
    for _ in range(attempts):
        if process.poll() is not None:
            break
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{what}: {process.stderr.read().decode()[-2000:] if process.poll() is not None else 'no answer'}")
