"""Certificates and keys for the local control plane: one CA, one serving cert, client certs.

A second CA signs only the front proxy's client certificate: the apiserver trusts that CA
(``--requestheader-client-ca-file``) to assert users in headers when it proxies a request
to an aggregated API (metrics-server), and no client of the cluster CA can do the same.

Everything is generated fresh for each run directory; nothing here is secret beyond the
lifetime of a throwaway cluster on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["FRONT_PROXY_CLIENT", "ClientIdentity", "Pki", "ServingIdentity", "write_pki"]

_VALIDITY = datetime.timedelta(days=30)
# The name the apiserver's --requestheader-allowed-names admits.
FRONT_PROXY_CLIENT = "front-proxy-client"


@dataclass(frozen=True)
class ClientIdentity:
    """A client certificate's subject: CN is the user name, O the groups."""

    user: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pki:
    """Paths of everything the processes and kubeconfigs need."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    sa_public: Path
    sa_private: Path
    clients: dict[str, tuple[Path, Path]]  # user -> (cert, key)
    # The aggregation layer: the front proxy's CA and its client pair (CN FRONT_PROXY_CLIENT).
    front_proxy_ca: Path
    front_proxy_client: tuple[Path, Path]
    servers: dict[str, tuple[Path, Path]] = dataclasses.field(default_factory=dict)


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _sign(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    is_ca: bool = False,
    server_names: tuple[str, ...] = (),
    server_ips: tuple[str, ...] = (),
    client: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if is_ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        usages = []
        if server_names or server_ips:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in server_names]
            alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips]
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    return x509.Name(attributes)


@dataclass(frozen=True)
class ServingIdentity:
    """A serving certificate other than the apiserver's (a kubelet's): its names and IPs."""

    stem: str
    names: tuple[str, ...]
    ips: tuple[str, ...]


def write_pki(
    directory: Path,
    clients: list[ClientIdentity],
    service_ip: str,
    *,
    apiserver_ips: tuple[str, ...] = (),
    servers: tuple[ServingIdentity, ...] = (),
) -> Pki:
    """Write a CA, an apiserver serving pair, client pairs, the service-account keys, and
    the front proxy's own CA and client pair.

    ``apiserver_ips`` are extra addresses the apiserver serves on (the node IP a real
    node's Pods reach it at); ``servers`` are more serving pairs signed by the same CA.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("exposedapp-devcluster-ca")
    ca = _sign(ca_name, ca_key.public_key(), ca_name, ca_key, is_ca=True)

    def write_pair(
        stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
    ) -> tuple[Path, Path]:
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_path.write_bytes(_pem_cert(cert))
        key_path.write_bytes(_pem_key(key))
        key_path.chmod(0o600)
        return cert_path, key_path

    ca_cert, _ = write_pair("ca", ca, ca_key)

    serving_key = ec.generate_private_key(ec.SECP256R1())
    serving = _sign(
        _name("kube-apiserver"),
        serving_key.public_key(),
        ca_name,
        ca_key,
        server_names=(
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ),
        server_ips=("127.0.0.1", service_ip, *apiserver_ips),
    )
    serving_cert, serving_key_path = write_pair("apiserver", serving, serving_key)

    server_paths: dict[str, tuple[Path, Path]] = {}
    for server in servers:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _sign(
            _name(server.stem),
            key.public_key(),
            ca_name,
            ca_key,
            server_names=server.names,
            server_ips=server.ips,
        )
        server_paths[server.stem] = write_pair(server.stem, cert, key)

    client_paths: dict[str, tuple[Path, Path]] = {}
    for identity in clients:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _sign(
            _name(identity.user, identity.groups),
            key.public_key(),
            ca_name,
            ca_key,
            client=True,
        )
        stem = "client-" + identity.user.replace(":", "-")
        client_paths[identity.user] = write_pair(stem, cert, key)

    front_proxy_key = ec.generate_private_key(ec.SECP256R1())
    front_proxy_name = _name("exposedapp-devcluster-front-proxy-ca")
    front_proxy = _sign(
        front_proxy_name,
        front_proxy_key.public_key(),
        front_proxy_name,
        front_proxy_key,
        is_ca=True,
    )
    front_proxy_ca, _ = write_pair("front-proxy-ca", front_proxy, front_proxy_key)
    proxy_client_key = ec.generate_private_key(ec.SECP256R1())
    proxy_client = _sign(
        _name(FRONT_PROXY_CLIENT),
        proxy_client_key.public_key(),
        front_proxy_name,
        front_proxy_key,
        client=True,
    )
    front_proxy_client = write_pair(FRONT_PROXY_CLIENT, proxy_client, proxy_client_key)

    # Service-account tokens are signed with RSA, the algorithm every client library expects.
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa_private = directory / "sa.key"
    sa_private.write_bytes(_pem_key(sa_key))
    sa_private.chmod(0o600)
    sa_public = directory / "sa.pub"
    sa_public.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    )
    return Pki(
        ca_cert,
        serving_cert,
        serving_key_path,
        sa_public,
        sa_private,
        client_paths,
        front_proxy_ca,
        front_proxy_client,
        server_paths,
    )
