"""`TickerClient`: one live session to a ticker server, kept alive across failures.

One task (`_run`) owns the connection: it connects, reads every frame, and after a close decides
from the close code (`policy.reconnect_advice`) whether and when to connect again. After every
(re)connect it subscribes again with `since`, the last seq seen per symbol, so the server replays
what was missed while its ring still holds it (`recovered`) and sends a snapshot for the rest;
seqs are tracked per symbol, so a repeat is dropped and a hole is reported as a `Gap`. After
`fallback_after` failed connects in a row it polls `/api/quotes` instead and keeps trying the
WebSocket now and then. Everything a user sees comes out of one async iterator of events.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import deque
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Union

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.typing import Subprotocol

from .messages import (
    Authenticated,
    Bar,
    Error,
    Event,
    Gap,
    History,
    Message,
    Pong,
    Quote,
    Quotes,
    Snapshot,
    StateChange,
    Status,
    Subscribed,
    Welcome,
    parse_message,
)
from .policy import Backoff, reconnect_advice

__all__ = ["TickerClient", "TickerError", "RequestError", "NotConnected", "TokenSource"]

PROTOCOL = Subprotocol("ticker.v1")

TokenSource = Union[str, Callable[[], Awaitable[str]]]
"""A fixed token, or an async callable asked for a fresh one before each connect and before
the session's token expires."""


class TickerError(Exception):
    """Base of this package's errors."""


class RequestError(TickerError):
    """The server refused a request with an `error` reply."""

    def __init__(self, error: Error) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


class NotConnected(TickerError):
    """The request needs an open session and there is none (or it ended before the reply)."""


class _ConnectFailed(Exception):
    """A connect that may work later: network error, timeout, an upgrade refused on the way."""


class _Refused(Exception):
    """A connect that will not work by retrying: the server refused the token."""


class _Pending:
    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[Message]) -> None:
        self.future = future


_END = object()


