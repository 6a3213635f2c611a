"""Example budgets for the fuzz tests: small in CI, large with ``HYPOTHESIS_PROFILE=long``."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

LONG = os.environ.get("HYPOTHESIS_PROFILE", "").lower() == "long"
LONG_FACTOR = 50


def budget(ci_examples: int) -> settings:
    """Settings for one fuzz test: ``ci_examples`` normally, ``LONG_FACTOR`` times that for the long run."""
    return settings(
        max_examples=ci_examples * LONG_FACTOR if LONG else ci_examples,
        deadline=None,
        derandomize=not LONG,  # CI runs are reproducible; the long run explores new seeds
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                               HealthCheck.function_scoped_fixture],
        database=None if not LONG else settings.default.database,
    )
