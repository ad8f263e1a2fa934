"""`python -m gateway`: serve the REST edge."""

from gateway.settings import GatewaySettings
from services.common.http import serve_asgi

# Requests besides the streams that each worker serves at once.
ORDINARY_REQUESTS = 1024


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
        # Every open billing stream holds a request slot: room for all of them and as many
        # ordinary requests as granian's default allows.
        backpressure=settings.gateway_stream_max_per_process + ORDINARY_REQUESTS,
    )


if __name__ == "__main__":
    main()
