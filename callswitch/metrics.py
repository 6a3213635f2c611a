"""Prometheus metrics (one registry per daemon, so tests can make their own)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.intake_accepted = Counter(
            "callswitch_intake_accepted",
            "Callback requests answered with success, by site and whether a new request was created.",
            ["site", "created"],
            registry=self.registry,
        )
        self.intake_rejected = Counter(
            "callswitch_intake_rejected",
            "Callback requests refused at intake, by reason (error code of the response).",
            ["reason"],
            registry=self.registry,
        )

    def accepted(self, site: str, created: bool) -> None:
        self.intake_accepted.labels(site=site, created="true" if created else "false").inc()

    def rejected(self, reason: str) -> None:
        self.intake_rejected.labels(reason=reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
