"""`python -m gateway`: serve the REST edge with uvicorn (uvloop + httptools)."""

import uvicorn

from gateway.settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    uvicorn.run(
        "gateway.app:create_app_from_environment",
        factory=True,
        host=settings.gateway_host,
        port=settings.gateway_port,
        workers=settings.gateway_workers,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=int(settings.gateway_shutdown_grace_seconds),
    )


if __name__ == "__main__":
    main()
