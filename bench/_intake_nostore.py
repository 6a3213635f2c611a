"""`callswitch serve` with the storing step answered at once, for bench/intake.py's ceiling run.

Everything else is the real service: the middlewares, the site and origin checks, the body
validation, the phone checks, the routing decision and the response. Only
``BatchWriter.store`` is replaced, by an answer as if the row had been committed. The rate
this process reaches is what the Python request path alone allows, with a database that
cost nothing; no tuning of the storage can take the durable service past it.

Never used by the service itself.
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from callswitch.cli import main
from callswitch.intake.store import BatchWriter


async def _store_nothing(self: BatchWriter, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "outcome": "created", "request_id": uuid.UUID(item["id"]), "request_state": item["state"],
        "request_due_at": datetime.now(UTC), "retry_after_s": None,
    }


if __name__ == "__main__":
    BatchWriter.store = _store_nothing  # type: ignore[method-assign]
    sys.exit(main())
