"""Fixtures: the real `ticker` binary on a free port, a TCP relay a test can cut or make refuse
WebSocket upgrades, and `async def` tests run on a fresh event loop each.

The binary is `$TICKER_BIN` (the Rust test target `tests/python_client.rs` sets it), else the
debug build under `$CARGO_TARGET_DIR` or the repository's `target/`.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

# Every test ends within this, whatever happens to the server.
TEST_TIMEOUT_S = 60

REPO = Path(__file__).resolve().parents[3]

# The per-address limits of a public endpoint are off (every test client comes from one
# address), the feed ticks fast and sessions close at once on SIGTERM unless a test says so.
BASE_ENV = {
    "TICKER__SERVER__MAX_CONNECTIONS_PER_IP": "0",
    "TICKER__SERVER__CONNECT_RATE_PER_IP": "0",
    "TICKER__WS__MAX_CLIENT_MESSAGES_PER_SEC": "0",
    "TICKER__SERVER__DRAIN_MS": "0",
    "TICKER__SERVER__SHUTDOWN_GRACE_MS": "200",
    "TICKER__SERVER__WORKERS": "1",
    "TICKER__FEED__TICK_INTERVAL_MS": "20",
    "TICKER__LOG__LEVEL": "warn",
}


def binary() -> Path:
    explicit = os.environ.get("TICKER_BIN")
    if explicit:
        return Path(explicit)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    found = target / "debug" / "ticker"
    if not found.is_file():
        pytest.skip(f"no ticker binary: set TICKER_BIN or run cargo build ({found} is missing)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A `ticker` process on 127.0.0.1:`port`; killed when the test ends."""

    def __init__(self, env: dict[str, str], port: int | None = None) -> None:
        self.env = env
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        env = {**os.environ, **BASE_ENV, **self.env, "TICKER__SERVER__PORT": str(self.port)}
        env.pop("RUST_LOG", None)
        self.process = subprocess.Popen(
            [str(binary())], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ticker exited at start: {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("ticker did not become ready")

    def terminate(self) -> None:
        """SIGTERM: the server drains (per `TICKER__SERVER__DRAIN_MS`) and exits."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Started servers, all killed at the end of the test; append `Server(...).start()`."""
    started: list[Server] = []
    yield started
    for server in started:
        server.kill()


@pytest.fixture
def server(servers: list[Server]) -> Server:
    started = Server({}).start()
    servers.append(started)
    return started


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Runs `async def` tests on a fresh loop, within `TEST_TIMEOUT_S`."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    args = {name: pyfuncitem.funcargs[name] for name in names}

    async def bounded() -> None:
        async with asyncio.timeout(TEST_TIMEOUT_S):
            await pyfuncitem.obj(**args)

    asyncio.run(bounded())
    return True
