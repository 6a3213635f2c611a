"""Building a :class:`CallbackRequest` from a JSON object shaped like the HTTP API body.

Used by ``callswitch rules test --request``. Raises ValueError with a message for the admin.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import phonenumbers

from callswitch.callback import CallbackRequest

UTM_KEYS = ("source", "medium", "campaign", "term", "content")
ATTRIBUTE_SHORTCUTS = ("product", "postal_code", "company_size", "country")
KNOWN = {
    "name", "phone", "region", "site", "page_url", "referrer", "pages", "utm", "attributes", "language",
    "preferred_at", "id", *(f"utm_{k}" for k in UTM_KEYS), *ATTRIBUTE_SHORTCUTS,
}


def parse_phone(text: str, region: str) -> tuple[str, str]:
    """``("030 1234567", "DE")`` -> ``("+49301234567", "DE")``."""
    try:
        number = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"phone {text!r}: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"phone {text!r} is not a valid number (region {region.upper()})")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164, phonenumbers.region_code_for_number(number) or region.upper()


def request_from_json(data: Any, default_region: str = "US") -> CallbackRequest:
    if not isinstance(data, Mapping):
        raise ValueError("the request must be a JSON object")
    unknown = sorted(set(data) - KNOWN)
    if unknown:
        raise ValueError(f"unknown request field(s): {', '.join(unknown)} (known: {', '.join(sorted(KNOWN))})")
    phone = data.get("phone")
    if not isinstance(phone, str) or not phone.strip():
        raise ValueError("the request needs a phone number: \"phone\": \"+4930...\"")
    e164, region = parse_phone(phone, str(data.get("region") or default_region))
    utm: dict[str, str] = {}
    raw_utm = data.get("utm") or {}
    if not isinstance(raw_utm, Mapping):
        raise ValueError("utm must be an object like {\"campaign\": \"spring\"}")
    utm.update({str(k): str(v) for k, v in raw_utm.items()})
    for key in UTM_KEYS:
        if data.get(f"utm_{key}") is not None:
            utm[key] = str(data[f"utm_{key}"])
    attributes: dict[str, Any] = {}
    raw_attributes = data.get("attributes") or {}
    if not isinstance(raw_attributes, Mapping):
        raise ValueError("attributes must be an object")
    attributes.update(raw_attributes)
    for key in ATTRIBUTE_SHORTCUTS:
        if data.get(key) is not None:
            attributes[key] = data[key]
    language = data.get("language") or attributes.get("language")
    preferred_at = None
    if data.get("preferred_at"):
        preferred_at = datetime.fromisoformat(str(data["preferred_at"]))
        if preferred_at.tzinfo is None:
            raise ValueError("preferred_at needs a UTC offset, e.g. 2025-03-31T10:00:00+02:00")
    pages = data.get("pages") or ()
    return CallbackRequest(
        site=str(data.get("site") or "cli"),
        name=str(data.get("name") or "Visitor"),
        phone_e164=e164,
        phone_region=region,
        phone_raw=phone,
        page_url=data.get("page_url"),
        referrer=data.get("referrer"),
        pages=tuple(str(p) for p in pages),
        utm=utm,
        attributes=attributes,
        language=str(language) if language else None,
        preferred_at=preferred_at,
        id=str(data["id"]) if data.get("id") is not None else None,
    )
