"""The wire protocol's messages (docs/protocol.md) as typed dataclasses, and the events the
client adds of its own (connection state, seq gaps).

Every server message is parsed by `parse_message`; fields the server adds later are ignored,
so this package keeps working against newer servers of protocol version 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal, Mapping, Union

__all__ = [
    "Quote",
    "Bar",
    "HistoryLimits",
    "Welcome",
    "Authenticated",
    "Subscribed",
    "Snapshot",
    "Quotes",
    "Status",
    "Pong",
    "History",
    "Error",
    "Message",
    "ConnectionState",
    "StateChange",
    "Gap",
    "Event",
    "parse_message",
]


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `data` that are fields of `cls` (unknown ones are ignored)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class Quote:
    """One symbol's state after an update; `seq` rises by one per update of the symbol."""

    symbol: str
    price: float
    bid: float
    ask: float
    open: float
    high: float
    low: float
    change: float
    change_pct: float
    volume: int
    seq: int
    ts: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Quote:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class Bar:
    """An OHLCV bar: start `t` (Unix ms), open/high/low/close, volume and update count."""

    t: int
    o: float
    h: float
    l: float  # noqa: E741 (the wire name)
    c: float
    v: int
    n: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Bar:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class HistoryLimits:
    """What history and resume reach: bars kept per interval, updates a resume can replay."""

    intervals: dict[str, int]
    resume_updates: int
    max_resume_quotes: int


@dataclass(frozen=True)
class Welcome:
    """Always the first frame of a session."""

    version: int
    session_id: str
    heartbeat_interval_ms: int
    idle_timeout_ms: int
    node: str
    symbols: list[str] | None = None
    symbol_count: int | None = None
    history: HistoryLimits | None = None
    expires_at: int | None = None
    delay_ms: int | None = None
    run: str | None = None
    type: Literal["welcome"] = "welcome"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Welcome:
        known = _known(cls, data)
        if isinstance(known.get("history"), Mapping):
            known["history"] = HistoryLimits(**_known(HistoryLimits, known["history"]))
        return cls(**known)


@dataclass(frozen=True)
class Authenticated:
    """A token sent with `auth` was taken; `expires_at` is the new expiry (Unix ms)."""

    expires_at: int | None = None
    type: Literal["authenticated"] = "authenticated"


@dataclass(frozen=True)
class Subscribed:
    """The full subscription after a subscribe or unsubscribe; `recovered` lists resumed symbols."""

    symbols: list[str]
    id: Any = None
    recovered: list[str] = field(default_factory=list)
    type: Literal["subscribed"] = "subscribed"


@dataclass(frozen=True)
class Snapshot:
    """The latest quotes of newly added symbols."""

    quotes: list[Quote]
    type: Literal["snapshot"] = "snapshot"


@dataclass(frozen=True)
class Quotes:
    """Updates. `source` is the client's: "ws" for pushed frames, "poll" for the polling fallback."""

    quotes: list[Quote]
    source: Literal["ws", "poll"] = "ws"
    type: Literal["quotes"] = "quotes"


@dataclass(frozen=True)
class Status:
    """The feed's state; with `server == "draining"` the server closes this session in
    `reconnect_after_ms`."""

    feed: str
    since: int | None = None
    server: str | None = None
    reconnect_after_ms: int | None = None
    type: Literal["status"] = "status"


@dataclass(frozen=True)
class Pong:
    id: Any = None
    type: Literal["pong"] = "pong"


@dataclass(frozen=True)
class History:
    """A symbol's bars, oldest first."""

    symbol: str
    interval: str
    bars: list[Bar]
    id: Any = None
    type: Literal["history"] = "history"


@dataclass(frozen=True)
class Error:
    """A refused request (the connection stays open); `symbols` names the symbols concerned."""

    code: str
    message: str
    symbols: list[str] | None = None
    id: Any = None
    type: Literal["error"] = "error"


Message = Union[
    Welcome, Authenticated, Subscribed, Snapshot, Quotes, Status, Pong, History, Error
]

ConnectionState = Literal["connecting", "open", "reconnecting", "polling", "closed"]


@dataclass(frozen=True)
class StateChange:
    """The client's connection state changed.

    - "connecting": a WebSocket connect is under way (`attempt` counts consecutive failures);
    - "open": a session is up (`welcome` is its first frame); the subscription is being
      restored (its `Subscribed` reply, with `recovered`, follows as an event);
    - "reconnecting": the socket is gone; the next attempt comes after `delay` seconds;
    - "polling": WebSocket failed `attempt` times in a row, quotes come from HTTP polling;
    - "closed": for good, by `close()` or a close code that says not to retry (`code`, `reason`).
    """

    state: ConnectionState
    attempt: int = 0
    code: int | None = None
    reason: str = ""
    delay: float | None = None
    welcome: Welcome | None = None
    type: Literal["state"] = "state"


@dataclass(frozen=True)
class Gap:
    """A symbol's seq did not continue by one: `received` is above `expected` when updates were
    missed (a conflated slow client, a resume beyond the server's ring, polling), below it when
    the feed started again (a restarted single-process server)."""

    symbol: str
    expected: int
    received: int
    type: Literal["gap"] = "gap"


Event = Union[Quotes, Snapshot, Status, Error, Subscribed, StateChange, Gap]


def parse_message(data: Mapping[str, Any]) -> Message | None:
    """The typed message of a decoded server frame; None for a type this client does not know."""
    kind = data.get("type")
    if kind == "quotes":
        return Quotes([Quote.from_dict(q) for q in data["quotes"]])
    if kind == "snapshot":
        return Snapshot([Quote.from_dict(q) for q in data["quotes"]])
    if kind == "history":
        known = _known(History, data)
        known["bars"] = [Bar.from_dict(b) for b in data["bars"]]
        return History(**known)
    if kind == "welcome":
        return Welcome.from_dict(data)
    simple: dict[str, type] = {
        "authenticated": Authenticated,
        "subscribed": Subscribed,
        "status": Status,
        "pong": Pong,
        "error": Error,
    }
    cls = simple.get(kind)  # type: ignore[arg-type]
    if cls is None:
        return None
    known = _known(cls, data)
    if cls is Subscribed and known.get("recovered") is None:
        known.pop("recovered", None)
    return cls(**known)  # type: ignore[no-any-return]
