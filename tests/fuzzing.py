"""What the fuzz tests share: how many examples (PARLEY_FUZZ_EXAMPLES: a few in `make test`,
a few hundred in `make fuzz`) and hypothesis settings with a fixed seed."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def fuzz_settings(default_examples: int) -> settings:
    return settings(
        max_examples=int(os.environ.get("PARLEY_FUZZ_EXAMPLES", default_examples)),
        derandomize=True,  # a fixed seed: the same inputs on every run
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
