"""Serve the app with uvicorn: one process, on the running (uvloop) event loop."""

from __future__ import annotations

import logging
import signal
import socket

import uvicorn
from starlette.types import ASGIApp

from server.config import ConfigError

_log = logging.getLogger("payments.gateway")


def parse_address(address: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port`; port 0 picks a free one."""
    host, separator, port = address.rpartition(":")
    if not separator or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"PAYMENTS_GATEWAY_ADDRESS must be host:port, got {address!r}")
    host = host.removeprefix("[").removesuffix("]") or "0.0.0.0"  # noqa: S104
    return host, int(port)


def bind(address: str) -> socket.socket:
    host, port = parse_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ConfigError(f"cannot listen on {address}: {error.strerror}") from None
    return sock


def bound_address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve(app: ASGIApp, sock: socket.socket) -> None:
    """Until SIGTERM or SIGINT; in-flight requests finish first."""
    config = uvicorn.Config(
        app,
        loop="uvloop",
        # Named, not "auto": the parser does not depend on what else is installed.
        http="httptools",
        lifespan="off",
        # Our own log lines say what happened to each event; no per-request line.
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the stop signal once it has shut down; with these
    # handlers in place (it restores them first) that ends the process with 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    _log.info("gateway listening on http://%s", bound_address(sock))
    await server.serve(sockets=[sock])
    _log.info("gateway stopped")
