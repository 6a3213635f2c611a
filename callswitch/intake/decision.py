"""What intake does with a request: the routing decision turned into a stored state (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from callswitch import callback as states
from callswitch.callback import CallbackRequest
from callswitch.intake.validation import CallbackInput
from callswitch.routing.model import RoutePlan


@dataclass(frozen=True)
class IntakeDecision:
    state: str  # queued | scheduled | rejected
    due_at: datetime | None  # None: now
    rule: str | None = None
    destination: str | None = None
    chain: tuple[str, ...] = ()
    reject_message: str | None = None

    def event_detail(self) -> dict[str, Any]:
        detail: dict[str, Any] = {}
        if self.rule is not None:
            detail["rule"] = self.rule
            detail["destination"] = self.destination
        if self.state == states.SCHEDULED and self.due_at is not None:
            detail["due_at"] = self.due_at.isoformat()
        if self.reject_message is not None:
            detail["reject_message"] = self.reject_message
        return detail


def to_request(site: str, inp: CallbackInput, now: datetime) -> CallbackRequest:
    return CallbackRequest(
        site=site,
        name=inp.name,
        phone_e164=inp.phone.e164,
        phone_region=inp.phone.region,
        phone_raw=inp.phone.given,
        page_url=inp.page_url,
        referrer=inp.referrer,
        pages=inp.pages,
        utm=inp.utm,
        attributes=inp.attributes,
        language=inp.language,
        preferred_at=inp.preferred_at,
        created_at=now,
    )


def decide(plan: RoutePlan | None, inp: CallbackInput, now: datetime) -> IntakeDecision:
    """Without routing rules a request is queued (or scheduled for the visitor's preferred time)."""
    if plan is None:
        if inp.preferred_at is not None and inp.preferred_at > now:
            return IntakeDecision(states.SCHEDULED, inp.preferred_at)
        return IntakeDecision(states.QUEUED, None)
    chain = tuple(d.name for d in plan.chain)
    first = chain[0] if chain else None
    if plan.rejected:
        return IntakeDecision(states.REJECTED, None, plan.rule, first, chain,
                              plan.reject_message or "We can't call you back for this request.")
    if plan.start_at is not None and plan.start_at > now:
        return IntakeDecision(states.SCHEDULED, plan.start_at, plan.rule, first, chain)
    return IntakeDecision(states.QUEUED, None, plan.rule, first, chain)
