"""A certificate authority and server certificates made for a test run (never committed keys): the TLS
test site (tests/ha), the simulators' web config (tests/sim) and the whole-site molecule scenario."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CA = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _valid(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    day, minutes = datetime.timedelta(days=1), datetime.timedelta(minutes=5)
    return builder.not_valid_before(now - minutes).not_valid_after(now + day)


def make_ca(common: str) -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_valid(x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number()))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_server(ca: CA, names: Iterable[str], common: str = "llmobs test services") -> tuple[str, str]:
    """(certificate PEM, key PEM) for the DNS names and IP addresses of `names`, signed by `ca`."""
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    alternative: list[x509.GeneralName] = []
    for name in names:
        try:
            alternative.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternative.append(x509.DNSName(name))
    cert = (_valid(x509.CertificateBuilder().subject_name(_name(common)).issuer_name(ca_cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number()))
            .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return pem(cert), key_pem
