"""`TickerClient` against the real `ticker` binary: resume, restarts, close codes, draining,
token refresh, the polling fallback and request timeouts."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest
from websockets.asyncio.server import serve

from conftest import Server
from recorder import Recorder
from relay import Relay
from ticker_client import (
    Backoff,
    Error,
    Gap,
    NotConnected,
    Quote,
    Quotes,
    Snapshot,
    Status,
    Subscribed,
    TickerClient,
)

SYMBOLS = ["AAPL", "MSFT", "NVDA"]
FAST = Backoff(base=0.05, cap=0.3)
SECRET = "a test secret that is at least 32 characters long"


def by_seq(quotes: list[Quote]) -> dict[tuple[str, int], Quote]:
    return {(q.symbol, q.seq): q for q in quotes}


def assert_contiguous(quotes: list[Quote]) -> None:
    """Each symbol's seqs rise by exactly one: nothing lost, nothing repeated."""
    last: dict[str, int] = {}
    for q in quotes:
        if q.symbol in last:
            assert q.seq == last[q.symbol] + 1, f"{q.symbol}: {last[q.symbol]} then {q.seq}"
        last[q.symbol] = q.seq


def token(ttl_s: int) -> str:
    """An HS256 JWT for `SECRET` that expires in `ttl_s` seconds (whole seconds, as `exp` is)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = part(json.dumps({"exp": int(time.time()) + ttl_s, "sub": "pytest"}).encode())
    signature = hmac.new(SECRET.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{part(signature)}"


async def test_subscribe_and_unsubscribe_await_their_replies(server: Server) -> None:
    """Replies come back to the request that asked; an unknown symbol is an error event while
    the rest applies; after an unsubscribe's reply no quote of the symbol follows."""
    async with TickerClient(server.url) as client:
        rec = Recorder(client)
        await rec.until(lambda: client.state == "open")
        reply = await client.subscribe(["AAPL", "MSFT", "NOPE"])
        assert reply is not None and reply.symbols == ["AAPL", "MSFT"]
        assert [e.code for e in rec.of(Error)] == ["unknown_symbol"]
        await rec.until(lambda: {"AAPL", "MSFT"} <= {q.symbol for q in rec.quotes()})
        reply = await client.unsubscribe(["MSFT"])
        assert reply is not None and reply.symbols == ["AAPL"]
        after = len(rec.events)
        await rec.until(lambda: len(rec.events) > after + 20)
        later = [q for e in rec.after(after) if isinstance(e, Quotes) for q in e.quotes]
        assert later and all(q.symbol == "AAPL" for q in later)
        bars = await client.history("AAPL", "1s", limit=5)
        assert bars.symbol == "AAPL" and 0 < len(bars.bars) <= 5
        assert await client.ping() < 5


async def test_resume_across_drops_loses_and_repeats_nothing(server: Server) -> None:
    """Two cuts of the connection: the client's seqs are contiguous and its quotes equal those of
    a client that never disconnected."""
    relay = await Relay(server.port).start()
    async with TickerClient(server.url, symbols=SYMBOLS) as reference:
        ref = Recorder(reference)
        await ref.until(lambda: len(ref.quotes()) >= 3)
        async with TickerClient(relay.url, symbols=SYMBOLS, backoff=FAST) as client:
            rec = Recorder(client)
            for cut in range(1, 3):
                seen = len(rec.quotes())
                await rec.until(lambda: len(rec.quotes()) >= seen + 30)
                relay.cut()
                await rec.until(lambda: len(rec.states("open")) == cut + 1)
                await rec.until(lambda: len(rec.of(Subscribed)) == cut + 1)
                assert sorted(rec.of(Subscribed)[-1].recovered) == sorted(SYMBOLS)
            seen = len(rec.quotes())
            await rec.until(lambda: len(rec.quotes()) >= seen + 30)
            last = client.seqs
        await ref.until(lambda: all(reference.seqs.get(s, 0) >= last[s] for s in SYMBOLS))
    await relay.close()

    got = rec.quotes()
    assert not rec.of(Gap), rec.of(Gap)
    assert_contiguous(got)
    expected = by_seq(ref.quotes())
    assert all(expected[(q.symbol, q.seq)] == q for q in got)


