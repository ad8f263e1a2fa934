"""gRPC between our services over TLS, optionally mutual: PEM files from a mounted Secret, off
when unset (dev, tests). The service credential (services/auth) still names every caller; TLS
keeps it, and the billing data around it, off the wire in clear."""

from pathlib import Path
from typing import Any, Self

import grpc
from pydantic import model_validator

from services.common.settings import BaseServiceSettings


class GrpcTlsSettings(BaseServiceSettings):
    """GRPC_TLS_* of a process that serves gRPC, calls it, or both.

    A server serves TLS when it has a certificate and key, and with GRPC_TLS_REQUIRE_CLIENT_CERT
    only to clients whose certificate GRPC_TLS_CA_FILE signed (mutual TLS). A client speaks TLS
    when it has GRPC_TLS_CA_FILE (the CA that signed the servers' certificates), and presents
    its own certificate and key when it has them."""

    grpc_tls_cert_file: Path | None = None
    grpc_tls_key_file: Path | None = None
    grpc_tls_ca_file: Path | None = None
    grpc_tls_require_client_cert: bool = False
    # Clients: the name the server's certificate must carry, when not the target's host name.
    grpc_tls_server_name: str | None = None
    # Servers with TLS: a plaintext port serving only grpc.health.v1, for kubelet's gRPC probes.
    grpc_health_address: str | None = None

    @model_validator(mode="after")
    def _tls_files_fit_together(self) -> Self:
        if (self.grpc_tls_cert_file is None) != (self.grpc_tls_key_file is None):
            raise ValueError("set both GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE, or neither")
        if self.grpc_tls_require_client_cert and (
            self.grpc_tls_ca_file is None or self.grpc_tls_cert_file is None
        ):
            raise ValueError(
                "GRPC_TLS_REQUIRE_CLIENT_CERT needs GRPC_TLS_CA_FILE and the server's own "
                "GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE"
            )
        return self

    def server_credentials(self) -> grpc.ServerCredentials | None:
        """TLS (or mutual TLS) for a server, None to serve plaintext."""
        if self.grpc_tls_cert_file is None or self.grpc_tls_key_file is None:
            return None
        pair = (_read(self.grpc_tls_key_file), _read(self.grpc_tls_cert_file))
        return grpc.ssl_server_credentials(
            [pair],
            root_certificates=(
                _read(self.grpc_tls_ca_file) if self.grpc_tls_require_client_cert else None
            ),
            require_client_auth=self.grpc_tls_require_client_cert,
        )

    def channel(self, target: str, *, options: Any = None) -> grpc.aio.Channel:
        """A channel to `target`: TLS when GRPC_TLS_CA_FILE is set, plaintext otherwise."""
        if self.grpc_tls_ca_file is None:
            return grpc.aio.insecure_channel(target, options=options)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(self.grpc_tls_ca_file),
            private_key=_read(self.grpc_tls_key_file) if self.grpc_tls_key_file else None,
            certificate_chain=_read(self.grpc_tls_cert_file) if self.grpc_tls_cert_file else None,
        )
        if self.grpc_tls_server_name:
            options = [
                *(options or ()),
                ("grpc.ssl_target_name_override", self.grpc_tls_server_name),
            ]
        return grpc.aio.secure_channel(target, credentials, options=options)


def _read(path: Path | None) -> bytes:
    """A PEM file's bytes; one that cannot be read stops the start with its path, not a trace."""
    if path is None:
        raise ValueError("a GRPC_TLS_* file is required here")
    try:
        return path.read_bytes()
    except OSError as e:
        raise ValueError(f"GRPC_TLS_* file {path} cannot be read: {e.strerror}") from None
