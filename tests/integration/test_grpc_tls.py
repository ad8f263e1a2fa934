"""gRPC between our services over TLS and mutual TLS (GRPC_TLS_*): a real server on a loopback
port with certificates generated here, the gateway's billing client, and the plaintext health
port kubelet's probes use beside a TLS server."""

import datetime
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import ValidationError

from gateway.billing_client import BillingClient
from services.auth.service_credentials import ServiceCredentials
from services.common.grpc_server import GrpcServer, start_grpc_server
from services.common.grpc_tls import GrpcTlsSettings

SECRET = "s" * 32


@dataclass(frozen=True)
class Authority:
    """A CA that signs certificates into files, as a Secret would hold them."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    directory: Path

    @classmethod
    def create(cls, directory: Path, name: str) -> "Authority":
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            _builder(subject, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        directory.mkdir()
        (directory / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(key, cert, directory)

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"

    def issue(self, name: str, *, server: bool) -> tuple[Path, Path]:
        """A leaf certificate for `name` (a server's for 127.0.0.1 and localhost, or a client's);
        returns its certificate and key files."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = _builder(subject, self.cert.subject, key.public_key()).add_extension(
            x509.ExtendedKeyUsage([usage]), critical=False
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        cert_file, key_file = self.directory / f"{name}.crt", self.directory / f"{name}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_file, key_file


def _builder(subject: x509.Name, issuer: x509.Name, public_key: Any) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )


@dataclass(frozen=True)
class Pki:
    ca: Authority
    other_ca: Authority
    server: tuple[Path, Path]
    client: tuple[Path, Path]
    stranger: tuple[Path, Path]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("grpc-tls")
    ca, other = Authority.create(root / "ca", "tatame-ca"), Authority.create(root / "other", "x")
    return Pki(
        ca,
        other,
        ca.issue("billing", server=True),
        ca.issue("gateway", server=False),
        other.issue("intruder", server=False),
    )


def tls(**fields: Any) -> GrpcTlsSettings:
    return GrpcTlsSettings(tatame_env="test", **fields)


async def serve(settings: GrpcTlsSettings) -> GrpcServer:
    """A real server (health and reflection) on a loopback port, TLS as `settings` say, with a
    plaintext health port beside it."""
    return await start_grpc_server(
        address="127.0.0.1:0",
        service_names=[],
        add_servicers=lambda _: None,
        credentials=settings.server_credentials(),
        health_address="127.0.0.1:0",
    )


async def health_over(channel: grpc.aio.Channel) -> int:
    """The health status answered over `channel` (raises AioRpcError when refused)."""
    async with channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    status: int = reply.status
    return status


@pytest.fixture
async def tls_server(pki: Pki) -> AsyncIterator[GrpcServer]:
    cert, key = pki.server
    server = await serve(tls(grpc_tls_cert_file=cert, grpc_tls_key_file=key))
    yield server
    await server.stop(0)


@pytest.fixture
async def mtls_server(pki: Pki) -> AsyncIterator[GrpcServer]:
    cert, key = pki.server
    server = await serve(
        tls(
            grpc_tls_cert_file=cert,
            grpc_tls_key_file=key,
            grpc_tls_ca_file=pki.ca.ca_file,
            grpc_tls_require_client_cert=True,
        )
    )
    yield server
    await server.stop(0)


SERVING = health_pb2.HealthCheckResponse.SERVING


