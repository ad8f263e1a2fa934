"""`serve_asgi`, the one place the gateway and the webhooks receiver start: a real server in a
child process, stopped with SIGTERM as Kubernetes stops a pod."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tatame_devstack.ports import free_port

SLOW_SECONDS = 1.5


def serve_command(*, port: int, workers: int) -> list[str]:
    """A child Python that serves the test app as `python -m gateway` serves the gateway, with
    the HTTP limits of the environment (HTTP_*)."""
    return [
        sys.executable,
        "-c",
        "from services.common.http import serve_asgi; "
        "from services.common.settings import HttpServerSettings; "
        "serve_asgi('tests.integration.asgi_server_app:create_app', host='127.0.0.1', "
        f"port={port}, workers={workers}, grace_seconds=10, limits=HttpServerSettings())",
    ]


@contextmanager
def served(
    tmp_path: Path, *, workers: int, **settings: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """tests/integration/asgi_server_app.py served by `serve_asgi` with `workers` processes and
    `settings` (HTTP_… variables) in its environment."""
    port = free_port()
    env = {
        **os.environ,
        "SLOW_SECONDS": str(SLOW_SECONDS),
        "SHUTDOWN_MARKER": str(tmp_path / "shut-down"),
        **settings,
    }
    process = subprocess.Popen(serve_command(port=port, workers=workers), env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "the server exited while starting"
            try:
                if httpx.get(f"{url}/pid", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_lets_requests_in_flight_finish_refuses_new_ones_and_runs_shutdown(
    tmp_path: Path, workers: int
) -> None:
    with served(tmp_path, workers=workers) as (process, url):
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            in_flight = asyncio.create_task(client.get("/slow"))
            await asyncio.sleep(SLOW_SECONDS / 3)  # the request has reached the app
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(SLOW_SECONDS / 3)
            with pytest.raises(httpx.ConnectError):
                await asyncio.to_thread(httpx.get, f"{url}/pid", timeout=1)
            answer = await in_flight
        assert (answer.status_code, answer.content) == (200, b"done")
        assert await asyncio.to_thread(process.wait, 20) == 0
        assert (tmp_path / "shut-down").read_text() == "shut down"


def test_a_worker_that_cannot_start_stops_the_server_with_an_error() -> None:
    # No SLOW_SECONDS: the factory fails in the worker, as a gateway with bad settings would.
    env = {k: v for k, v in os.environ.items() if k != "SLOW_SECONDS"}
    command = serve_command(port=free_port(), workers=1)
    assert subprocess.run(command, env=env, timeout=60).returncode != 0


def raw_exchange(url: str, request: bytes, *, timeout: float = 10) -> tuple[bytes, bool]:
    """Send `request` bytes on a fresh connection; what came back and whether the server closed
    the connection (before `timeout`)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            return received, False
        return received, True


def test_oversized_or_too_many_headers_are_431_and_a_raw_0xff_byte_is_400(tmp_path: Path) -> None:
    with served(tmp_path, workers=1, HTTP_MAX_HEADER_BYTES=str(16 * 1024)) as (_, url):
        big = b"GET /pid HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
        many = (
            b"GET /pid HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-%d: 1\r\n" % i for i in range(150))
            + b"\r\n"
        )
        for request in (big, many):
            answer, closed = raw_exchange(url, request)
            assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
            assert closed
        fits = b"GET /pid HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8_000 + b"\r\n\r\n"
        assert raw_exchange(url, fits, timeout=2)[0].startswith(b"HTTP/1.1 200 ")
        # hyper refuses it before the app runs: a bare 400 (no body), and the connection closed.
        answer, closed = raw_exchange(url, b"GET /p\xffid HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert closed


def test_slow_headers_and_idle_keep_alive_connections_are_closed(tmp_path: Path) -> None:
    with served(tmp_path, workers=1, HTTP_HEADER_READ_TIMEOUT_SECONDS="1") as (_, url):
        answer, closed = raw_exchange(url, b"GET /pid HTTP/1.1\r\nHost: x\r\n")
        assert closed, "a request whose headers never end holds its connection"
        assert b" 200 " not in answer
        answer, closed = raw_exchange(url, b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert closed, "an idle keep-alive connection is never closed"
