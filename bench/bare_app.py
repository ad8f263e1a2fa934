"""The ceiling: a bare FastAPI endpoint served with the gateway's server settings."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/bare")
async def bare() -> dict[str, str]:
    return {"status": "ok"}
