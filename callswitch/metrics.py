"""Prometheus metrics (one registry per daemon, so tests can make their own).

Counters are incremented where things happen; gauges that describe state (queue depth, calls
in progress, AMI connections, rules) are read when /metrics is scraped (:mod:`callswitch.ops.health`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.intake_accepted = Counter(
            "callswitch_intake_accepted", "Callback requests answered with success, by site and whether a new "
            "request was created (false: a pending duplicate or an idempotent retry).", ["site", "created"], registry=r)
        self.intake_rejected = Counter(
            "callswitch_intake_rejected", "Callback requests refused at intake, by reason (the error code of the "
            "response: validation_failed, rate_limited, origin_not_allowed, database_unavailable, ...).",
            ["reason"], registry=r)
        self.queue_requests = Gauge(
            "callswitch_queue_requests", "Unfinished callback requests by state (all daemons).", ["state"], registry=r)
        self.calls_in_progress = Gauge(
            "callswitch_calls_in_progress", "Attempts this daemon is dialling or has connected right now.", registry=r)
        self.leg_outcomes = Counter(
            "callswitch_leg_outcomes", "Ended call legs by leg (agent/customer), disposition and Q.850 hangup cause.",
            ["leg", "disposition", "cause"], registry=r)
        self.attempt_outcomes = Counter(
            "callswitch_attempt_outcomes", "Finished dialling attempts by outcome.", ["outcome"], registry=r)
        self.ami_connected = Gauge(
            "callswitch_ami_connected", "1 when logged in to this Asterisk server's AMI.", ["server"], registry=r)
        self.ami_reconnects = Gauge(
            "callswitch_ami_reconnects", "Reconnections to this Asterisk server since start.", ["server"], registry=r)
        self.ami_event_age = Gauge(
            "callswitch_ami_seconds_since_last_event", "Seconds since the last AMI message from this server "
            "(keepalive pings keep it low on a healthy connection).", ["server"], registry=r)
        self.rules_reloads = Counter(
            "callswitch_rules_reloads", "Routing rules reloads by result (ok/failed).", ["result"], registry=r)
        self.rules_generation = Gauge(
            "callswitch_rules_generation", "Generation of the routing rules in force (1 = loaded at start).",
            registry=r)
        self.rules_last_reload_failed = Gauge(
            "callswitch_rules_last_reload_failed", "1 when the last reload of the routing file failed "
            "(the previous rules stay in force).", registry=r)
        self.db_latency = Histogram(
            "callswitch_db_latency_seconds", "Round trip of a trivial query to Postgres (health checks and scrapes).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=r)
        self.db_up = Gauge("callswitch_db_up", "1 when Postgres answered the last check.", registry=r)

    def accepted(self, site: str, created: bool) -> None:
        self.intake_accepted.labels(site=site, created="true" if created else "false").inc()

    def rejected(self, reason: str) -> None:
        self.intake_rejected.labels(reason=reason).inc()

    def leg_ended(self, leg: str, disposition: str, cause: int | None) -> None:
        self.leg_outcomes.labels(leg=leg, disposition=disposition, cause=str(cause) if cause is not None else "").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
