"""One thread running an asyncio event loop, for the proxy's gRPC server (grpc.aio) inside a gunicorn worker.

Every agent stream is a coroutine on this loop instead of a thread of grpcio's synchronous server (3 to 5
threads per agent, ≈24 KiB of stack each). The rest of the proxy stays threaded: it hands work to the loop
with `call` and the thread-safe hand-overs in fodc/proxy/links.py and stream_stop.py.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class LoopThread:
    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float) -> T:
        """Runs `coroutine` on the loop and waits for its result (from another thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float) -> None:
        """Cancels what still runs on the loop, stops it and ends the thread; idempotent."""
        if self._thread.is_alive():
            try:
                self.call(_cancel_the_rest(), timeout_s)
            except Exception as exc:  # noqa: BLE001 (a stuck task must not keep the worker from exiting)
                log.warning("event loop tasks did not end in time", extra={"fields": {"reason": repr(exc)}})
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout_s)
        if not self._thread.is_alive() and not self.loop.is_closed():
            self.loop.close()


async def _cancel_the_rest() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()
