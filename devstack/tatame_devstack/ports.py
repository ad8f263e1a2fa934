"""Loopback ports for the dev stack, its smoke checks, the tests and the benches."""

import socket


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now: the system's pick, released at once. It
    stays free until something binds it (the caller's server, or nothing: a closed port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
