"""Collects a client's events with the time each arrived, so a test can await a condition on
them instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from ticker_client import Event, Quote, Quotes, Snapshot, StateChange, TickerClient


class Recorder:
    def __init__(self, client: TickerClient) -> None:
        self.client = client
        self.events: list[tuple[float, Event]] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for event in self.client:
            self.events.append((time.monotonic(), event))
            async with self._changed:
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    @property
    def ended(self) -> bool:
        return self._task.done()

    async def until(self, condition: Callable[[], bool], timeout: float = 15.0) -> None:
        """Waits for `condition` to hold, checked after every event."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(condition)

    def of(self, kind: type) -> list:
        return [e for _, e in self.events if isinstance(e, kind)]

    def states(self, name: str) -> list[StateChange]:
        return [e for e in self.of(StateChange) if e.state == name]

    def quotes(self, source: str | None = None) -> list[Quote]:
        """Every quote of `quotes` and `snapshot` events, in order (`source`: only those)."""
        out: list[Quote] = []
        for _, e in self.events:
            if isinstance(e, Snapshot) and source in (None, "ws"):
                out.extend(e.quotes)
            elif isinstance(e, Quotes) and source in (None, e.source):
                out.extend(e.quotes)
        return out

    def after(self, index: int) -> list[Event]:
        return [e for _, e in self.events[index:]]
