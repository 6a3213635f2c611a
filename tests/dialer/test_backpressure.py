"""Claiming under a line shortage: the dialer must not churn through the queue it cannot dial.

With fewer lines on the trunk than ``max_concurrent_calls``, every request claimed beyond the free lines
is put back (an attempt ``postponed``). Before the back-pressure in ``Dialer._room`` the dialer claimed
and put back queued requests as fast as Postgres allowed while a backlog waited; now, after a
request is put back, it claims no more than it has in progress until a call ends or ``busy_wait``
passes.
"""

from __future__ import annotations

from pathlib import Path

from tests.dialer.conftest import CONFIG, ROUTING, start_stack, stop_stack

LINES = 2
MAX_CONCURRENT = 10
BUSY_WAIT = 0.5
REQUESTS = 40


async def test_line_shortage_does_not_churn_the_queue(clean_db: str, tmp_path: Path) -> None:
    members = ", ".join(f'"+1312555010{i}"' for i in range(10))  # all accept
    routing = (ROUTING.replace("{members}", members).replace("{strategy}", "sequential")
               .replace("{mode}", "agent_first").replace("    overflow: central\n", "")
               .replace('caller_id: "+13125550000"}', f'caller_id: "+13125550000", max_channels: {LINES}}}'))
    config = (CONFIG.replace("busy_wait: 0.1s", f"busy_wait: {BUSY_WAIT}s")
              .replace("  poll_interval: 0.2s\n", f"  poll_interval: 0.2s\n  max_concurrent_calls: {MAX_CONCURRENT}\n"))
    # every agent accepts, every visitor talks and hangs up: each call holds a line for a while
    st = await start_stack(clean_db, tmp_path, routing, config=config,
                           behaviour=lambda number: "accept" if number.lstrip("+").startswith("1312") else "hangs_up")
    try:
        ids = [await st.post(f"+1773555{i:04d}") for i in range(REQUESTS)]
        for request_id in ids:
            row = await st.wait_final(request_id, timeout=120)
            assert row["outcome"] == "connected", (request_id, row["outcome"])
        postponed = (await st.fetch("SELECT count(*) AS n FROM call_attempts WHERE outcome = 'postponed'"))[0]["n"]
    finally:
        await stop_stack(st)
    # Measured on this scenario: 102-108 put back without the hold, 44-52 with it (about one per request
    # while it waits its turn behind a busy line).
    assert postponed <= 2 * REQUESTS, postponed
