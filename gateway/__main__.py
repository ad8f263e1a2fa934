"""`python -m gateway`: serve the REST edge."""

from gateway.settings import GatewaySettings
from services.common.http import serve_asgi


def main() -> None:
    settings = GatewaySettings()
    serve_asgi(
        "gateway.app:create_app_from_environment",
        host=settings.gateway_host,
        port=settings.gateway_port,
        workers=settings.gateway_workers,
        grace_seconds=settings.gateway_shutdown_grace_seconds,
        limits=settings,
        metrics=settings,
    )


if __name__ == "__main__":
    main()
