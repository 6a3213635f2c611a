"""The notifications: section: parsed with located errors like the rest of the configuration."""

from __future__ import annotations

import textwrap

import pytest

from callswitch.notify.config import EVENT_TYPES, parse_notifications
from callswitch.yamlsrc import Issues, SourceError, loads

GOOD = """
notifications:
  poll_interval: 2s
  retry: {initial: 5s, max: 30m, give_up_after: 2d}
  webhooks:
    shop:
      - name: crm
        url: https://crm.example.com/hooks/callswitch
        secret: ${CRM_SECRET}
        events: [request.accepted, request.completed]
        timeout: 5s
      - url: https://bi.example.com/in
        secret: another-long-secret-value
  smtp:
    host: smtp.example.com
    username: callswitch
    password: ${SMTP_PASSWORD}
    from: "Callswitch <callswitch@example.com>"
  lead_emails:
    missed: false
"""


def parse(text: str, env: dict[str, str] | None = None, sites: set[str] | None = None):  # type: ignore[no-untyped-def]
    doc = loads(textwrap.dedent(text), "callswitch.yaml", interpolate_env=True,
                env=env if env is not None else {"CRM_SECRET": "0123456789abcdef0123", "SMTP_PASSWORD": "pw"})
    issues = Issues(doc)
    config = parse_notifications(issues.root()["notifications"], sites if sites is not None else {"shop", "other"})
    return config, [str(p) for p in issues.errors], [str(p) for p in issues.warnings]


def test_valid_section() -> None:
    config, errors, warnings = parse(GOOD)
    assert errors == [] and warnings == []
    crm, bi = config.webhooks
    assert (crm.name, crm.site, crm.secret, crm.timeout) == ("crm", "shop", "0123456789abcdef0123", 5.0)
    assert crm.events == {"request.accepted", "request.completed"}
    assert bi.name == "shop-2" and bi.events == frozenset(EVENT_TYPES) and bi.timeout == 10.0
    assert config.smtp is not None and config.smtp.port == 587 and config.smtp.security == "starttls"
    assert config.smtp.password == "pw" and "pw" not in repr(config.smtp) and "0123456789" not in repr(crm)
    assert config.lead_emails.routed and not config.lead_emails.missed
    assert (config.retry.initial, config.retry.max, config.retry.give_up_after) == (5.0, 1800.0, 172800.0)
    assert config.poll_interval == 2.0 and config.enabled
    assert [s.name for s in config.subscriptions("shop", "request.failed")] == ["shop-2"]


def test_absent_section_is_off() -> None:
    config, errors, _ = parse("sites: {}\n")
    assert errors == [] and not config.enabled and config.smtp is None


def test_errors_are_located() -> None:
    text = """
    notifications:
      webhooks:
        shop:
          - name: crm
            url: ftp://crm.example.com/
            secret: short
            events: [request.accepted, request.complete]
          - name: crm
            url: https://x.example/
            secret: ${MISSING_SECRET:-}
        nosuchsite:
          - url: https://y.example/
            secret: 0123456789abcdef
      smtp:
        host: smtp.example.com
        port: 99999
        username: someone
        from: not-an-address
        tls: true
      lead_emails: {routed: yes-please}
      retry: {initial: 1m, max: 10s}
    """
    _, errors, _ = parse(text)
    expected = [
        "callswitch.yaml:6:14: notifications.webhooks.shop[0].url: not a URL: expected http:// or https://",
        "callswitch.yaml:7:17: notifications.webhooks.shop[0].secret: too short",
        "callswitch.yaml:8:36: notifications.webhooks.shop[0].events[1]: not an event: unknown event "
        "'request.complete' (did you mean 'request.completed'?)",
        "callswitch.yaml:11:17: notifications.webhooks.shop[1].secret: must not be empty",
        "callswitch.yaml:12:5: notifications.webhooks.nosuchsite: no site 'nosuchsite'",
        "callswitch.yaml:20:10: notifications.smtp.tls: unknown key",
        "callswitch.yaml:17:11: notifications.smtp.port: must be at most 65535",
        "callswitch.yaml:15:3: notifications.smtp.password: required with username",
        "callswitch.yaml:19:11: notifications.smtp.from: not an e-mail address",
        "callswitch.yaml:21:25: notifications.lead_emails.routed: expected true or false",
        "callswitch.yaml:22:29: notifications.retry.max: must not be less than initial",
    ]
    for want in expected:
        assert any(want in e for e in errors), f"{want!r} not in:\n" + "\n".join(errors)
    assert len(errors) == len(expected)


def test_duplicate_names_and_lead_emails_without_smtp() -> None:
    text = """
    notifications:
      webhooks:
        shop: [{name: a, url: "https://a.example/", secret: 0123456789abcdef}]
        other: [{name: a, url: "https://b.example/", secret: 0123456789abcdef}]
      lead_emails: {routed: true}
    """
    _, errors, _ = parse(text)
    assert any("callswitch.yaml:5:20: notifications.webhooks.other[0].name: two webhooks are named 'a'" in e
               for e in errors), errors
    assert any("callswitch.yaml:6:25: notifications.lead_emails.routed: needs notifications.smtp" in e
               for e in errors), errors


def test_secret_from_missing_environment_variable_is_an_error() -> None:
    with pytest.raises(SourceError) as caught:  # yamlsrc refuses an unset ${VAR} while loading, with its location
        parse(GOOD, env={"SMTP_PASSWORD": "pw"})
    assert "callswitch.yaml:9:17: notifications.webhooks.shop[0].secret: environment variable CRM_SECRET is not set" \
        in str(caught.value)


def test_plain_http_is_a_warning() -> None:
    text = """
    notifications:
      webhooks:
        shop: [{url: "http://crm.example/", secret: 0123456789abcdef}]
    """
    _, errors, warnings = parse(text)
    assert errors == [] and any("use https" in w for w in warnings)
