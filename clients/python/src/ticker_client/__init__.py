"""An asyncio client of the ticker WebSocket protocol (docs/protocol.md in the ticker repository):
quotes as an async iterator of typed events, resume after every reconnect, backoff that follows
the server's close codes, token refresh and an HTTP polling fallback."""

from .client import NotConnected, RequestError, TickerClient, TickerError, TokenSource
from .messages import (
    Authenticated,
    Bar,
    ConnectionState,
    Error,
    Event,
    Gap,
    History,
    HistoryLimits,
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

__all__ = [
    "TickerClient",
    "TickerError",
    "RequestError",
    "NotConnected",
    "TokenSource",
    "Backoff",
    "reconnect_advice",
    "Authenticated",
    "Bar",
    "ConnectionState",
    "Error",
    "Event",
    "Gap",
    "History",
    "HistoryLimits",
    "Message",
    "Pong",
    "Quote",
    "Quotes",
    "Snapshot",
    "StateChange",
    "Status",
    "Subscribed",
    "Welcome",
    "parse_message",
]