async def test_a_tls_server_answers_a_client_that_trusts_its_ca_and_refuses_plaintext(
    tls_server: GrpcServer, pki: Pki
) -> None:
    target = f"127.0.0.1:{tls_server.port}"
    assert await health_over(tls(grpc_tls_ca_file=pki.ca.ca_file).channel(target)) == SERVING
    with pytest.raises(grpc.aio.AioRpcError) as plaintext:
        await health_over(grpc.aio.insecure_channel(target))
    assert plaintext.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_a_client_that_trusts_another_ca_refuses_the_server(
    tls_server: GrpcServer, pki: Pki
) -> None:
    client = tls(grpc_tls_ca_file=pki.other_ca.ca_file)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await health_over(client.channel(f"127.0.0.1:{tls_server.port}"))
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_the_server_name_override_checks_the_name_the_certificate_carries(
    tls_server: GrpcServer, pki: Pki
) -> None:
    target = f"127.0.0.1:{tls_server.port}"
    named = tls(grpc_tls_ca_file=pki.ca.ca_file, grpc_tls_server_name="localhost")
    assert await health_over(named.channel(target)) == SERVING
    misnamed = tls(grpc_tls_ca_file=pki.ca.ca_file, grpc_tls_server_name="billing.evil")
    with pytest.raises(grpc.aio.AioRpcError):
        await health_over(misnamed.channel(target))


async def test_mutual_tls_admits_only_clients_with_a_certificate_from_the_ca(
    mtls_server: GrpcServer, pki: Pki
) -> None:
    target = f"127.0.0.1:{mtls_server.port}"
    (cert, key), (wrong_cert, wrong_key) = pki.client, pki.stranger
    client = tls(grpc_tls_ca_file=pki.ca.ca_file, grpc_tls_cert_file=cert, grpc_tls_key_file=key)
    assert await health_over(client.channel(target)) == SERVING
    for refused_client in (
        tls(grpc_tls_ca_file=pki.ca.ca_file),
        tls(
            grpc_tls_ca_file=pki.ca.ca_file,
            grpc_tls_cert_file=wrong_cert,
            grpc_tls_key_file=wrong_key,
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_over(refused_client.channel(target))
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_the_plaintext_health_port_beside_a_tls_server_serves_health_only(
    mtls_server: GrpcServer,
) -> None:
    assert mtls_server.health_port is not None
    target = f"127.0.0.1:{mtls_server.health_port}"
    assert await health_over(grpc.aio.insecure_channel(target)) == SERVING
    async with grpc.aio.insecure_channel(target) as channel:
        reflection = channel.unary_unary(
            "/grpc.reflection.v1alpha.ServerReflection/Info",
            request_serializer=None,
            response_deserializer=None,
        )
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await reflection(b"", timeout=5)
    assert missing.value.code() is grpc.StatusCode.UNIMPLEMENTED


async def test_the_gateways_billing_client_speaks_mutual_tls(
    mtls_server: GrpcServer, pki: Pki
) -> None:
    cert, key = pki.client
    billing = BillingClient(
        target=f"127.0.0.1:{mtls_server.port}",
        credentials=ServiceCredentials("gateway", SECRET),
        timeout=5,
        tls=tls(grpc_tls_ca_file=pki.ca.ca_file, grpc_tls_cert_file=cert, grpc_tls_key_file=key),
    )
    try:
        assert await billing.is_serving()
    finally:
        await billing.close()


@pytest.mark.parametrize(
    "fields",
    [
        {"grpc_tls_cert_file": "server"},
        {"grpc_tls_require_client_cert": True, "grpc_tls_ca_file": "ca"},
    ],
    ids=["cert-without-key", "mtls-without-own-cert"],
)
def test_tls_settings_that_do_not_fit_together_are_refused_at_start(
    pki: Pki, fields: dict[str, Any]
) -> None:
    files = {"server": pki.server[0], "ca": pki.ca.ca_file}
    values = {name: files.get(value, value) for name, value in fields.items()}
    with pytest.raises(ValidationError, match="GRPC_TLS"):
        tls(**values)


def test_a_tls_file_that_cannot_be_read_stops_the_start_naming_it() -> None:
    settings = tls(grpc_tls_ca_file="/nonexistent/ca.crt")
    with pytest.raises(ValueError, match=r"/nonexistent/ca\.crt cannot be read"):
        settings.channel("127.0.0.1:1")