async def test_server_restart_on_the_same_port_reconnects_and_resubscribes(
    servers: list[Server],
) -> None:
    """Killed and started again on its port: the client reconnects, subscribes again and gets
    a snapshot of the new run."""
    first = Server({}).start()
    servers.append(first)
    async with TickerClient(first.url, symbols=["AAPL"], backoff=FAST) as client:
        rec = Recorder(client)
        await rec.until(lambda: len(rec.quotes()) >= 50)
        first_run = client.welcome.run if client.welcome else None
        assert first_run
        first.kill()
        await rec.until(lambda: bool(rec.states("reconnecting")))
        # A slower feed, so the new run stays behind the seqs the client has: a resume from
        # them is refused and answered with a snapshot (as for any client of another run).
        slower = {"TICKER__FEED__TICK_INTERVAL_MS": "200"}
        servers.append(Server(slower, port=first.port).start())
        await rec.until(lambda: len(rec.states("open")) == 2)
        reopened = len(rec.events)
        await rec.until(lambda: any(isinstance(e, Snapshot) for e in rec.after(reopened)))
        subscribed = [e for e in rec.after(reopened) if isinstance(e, Subscribed)]
        assert subscribed and subscribed[0].symbols == ["AAPL"]
        assert not subscribed[0].recovered, "another run: no resume, a snapshot"
        assert client.welcome and client.welcome.run not in (None, first_run)
        assert any(g.received < g.expected for g in rec.of(Gap))  # the seq went back
        assert client.state == "open"


async def test_close_with_an_auth_code_is_not_retried(servers: list[Server]) -> None:
    """A session whose fixed token expires is closed with 4004; the client stops, no retry."""
    secured = Server({"TICKER__AUTH__HMAC_SECRET": SECRET, "TICKER__AUTH__LEEWAY_SECS": "0"})
    servers.append(secured.start())
    relay = await Relay(secured.port).start()
    async with TickerClient(relay.url, symbols=["AAPL"], token=token(2), backoff=FAST) as client:
        rec = Recorder(client)
        await rec.until(lambda: rec.ended)
        closed = rec.states("closed")
        assert closed and closed[0].code == 4004, rec.of(type(closed[0]))
        assert len(rec.quotes()) > 0
        await asyncio.sleep(0.5)  # time for a retry that must not come
        assert relay.upgrades == 1
        assert not rec.states("reconnecting")
    await relay.close()


async def test_draining_notice_reconnects_after_the_delay_to_another_server(
    servers: list[Server],
) -> None:
    """SIGTERM with a drain window: the client reconnects no sooner than `reconnect_after_ms`
    after the notice (even when the socket is lost before), to the other server, and does not
    count it as a failure."""
    draining = Server({"TICKER__SERVER__DRAIN_MS": "1500"}).start()
    other = Server({}).start()
    servers.extend([draining, other])
    relay = await Relay(draining.port).start()
    async with TickerClient(relay.url, symbols=SYMBOLS, backoff=FAST) as client:
        rec = Recorder(client)
        await rec.until(lambda: len(rec.quotes()) >= 10)
        first_node = client.welcome.node if client.welcome else None
        relay.upstream_port = other.port  # the load balancer sends new connections elsewhere
        draining.terminate()
        await rec.until(lambda: any(s.server == "draining" for s in rec.of(Status)))
        noticed, notice = next((t, e) for t, e in rec.events if isinstance(e, Status))
        relay.cut()  # lost early: the client still waits for the moment the server named
        await rec.until(lambda: len(rec.states("open")) == 2, timeout=10)
        reconnecting = rec.states("reconnecting")[0]
        assert reconnecting.code in (1001, 1006) and reconnecting.attempt == 0
        reconnected_at = next(
            t for t, e in rec.events if getattr(e, "state", None) == "connecting" and t > noticed
        )
        assert reconnected_at >= noticed + notice.reconnect_after_ms / 1000 - 0.05
        assert client.welcome is not None and client.welcome.node != first_node
        await rec.until(lambda: len(rec.of(Subscribed)) >= 2)
    await relay.close()


async def test_token_refresh_keeps_the_session_open_past_the_first_expiry(
    servers: list[Server],
) -> None:
    """Tokens of one to two seconds, refreshed with `auth`: one session for five seconds,
    quotes all along."""
    secured = Server({"TICKER__AUTH__HMAC_SECRET": SECRET, "TICKER__AUTH__LEEWAY_SECS": "0"})
    servers.append(secured.start())
    minted = 0

    async def provider() -> str:
        nonlocal minted
        minted += 1
        return token(2)

    async with TickerClient(secured.url, symbols=["AAPL"], token=provider) as client:
        rec = Recorder(client)
        await rec.until(lambda: client.welcome is not None)
        first_expiry = client.welcome.expires_at  # type: ignore[union-attr]
        assert first_expiry is not None
        started = time.monotonic()
        await rec.until(lambda: time.time() * 1000 > first_expiry + 3000, timeout=10)
        await asyncio.sleep(0)  # let quotes of the last moment in
        last_quote = max(t for t, e in rec.events if getattr(e, "type", "") == "quotes")
        assert last_quote > started + 2
        assert len(rec.states("open")) == 1 and not rec.states("reconnecting")
        assert minted >= 3


