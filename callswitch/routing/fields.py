"""The request fields that rules can test, and how each one is read and normalised.

A field is read from a :class:`~callswitch.callback.CallbackRequest` as a string (or an int for
numeric fields) or None when the request does not have it. Text comparisons use
:func:`Field.norm` (trimmed, case-folded; postal codes and numbers also lose inner spaces).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callswitch.callback import CallbackRequest

TEXT = "text"
NUMBER = "number"

Getter = Callable[[CallbackRequest], Any]


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # TEXT or NUMBER
    get: Getter
    squash_spaces: bool = False  # postal codes, phone numbers
    primary_subtag: bool = False  # language: "de" also matches "de-AT"

    def norm(self, value: str) -> str:
        out = value.strip().casefold()
        if self.squash_spaces:
            out = "".join(out.split())
        return out

    def text(self, request: CallbackRequest) -> str | None:
        """The field as a normalised string, or None."""
        v = self.get(request)
        if v is None or v == "":
            return None
        return self.norm(str(v))

    def raw(self, request: CallbackRequest) -> str | None:
        v = self.get(request)
        if v is None or v == "":
            return None
        return str(v).strip()


def _attr(name: str) -> Getter:
    def get(request: CallbackRequest) -> Any:
        v = request.attributes.get(name)
        if isinstance(v, bool):
            return str(v).lower()
        return v

    return get


def _utm(name: str) -> Getter:
    def get(request: CallbackRequest) -> Any:
        return request.utm.get(name)

    return get


def _country(request: CallbackRequest) -> Any:
    v = request.attributes.get("country")
    return v if v else request.phone_region


def _language(request: CallbackRequest) -> Any:
    return request.language or request.attributes.get("language")


def _number(v: Any, parse: Callable[[str], Any]) -> Any:
    """A number from an attribute value: numbers as they are, numeric strings parsed, else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return v
    if isinstance(v, str):
        try:
            return parse(v.strip())
        except ValueError:
            return None
    return None


def _company_size(request: CallbackRequest) -> Any:
    return _number(request.attributes.get("company_size"), int)


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("site", TEXT, lambda r: r.site),
        Field("name", TEXT, lambda r: r.name),
        Field("phone", TEXT, lambda r: r.phone_e164, squash_spaces=True),
        Field("phone_country", TEXT, lambda r: r.phone_region),
        Field("country", TEXT, _country),
        Field("postal_code", TEXT, _attr("postal_code"), squash_spaces=True),
        Field("product", TEXT, _attr("product")),
        Field("language", TEXT, _language, primary_subtag=True),
        Field("page_url", TEXT, lambda r: r.page_url),
        Field("referrer", TEXT, lambda r: r.referrer),
        Field("campaign", TEXT, _utm("campaign")),
        Field("utm_source", TEXT, _utm("source")),
        Field("utm_medium", TEXT, _utm("medium")),
        Field("utm_campaign", TEXT, _utm("campaign")),
        Field("utm_term", TEXT, _utm("term")),
        Field("utm_content", TEXT, _utm("content")),
        Field("company_size", NUMBER, _company_size),
    )
}


def attribute_field(name: str, kind: str = TEXT) -> Field:
    """A free-form request attribute (``attributes.<name>`` in rules)."""
    if kind == NUMBER:

        def get_number(request: CallbackRequest) -> Any:
            return _number(request.attributes.get(name), float)

        return Field(f"attributes.{name}", NUMBER, get_number)
    return Field(f"attributes.{name}", TEXT, _attr(name))


def field_named(name: str) -> Field | None:
    """``postal_code`` or ``attributes.plan``; None if unknown."""
    if name.startswith("attributes.") and len(name) > len("attributes."):
        return attribute_field(name[len("attributes.") :])
    return FIELDS.get(name)
