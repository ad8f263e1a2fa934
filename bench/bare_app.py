"""The ceiling: a bare FastAPI endpoint, served like the gateway (bench/serve_app.py)."""

from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/bare")
    async def bare() -> dict[str, str]:
        return {"status": "ok"}

    return app