async def test_websocket_blocked_falls_back_to_polling_then_back(server: Server) -> None:
    """Upgrades refused by a proxy: the same quotes come from polling; once upgrades pass again,
    the client is back on the WebSocket and resumes from the last polled seq."""
    relay = await Relay(server.port).start()
    relay.block_websocket = True
    revalidated: list[bool] = []

    async def on_request(request: httpx.Request) -> None:
        if request.url.path == "/api/quotes":
            revalidated.append("if-none-match" in request.headers)

    http = httpx.AsyncClient(event_hooks={"request": [on_request]})
    async with TickerClient(server.url, symbols=SYMBOLS) as reference:
        ref = Recorder(reference)
        async with TickerClient(
            relay.url,
            symbols=SYMBOLS,
            backoff=FAST,
            fallback_after=2,
            poll_interval=0.1,
            ws_retry_interval=0.5,
            http=http,
        ) as client:
            rec = Recorder(client)
            await rec.until(lambda: len(rec.quotes("poll")) >= 10)
            assert rec.states("polling") and not rec.states("open")
            relay.block_websocket = False
            await rec.until(lambda: bool(rec.states("open")))
            opened = len(rec.events)
            await rec.until(lambda: len(rec.of(Subscribed)) == 1)
            assert sorted(rec.of(Subscribed)[0].recovered) == sorted(SYMBOLS)
            seen = len(rec.quotes())
            await rec.until(lambda: len(rec.quotes()) >= seen + 20)
            last = client.seqs
        await ref.until(lambda: all(reference.seqs.get(s, 0) >= last[s] for s in SYMBOLS))
    await relay.close()
    await http.aclose()

    assert revalidated[0] is False and all(revalidated[1:]), revalidated  # ETags after the first
    polled = rec.quotes("poll")
    expected = by_seq(ref.quotes())
    assert all(expected[(q.symbol, q.seq)] == q for q in polled if (q.symbol, q.seq) in expected)
    assert sum((q.symbol, q.seq) in expected for q in polled) >= len(polled) - len(SYMBOLS)
    # From the last polled seq on, the WebSocket delivers every update.
    assert not [e for e in rec.after(opened) if isinstance(e, Gap)]
    last_polled = {q.symbol: q for q in polled}
    assert_contiguous(list(last_polled.values()) + rec.quotes("ws"))


async def test_requests_time_out_cleanly_when_the_server_does_not_answer() -> None:
    """A server that welcomes and then never answers: each request raises TimeoutError after
    `request_timeout`, leaves nothing pending, and the session stays usable."""

    async def silent(ws) -> None:  # type: ignore[no-untyped-def]
        welcome = {
            "type": "welcome", "version": 1, "session_id": "silent",
            "heartbeat_interval_ms": 5000, "idle_timeout_ms": 15000, "node": "silent",
        }
        await ws.send(json.dumps(welcome))
        async for _ in ws:
            pass

    async with serve(silent, "127.0.0.1", 0) as fake:
        port = fake.sockets[0].getsockname()[1]
        async with TickerClient(f"http://127.0.0.1:{port}", request_timeout=0.3) as client:
            rec = Recorder(client)
            await rec.until(lambda: client.state == "open")
            for request in (client.subscribe(["AAPL"]), client.history("AAPL"), client.ping()):
                started = time.monotonic()
                with pytest.raises(TimeoutError):
                    await request
                assert 0.25 < time.monotonic() - started < 2
                assert not client._pending
            assert client.state == "open"


async def test_a_server_that_accepts_and_says_nothing_times_out_the_connect() -> None:
    """TCP accepted, no handshake answer: each connect gives up after `connect_timeout` and the
    client backs off; `subscribe` meanwhile says it is not connected by returning None."""
    held: list[asyncio.StreamWriter] = []

    async def mute(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)

    listener = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    client = TickerClient(
        f"http://127.0.0.1:{port}", connect_timeout=0.2, backoff=FAST, fallback_after=None
    )
    async with client:
        rec = Recorder(client)
        await rec.until(lambda: len(rec.states("reconnecting")) >= 2, timeout=5)
        assert "Timeout" in rec.states("reconnecting")[0].reason
        assert await client.subscribe(["AAPL"]) is None
        with pytest.raises(NotConnected):
            await client.ping()
    listener.close()
