"""The baseline for webhook ingest: signature check and one INSERT … ON CONFLICT per request,
committed before the 2xx (what a straightforward handler does), into a copy of the inbox table.
Served like the receiver (bench/serve_app.py)."""

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import stripe
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

INSERT = """INSERT INTO bench_naive_events (id, type, created, livemode, payload)
            VALUES (%s, %s, to_timestamp(%s), %s, %s::jsonb) ON CONFLICT (id) DO NOTHING"""


def create_app() -> Starlette:
    secret = os.environ["STRIPE_WEBHOOK_SECRET"]
    pool = AsyncConnectionPool(os.environ["DATABASE_URL"], min_size=4, max_size=8, open=False)

    async def receive(request: Request) -> Response:
        body = (await request.body()).decode()
        try:
            stripe.WebhookSignature.verify_header(
                body, request.headers.get("stripe-signature", ""), secret, 300
            )
        except stripe.SignatureVerificationError:
            return JSONResponse({"error": "bad signature"}, status_code=400)
        event = json.loads(body)
        async with pool.connection() as conn:
            await conn.execute(
                INSERT, (event["id"], event["type"], event["created"], event["livemode"], body)
            )
        return JSONResponse({"received": True})

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await pool.open()
        yield
        await pool.close()

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/webhooks/stripe", receive, methods=["POST"]), Route("/healthz", healthz)],
        lifespan=lifespan,
    )
