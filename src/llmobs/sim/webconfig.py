"""The Prometheus exporter-toolkit web configuration (`--web-config-file`, the web.yml the roles write) for
the simulators' servers, so the dcgm-exporter stand-in serves TLS and basic auth as dcgm-exporter 4.x does.

Read: `tls_server_config.cert_file`/`key_file` (relative paths are relative to the file, as in
exporter-toolkit), `client_ca_file` with `client_auth_type: RequireAndVerifyClientCert`, `min_version`,
and `basic_auth_users` (user -> bcrypt hash). A request without the right credentials gets 401 with
`WWW-Authenticate: Basic`, as exporter-toolkit answers. Any other key is refused, naming it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmobs.errors import ConfigError

FLAG = "--web-config-file"
_TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version"}
_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True)
class WebConfig:
    context: ssl.SSLContext | None = None               # None: plain HTTP
    users: dict[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash; empty: no basic auth

    def authorized(self, header: str | None) -> bool:
        """Whether an Authorization header carries one of the users and its password."""
        if not self.users:
            return True
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        return hashed is not None and _checked(password, hashed)


@functools.lru_cache(maxsize=256)
def _checked(password: str, hashed: bytes) -> bool:
    """bcrypt is slow by design; exporter-toolkit caches each verdict as well (every scrape sends the same)."""
    import bcrypt

    return bcrypt.checkpw(password.encode(), hashed)


def _context(tls: dict[str, Any], base: Path) -> ssl.SSLContext:
    unknown = sorted(set(tls) - _TLS_KEYS)
    if unknown:
        raise ConfigError(f"{FLAG}: tls_server_config.{unknown[0]}", "is not simulated", f"use {sorted(_TLS_KEYS)}")
    if not tls.get("cert_file") or not tls.get("key_file"):
        raise ConfigError(f"{FLAG}: tls_server_config", "needs cert_file and key_file", "set both")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS.get(str(tls.get("min_version", "TLS12")), ssl.TLSVersion.TLSv1_2)
    try:
        context.load_cert_chain(base / tls["cert_file"], base / tls["key_file"])
        if tls.get("client_ca_file"):
            context.load_verify_locations(base / tls["client_ca_file"])
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(f"{FLAG}: tls_server_config", f"cannot load the certificate or key: {error}",
                          "point cert_file and key_file at a PEM certificate and its key") from None
    if tls.get("client_auth_type") == "RequireAndVerifyClientCert":
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def load(path: Path | str) -> WebConfig:
    """The web configuration of `path` ("" or None: plain HTTP without auth)."""
    if not path:
        return WebConfig()
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(FLAG, f"cannot read {path}: {error}", "point it at exporter-toolkit's web.yml") from None
    unknown = sorted(set(document) - {"tls_server_config", "basic_auth_users"})
    if unknown:
        raise ConfigError(f"{FLAG}: {unknown[0]}", "is not simulated", "use tls_server_config and basic_auth_users")
    tls = document.get("tls_server_config")
    users = {str(user): str(hashed).encode() for user, hashed in (document.get("basic_auth_users") or {}).items()}
    return WebConfig(_context(tls, path.parent) if tls else None, users)
