"""Retention: remove the personal data of old callback requests, keep them for statistics.

A finished request created more than N days ago is anonymised in place (SQL: ``purge_batch`` in
``db/queries/reports.sql``): name, phone numbers, IP address, User-Agent, idempotency key and body
fingerprint are blanked; page, referrer and visited-page addresses lose their query strings; the free
``attributes`` keep only the keys listed in ``keep_attributes``; visitor legs lose the dialled number;
audit events lose the query string of their page address. ``callback_requests.anonymised_at`` marks
the row (so a run only looks at rows not yet done) and each run that changed something adds one row to
``retention_runs``. Everything the reports use stays: site, page, campaign, routing, states, times,
outcomes, legs.

No salted hash of the phone number is kept: phone numbers are few enough to brute-force any hash,
so a hash would still be personal data.
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from callswitch.db.queries import QUERIES as Q

# Attributes copied into columns at intake (product, postal_code, company_size) carry no identity.
DEFAULT_KEEP_ATTRIBUTES: tuple[str, ...] = ("product", "postal_code", "company_size")
BATCH_SIZE = 5000


async def purge(
    conn: asyncpg.Connection,
    older_than_days: int,
    *,
    dry_run: bool = False,
    keep_attributes: Sequence[str] = DEFAULT_KEEP_ATTRIBUTES,
    batch_size: int = BATCH_SIZE,
    actor: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Anonymise finished requests created more than ``older_than_days`` days ago.

    Works in batches of ``batch_size`` requests, one transaction each (rows locked by a concurrent run are
    skipped, not waited for). Returns ``{"older_than_days", "cutoff", "dry_run", "requests", "call_legs",
    "events", "run_id"}``; with ``dry_run`` the counts are what would be anonymised and nothing changes.
    """
    if older_than_days < 0:
        raise ValueError("older_than_days must be >= 0")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
    result: dict[str, Any] = {"older_than_days": older_than_days, "cutoff": cutoff, "dry_run": dry_run,
                              "requests": 0, "call_legs": 0, "events": 0, "run_id": None}
    if dry_run:
        rec = await conn.fetchrow(Q.purge_count, cutoff)
        assert rec is not None
        result.update(requests=rec["requests"], call_legs=rec["call_legs"], events=rec["events"])
        return result
    keep = list(keep_attributes)
    while True:
        async with conn.transaction():
            rec = await conn.fetchrow(Q.purge_batch, cutoff, batch_size, keep)
        assert rec is not None
        result["requests"] += rec["requests"]
        result["call_legs"] += rec["call_legs"]
        result["events"] += rec["events"]
        if rec["requests"] < batch_size:
            break
    if result["requests"]:
        result["run_id"] = await conn.fetchval(
            Q.purge_record_run, older_than_days, cutoff, result["requests"], result["call_legs"],
            result["events"], actor or _whoami(),
        )
    return result


def _whoami() -> str:
    try:
        return f"callswitch purge ({getpass.getuser()})"
    except (KeyError, OSError):
        return "callswitch purge"
