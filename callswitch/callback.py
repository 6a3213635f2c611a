"""The callback request as the rest of the pipeline sees it (intake → routing → dialer).

Pure data: no I/O. Intake builds one from a validated HTTP body and a stored row;
routing decides from its fields; the dialer works it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Request states. Final states never change again.
QUEUED = "queued"  # waiting to be dialled now
SCHEDULED = "scheduled"  # deferred until due_at (opening hours, visitor's preferred time, retry)
DIALING_AGENT = "dialing_agent"
AGENT_ANSWERED = "agent_answered"
ACCEPTED = "accepted"
DIALING_CUSTOMER = "dialing_customer"
CONNECTED = "connected"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
EXPIRED = "expired"
REJECTED = "rejected"

ACTIVE_STATES = (QUEUED, SCHEDULED, DIALING_AGENT, AGENT_ANSWERED, ACCEPTED, DIALING_CUSTOMER, CONNECTED)
FINAL_STATES = (COMPLETED, FAILED, CANCELLED, EXPIRED, REJECTED)
ALL_STATES = ACTIVE_STATES + FINAL_STATES
# The visitor may cancel while no call has been bridged to them.
CANCELLABLE_STATES = (QUEUED, SCHEDULED, DIALING_AGENT, AGENT_ANSWERED)


@dataclass(frozen=True)
class CallbackRequest:
    """A visitor's request to be called back, validated and normalised."""

    site: str
    name: str
    phone_e164: str
    phone_region: str  # ISO 3166-1 alpha-2 of the number, e.g. "DE"
    phone_raw: str = ""
    page_url: str | None = None
    referrer: str | None = None
    pages: tuple[str, ...] = ()
    utm: Mapping[str, str] = field(default_factory=dict)  # source, medium, campaign, term, content
    attributes: Mapping[str, Any] = field(default_factory=dict)  # product, postal_code, company_size, ...
    language: str | None = None
    preferred_at: datetime | None = None
    created_at: datetime | None = None
    id: str | None = None

    @property
    def campaign(self) -> str | None:
        return self.utm.get("campaign")

    @property
    def product(self) -> str | None:
        v = self.attributes.get("product")
        return None if v is None else str(v)

    @property
    def postal_code(self) -> str | None:
        v = self.attributes.get("postal_code")
        return None if v is None else str(v)

    @property
    def company_size(self) -> int | None:
        v = self.attributes.get("company_size")
        return v if isinstance(v, int) and not isinstance(v, bool) else None
