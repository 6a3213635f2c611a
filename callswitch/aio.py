"""Small asyncio helpers shared by the daemon's loops."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, seconds: float | None) -> bool:
    """Wait until ``event`` is set or ``seconds`` pass; True if it was set.

    Long-running loops use this instead of ``asyncio.wait_for(event.wait(), ...)``: on Python 3.11
    ``wait_for`` can swallow a cancellation that arrives just as the event is set, and a loop that
    misses its cancellation never stops (a shutdown that hangs).
    """
    if seconds is None:
        await event.wait()
        return True
    try:
        async with asyncio.timeout(max(0.0, seconds)):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
