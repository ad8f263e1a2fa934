"""RequestContextMiddleware's access log: what status it records for each way a request ends."""

import logging

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.http import RequestContextMiddleware

SCOPE = {"type": "http", "method": "POST", "path": "/webhooks/stripe", "headers": []}


async def _nothing_to_receive() -> Message:
    return {"type": "http.disconnect"}


async def _run(app: ASGIApp) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await RequestContextMiddleware(app, max_body_bytes=1024)(dict(SCOPE), _nothing_to_receive, send)
    return sent


def _logged_status(caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    (record,) = [r for r in caplog.records if r.getMessage() == "request"]
    return record.__dict__["fields"]["status"], record.levelno


async def test_a_client_that_left_before_any_answer_is_logged_as_499_not_500(caplog) -> None:
    async def app(_scope: Scope, _receive: Receive, _send: Send) -> None:
        return  # the client hung up; nobody to answer

    caplog.set_level(logging.DEBUG, logger="http.access")
    assert await _run(app) == []
    assert _logged_status(caplog) == (499, logging.INFO)


async def test_an_unhandled_error_is_a_500_with_the_shared_body_and_logged(caplog) -> None:
    async def app(_scope: Scope, _receive: Receive, _send: Send) -> None:
        raise RuntimeError("secret detail")

    caplog.set_level(logging.DEBUG, logger="http.access")
    sent = await _run(app)
    assert sent[0]["status"] == 500
    assert b"secret detail" not in sent[1]["body"]
    assert b'"internal"' in sent[1]["body"]
    assert _logged_status(caplog) == (500, logging.WARNING)
