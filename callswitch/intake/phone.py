"""Phone number checks for callback requests (pure).

Parse with the site's default region, require a valid number, normalise to E.164,
then apply the site's policy: allowed countries, toll-fraud prefixes and number types,
and the company's own numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from callswitch.config import NUMBER_TYPES, PhonePolicy

MAX_PHONE_LENGTH = 40


@dataclass(frozen=True)
class Phone:
    given: str
    e164: str
    region: str  # ISO 3166 alpha-2, "" if the number belongs to no single region


class PhoneRejected(ValueError):
    """The number can't be called back; ``reason`` is shown to the visitor."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def check_phone(raw: str, policy: PhonePolicy) -> Phone:
    text = raw.strip()
    if not text:
        raise PhoneRejected("required", "a phone number is required")
    if len(text) > MAX_PHONE_LENGTH:
        raise PhoneRejected("invalid", "too long for a phone number")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        num = phonenumbers.parse(text, policy.default_region)
    except NumberParseException:
        raise PhoneRejected("invalid", "not a phone number") from None
    # phonenumbers.is_valid_number(num) is exactly this, but would look up the region a second time
    # (the costliest step for a country code shared by several regions, such as +1).
    region_code = phonenumbers.region_code_for_number(num)
    if region_code is None or not phonenumbers.is_valid_number_for_region(num, region_code):
        raise PhoneRejected("invalid", "not a valid phone number for its country")
    e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    region = region_code or ""
    if policy.allowed_countries and region not in policy.allowed_countries:
        raise PhoneRejected("country_not_allowed", "we can't call numbers in this country")
    for prefix in policy.blocked_prefixes:
        if e164.startswith(prefix):
            raise PhoneRejected("blocked", "we can't call this kind of number")
    number_type = phonenumbers.number_type(num)
    blocked_types = {NUMBER_TYPES[t] for t in policy.blocked_number_types}
    if number_type in blocked_types and number_type != PhoneNumberType.UNKNOWN:
        raise PhoneRejected("blocked", "we can't call this kind of number (premium-rate or special service)")
    if e164 in policy.own_numbers:
        raise PhoneRejected("own_number", "this is one of our own numbers")
    return Phone(given=raw.strip(), e164=e164, region=region)
