"""Ending one agent stream from outside its handler (the sweeper, an HTTP thread, a newer registration).

The proxy's gRPC handlers run as coroutines on one event loop (grpc.aio). grpc.aio has no `context.cancel()`,
and cancelling a handler's task sends the agent no status at all (the RPC, and its slot under
`maximum_concurrent_rpcs`, would stay until the agent hung up). So a handler awaits what the agent sends through
`StreamStop.race`; a stop requested from any thread ends that wait with `Stopped`, and the handler answers
CANCELLED with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class Stopped(Exception):
    """The stream was told to stop; `reason` says why (it becomes the CANCELLED status' details)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StreamStop:
    """Created by a handler on its loop; `request` may be called from any thread, the first reason wins."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped: asyncio.Future[str] = self._loop.create_future()

    def request(self, reason: str) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the stream ended with it
            self._loop.call_soon_threadsafe(self._set, reason)

    def _set(self, reason: str) -> None:
        if not self._stopped.done():
            self._stopped.set_result(reason)

    async def race(self, awaitable: Awaitable[T]) -> T:
        """The awaitable's result, or Stopped when a stop comes first (the awaitable is then cancelled)."""
        if self._stopped.done():
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise Stopped(self._stopped.result())
        task = asyncio.ensure_future(awaitable)
        try:
            await asyncio.wait((task, self._stopped), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # the handler itself was cancelled (the agent hung up, the server stops)
            task.cancel()
            raise
        if task.done():
            return task.result()
        task.cancel()
        raise Stopped(self._stopped.result())
