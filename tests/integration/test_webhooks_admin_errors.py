"""The webhooks admin API fails through the same `rpc` wrapper as billing: a reason with every
status, and the operators' CLI prints a clean message, never exception text."""

import os
import secrets
from pathlib import Path

import grpc
import pytest
from psycopg_pool import AsyncConnectionPool
from tatame.webhooks.v1 import webhooks_pb2, webhooks_pb2_grpc

from services.auth.service_credentials import ServiceCredentials
from services.common.errors import ErrorReason
from services.common.rpc import reason_of
from services.webhooks.grpc_api import OPS_CLI, start_admin_server
from tests.integration.ops_cli import events_cli


async def test_admin_api_with_its_database_down_is_unavailable_and_the_cli_says_so_cleanly(
    tmp_path: Path,
) -> None:
    # No server listens in tmp_path: every connection attempt fails.
    pool = AsyncConnectionPool(
        f"postgresql://webhooks@/webhooks?host={tmp_path}", min_size=1, timeout=1, open=False
    )
    await pool.open(wait=False)
    secret = secrets.token_urlsafe(32)
    admin = await start_admin_server(
        address="127.0.0.1:0", pool=pool, service_secrets={OPS_CLI: secret}
    )
    credentials = ServiceCredentials(OPS_CLI, secret, audience="webhooks")
    env = {
        **os.environ,
        "WEBHOOKS_ADMIN_TARGET": f"127.0.0.1:{admin.port}",
        "WEBHOOKS_ADMIN_CLIENT_SECRET": secret,
        "TATAME_ENV": "test",
    }
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{admin.port}") as channel:
            stub = webhooks_pb2_grpc.WebhooksAdminServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetEvent(
                    webhooks_pb2.GetEventRequest(id="evt_1"), metadata=credentials.metadata(None)
                )
            with pytest.raises(grpc.aio.AioRpcError) as invalid:
                await stub.ListEvents(
                    webhooks_pb2.ListEventsRequest(page_size=501),
                    metadata=credentials.metadata(None),
                )
        shown = await events_cli(env, "show", "evt_1")
    finally:
        await admin.stop(0)
        await pool.close()
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    assert reason_of(refused.value) == ErrorReason.DATABASE_UNAVAILABLE
    assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(invalid.value) == ErrorReason.INVALID_ARGUMENT
    assert shown.returncode == 1
    assert shown.stderr.strip() == "error: UNAVAILABLE: the database is unavailable; try again"