class TickerClient:
    """A client of the ticker protocol (docs/protocol.md); use as `async with` and iterate it.

    `url` is the server's base (`http://host:8080`) or its WebSocket URL (`ws://host:8080/ws`).
    """

    def __init__(
        self,
        url: str,
        *,
        symbols: Iterable[str] = (),
        token: TokenSource | None = None,
        request_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        backoff: Backoff = Backoff(),
        fallback_after: int | None = 3,
        poll_interval: float = 1.0,
        ws_retry_interval: float = 10.0,
        drain_jitter: float = 1.0,
        refresh_lead: float = 30.0,
        ping_interval: float = 5.0,
        ping_timeout: float = 10.0,
        max_events: int = 10_000,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._ws_url, self._http_base = _urls(url)
        self._wanted: list[str] = _dedup(symbols)
        self._token_source = token
        self._request_timeout = request_timeout
        self._connect_timeout = connect_timeout
        self._backoff = backoff
        self._fallback_after = fallback_after
        self._poll_interval = poll_interval
        self._ws_retry_interval = ws_retry_interval
        self._drain_jitter = drain_jitter
        self._refresh_lead = refresh_lead
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._http = http
        self._own_http = http is None

        self._events: asyncio.Queue[object] = asyncio.Queue(max_events)
        self._ended = False
        self._seqs: dict[str, int] = {}
        self._pending: dict[int, _Pending] = {}
        self._auth_ids: deque[int] = deque()
        self._ids = itertools.count(1)
        self._ws: ClientConnection | None = None
        self._welcome: Welcome | None = None
        # Whether the current session is on the run the seqs came from (`welcome.run`).
        self._resume = True
        self._state = "connecting"
        self._closed = False
        self._drain_at: float | None = None
        self._abandoned: str | None = None
        self._token: str | None = token if isinstance(token, str) else None
        self._run_task: asyncio.Task[None] | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._session_tasks: set[asyncio.Task[Any]] = set()

    # ---- lifecycle

    async def __aenter__(self) -> TickerClient:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        """Starts connecting (in the background); `async with` does this."""
        if self._run_task is None:
            if self._http is None:
                self._http = httpx.AsyncClient()
            self._run_task = asyncio.create_task(self._run(), name="ticker-client")

    async def close(self) -> None:
        """Closes the session (code 1000) and ends the event iterator."""
        if self._closed:
            return
        self._closed = True
        ws = self._ws  # the run task lets go of it when cancelled
        if self._run_task is not None:
            self._run_task.cancel()
            await asyncio.gather(self._run_task, return_exceptions=True)
        await self._stop_polling()
        if ws is not None:
            await ws.close()
        if self._own_http and self._http is not None:
            await self._http.aclose()
        self._end(StateChange("closed", code=1000, reason="closed by the client"))

    # ---- what a user sees

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        if self._ended and self._events.empty():
            raise StopAsyncIteration
        item = await self._events.get()
        if item is _END:
            raise StopAsyncIteration
        return item  # type: ignore[return-value]

    @property
    def state(self) -> str:
        """"connecting", "open", "reconnecting", "polling" or "closed"."""
        return self._state

    @property
    def welcome(self) -> Welcome | None:
        """The current (or last) session's `welcome`."""
        return self._welcome

    @property
    def seqs(self) -> dict[str, int]:
        """The last seq seen per symbol (what a resume sends as `since`)."""
        return dict(self._seqs)

    @property
    def symbols(self) -> list[str]:
        """The subscription this client keeps (the server's list after its last reply)."""
        return list(self._wanted)

    # ---- requests

    async def subscribe(self, symbols: Iterable[str]) -> Subscribed | None:
        """Adds symbols; returns the server's `subscribed` reply, or None when no session is
        open (the symbols are subscribed on connect, or polled). Raises `RequestError` when
        the server refuses the whole request, `TimeoutError` when it does not answer."""
        names = _dedup(symbols)
        self._wanted = _dedup([*self._wanted, *names])
        if self._ws is None:
            return None
        reply = await self._request({"op": "subscribe", "symbols": names})
        assert isinstance(reply, Subscribed)
        return reply

    async def unsubscribe(self, symbols: Iterable[str]) -> Subscribed | None:
        """Removes symbols ("*": all); returns the reply like `subscribe`."""
        names = _dedup(symbols)
        gone = set(self._wanted) if "*" in names else set(names)
        self._wanted = [s for s in self._wanted if s not in gone]
        for symbol in gone:
            self._seqs.pop(symbol, None)
        if self._ws is None:
            return None
        reply = await self._request({"op": "unsubscribe", "symbols": names})
        assert isinstance(reply, Subscribed)
        return reply

    async def history(self, symbol: str, interval: str = "1m", limit: int | None = None) -> History:
        """A symbol's bars, oldest first: over the session when one is open, else over HTTP."""
        if self._ws is not None:
            op: dict[str, Any] = {"op": "history", "symbol": symbol, "interval": interval}
            if limit is not None:
                op["limit"] = limit
            reply = await self._request(op)
            assert isinstance(reply, History)
            return reply
        params: dict[str, Any] = {"interval": interval}
        if limit is not None:
            params["limit"] = limit
        response = await self._get(f"/api/history/{symbol}", params=params)
        response.raise_for_status()
        body = response.json()
        bars = [Bar.from_dict(b) for b in body["bars"]]
        return History(symbol=body["symbol"], interval=body["interval"], bars=bars)

    async def ping(self) -> float:
        """An application-level round trip; returns it in seconds."""
        started = time.monotonic()
        await self._request({"op": "ping"})
        return time.monotonic() - started

    async def _request(self, op: dict[str, Any]) -> Message:
        ws = self._ws
        if ws is None:
            raise NotConnected("no open session")
        request_id = next(self._ids)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(future)
        try:
            if op["op"] == "auth":
                self._auth_ids.append(request_id)
            try:
                await ws.send(json.dumps({**op, "id": request_id}))
            except ConnectionClosed as e:
                raise NotConnected("the session closed") from e
            async with asyncio.timeout(self._request_timeout):
                return await future
        finally:
            self._pending.pop(request_id, None)
            if request_id in self._auth_ids:
                self._auth_ids.remove(request_id)

    # ---- the connection

    async def _run(self) -> None:
        failures = 0  # connects that failed in a row
        attempt = 0  # the backoff's attempt
        delay = 0.0
        while True:
            if delay > 0:
                await asyncio.sleep(delay)
            if self._poll_task is None:
                self._set_state(StateChange("connecting", attempt=failures))
            try:
                ws, welcome = await self._open()
            except _Refused as e:
                await self._finish(None, str(e))
                return
            except _ConnectFailed as e:
                failures += 1
                attempt += 1
                if self._fallback_after is not None and failures >= self._fallback_after:
                    if self._poll_task is None:
                        self._set_state(StateChange("polling", attempt=failures, reason=str(e)))
                        self._poll_task = asyncio.create_task(self._poll())
                    delay = self._ws_retry_interval
                else:
                    delay = self._backoff.delay(attempt)
                    self._set_state(
                        StateChange("reconnecting", attempt=failures, reason=str(e), delay=delay)
                    )
                continue
            failures = attempt = 0
            await self._stop_polling()
            code, reason = await self._session(ws, welcome)
            advice = reconnect_advice(code)
            if advice == "no":
                await self._finish(code, reason)
                return
            if self._drain_at is not None:
                # The server said when it would close: reconnect then, spread by jitter, and
                # not as a failure.
                wait = max(0.0, self._drain_at - asyncio.get_running_loop().time())
                delay = wait + random.random() * self._drain_jitter
                self._drain_at = None
            elif advice == "now":
                delay = 0.0
            else:
                attempt += 1
                delay = self._backoff.delay(attempt)
            self._set_state(
                StateChange("reconnecting", attempt=attempt, code=code, reason=reason, delay=delay)
            )

    async def _open(self) -> tuple[ClientConnection, Welcome]:
        """A connected socket and its `welcome`."""
        headers = {}
        token = await self._fresh_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            ws = await connect(
                self._ws_url,
                subprotocols=[PROTOCOL],
                additional_headers=headers,
                open_timeout=self._connect_timeout,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_timeout,
                close_timeout=2,
                max_size=64 * 1024 * 1024,
            )
        except InvalidStatus as e:
            status = e.response.status_code
            body = e.response.body.decode(errors="replace") if e.response.body else ""
            if status in (401, 403):
                raise _Refused(f"upgrade refused with {status}: {body}".strip()) from e
            raise _ConnectFailed(f"upgrade refused with {status}") from e
        except (OSError, TimeoutError, WebSocketException) as e:
            raise _ConnectFailed(f"connect failed: {e!r}") from e
        try:
            async with asyncio.timeout(self._connect_timeout):
                first = parse_message(json.loads(await ws.recv()))
        except (TimeoutError, ConnectionClosed, ValueError) as e:
            await ws.close()
            raise _ConnectFailed(f"no welcome: {e!r}") from e
        if not isinstance(first, Welcome):
            await ws.close()
            raise _ConnectFailed(f"the first frame was not a welcome: {first!r}")
        return ws, first

    async def _session(self, ws: ClientConnection, welcome: Welcome) -> tuple[int, str]:
        """Runs an open session until it closes; its close code and reason."""
        previous = self._welcome
        # Seqs of another run of the feed say nothing about this one: no resume from them.
        self._resume = previous is None or welcome.run is None or previous.run == welcome.run
        self._ws, self._welcome, self._abandoned = ws, welcome, None
        self._set_state(StateChange("open", welcome=welcome))
        reader = asyncio.create_task(self._read(ws))
        if self._wanted:
            self._spawn(self._resubscribe(ws))
        self._schedule_refresh(welcome.expires_at)
        try:
            await reader
        finally:
            reader.cancel()
            for task in list(self._session_tasks):
                task.cancel()
            self._ws = None
            for pending in self._pending.values():
                if not pending.future.done():
                    pending.future.set_exception(NotConnected("the session closed"))
        if self._abandoned is not None:
            return 1006, self._abandoned
        return ws.close_code or 1006, ws.close_reason or ""

    async def _resubscribe(self, ws: ClientConnection) -> None:
        """Subscribes again after a connect, resuming from the last seq of each symbol."""
        since = {s: self._seqs[s] for s in self._wanted if s in self._seqs and self._resume}
        op: dict[str, Any] = {"op": "subscribe", "symbols": list(self._wanted)}
        if since:
            op["since"] = since
        try:
            await self._request(op)
        except (TimeoutError, NotConnected, RequestError) as e:
            # A session that cannot restore the subscription is no good: start again.
            self._abandoned = f"resubscribe failed: {e!r}"
            await ws.close(1001, "resubscribe failed")

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                if isinstance(raw, str):
                    message = parse_message(json.loads(raw))
                    if message is not None:
                        await self._dispatch(message)
        except ConnectionClosed:
            pass

    async def _dispatch(self, message: Message) -> None:
        if isinstance(message, (Quotes, Snapshot)):
            fresh = await self._track(message.quotes, snapshot=isinstance(message, Snapshot))
            if fresh:
                await self._emit(Quotes(fresh) if isinstance(message, Quotes) else Snapshot(fresh))
        elif isinstance(message, Subscribed):
            self._wanted = list(message.symbols)
            for symbol in set(self._seqs) - set(message.symbols):
                del self._seqs[symbol]
            self._resolve(message.id, message)
            await self._emit(message)
        elif isinstance(message, Error):
            pending = self._pending.get(message.id) if isinstance(message.id, int) else None
            # An error naming symbols leaves the rest of the request in force: its reply follows.
            if pending is not None and not message.symbols and not pending.future.done():
                pending.future.set_exception(RequestError(message))
            await self._emit(message)
        elif isinstance(message, (Pong, History)):
            self._resolve(message.id, message)
        elif isinstance(message, Authenticated):
            if self._auth_ids:
                self._resolve(self._auth_ids.popleft(), message)
            self._schedule_refresh(message.expires_at)
        elif isinstance(message, Status):
            if message.server == "draining" and message.reconnect_after_ms is not None:
                loop = asyncio.get_running_loop()
                self._drain_at = loop.time() + message.reconnect_after_ms / 1000
            await self._emit(message)

    async def _track(self, quotes: list[Quote], *, snapshot: bool) -> list[Quote]:
        """The quotes not seen yet (by seq), after emitting a `Gap` for each hole."""
        fresh = []
        for quote in quotes:
            last = self._seqs.get(quote.symbol)
            if last is not None:
                if quote.seq <= last and not snapshot:
                    continue  # a repeat
                if quote.seq > last + 1 or quote.seq < last:
                    await self._emit(Gap(quote.symbol, last + 1, quote.seq))
            self._seqs[quote.symbol] = quote.seq
            fresh.append(quote)
        return fresh

    def _resolve(self, request_id: Any, message: Message) -> None:
        pending = self._pending.get(request_id) if isinstance(request_id, int) else None
        if pending is not None and not pending.future.done():
            pending.future.set_result(message)

    # ---- tokens

    async def _fresh_token(self) -> str | None:
        source = self._token_source
        if source is not None and not isinstance(source, str):
            self._token = await source()
        return self._token

    def _schedule_refresh(self, expires_at: int | None) -> None:
        for task in [t for t in self._session_tasks if t.get_name() == "refresh"]:
            task.cancel()
        if expires_at is None or self._token_source is None or isinstance(self._token_source, str):
            return
        self._spawn(self._refresh(expires_at / 1000), name="refresh")

    async def _refresh(self, expires_at: float) -> None:
        """Sends a fresh token with `auth` ahead of expiry (retrying while time is left)."""
        while True:
            remaining = expires_at - time.time()
            await asyncio.sleep(max(0.0, remaining - min(self._refresh_lead, remaining / 2)))
            try:
                token = await self._fresh_token()
                await self._request({"op": "auth", "token": token})
                return  # `authenticated` scheduled the next refresh
            except (TimeoutError, RequestError, NotConnected):
                if expires_at - time.time() <= 0:
                    return

    # ---- polling

    async def _poll(self) -> None:
        """Polls `/api/quotes` with ETags while the WebSocket fails, emitting `Quotes`."""
        etag: tuple[str, str] | None = None  # (symbols, ETag)
        while True:
            names = ",".join(self._wanted)
            if names:
                headers = {"If-None-Match": etag[1]} if etag and etag[0] == names else {}
                try:
                    response = await self._get("/api/quotes", {"symbols": names}, headers)
                except httpx.HTTPError:
                    response = None
                if response is not None and response.status_code == 200:
                    if "etag" in response.headers:
                        etag = (names, response.headers["etag"])
                    quotes = [Quote.from_dict(q) for q in response.json()["quotes"]]
                    fresh = await self._track(quotes, snapshot=False)
                    if fresh:
                        await self._emit(Quotes(fresh, source="poll"))
                elif response is not None and response.status_code == 401:
                    await self._fresh_token()
            await asyncio.sleep(self._poll_interval)

    async def _get(
        self, path: str, params: dict[str, Any], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        assert self._http is not None, "start() creates the HTTP client"
        headers = dict(headers or {})
        if self._token is None:
            await self._fresh_token()
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return await self._http.get(
            self._http_base + path, params=params, headers=headers, timeout=self._request_timeout
        )

    async def _stop_polling(self) -> None:
        if self._poll_task is not None:
            self._poll_task.cancel()
            await asyncio.gather(self._poll_task, return_exceptions=True)
            self._poll_task = None

    # ---- events

    def _spawn(self, work: Awaitable[None], name: str = "") -> None:
        task = asyncio.ensure_future(work)
        if name:
            task.set_name(name)
        self._session_tasks.add(task)
        task.add_done_callback(self._session_tasks.discard)

    def _set_state(self, change: StateChange) -> None:
        self._state = change.state
        try:
            self._events.put_nowait(change)
        except asyncio.QueueFull:
            pass  # the consumer is far behind; `state` still says it

    async def _emit(self, event: Event) -> None:
        # Waiting here when the consumer is behind stops reading the socket, so the server's
        # slow-client policy (conflation, reported as gaps) applies instead of unbounded memory.
        await self._events.put(event)

    async def _finish(self, code: int | None, reason: str) -> None:
        """Ends for good after a close (or refusal) that says not to retry."""
        await self._stop_polling()
        self._end(StateChange("closed", code=code, reason=reason))

    def _end(self, change: StateChange) -> None:
        if self._ended:
            return
        self._set_state(change)
        self._ended = True
        try:
            self._events.put_nowait(_END)
        except asyncio.QueueFull:
            pass  # `__anext__` ends once the queue is drained


def _urls(url: str) -> tuple[str, str]:
    """The WebSocket URL and the HTTP base of `url` (either form)."""
    url = url.rstrip("/")
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a URL: {url}")
    secure = scheme in ("https", "wss")
    if scheme in ("ws", "wss"):
        host = rest.removesuffix("/ws")
        return url, f"{'https' if secure else 'http'}://{host}"
    return f"{'wss' if secure else 'ws'}://{rest}/ws", url


def _dedup(symbols: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(symbols))
