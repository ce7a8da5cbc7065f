"""The catalogue of checks: every check module imported, so each has registered itself.

Discovery lives here, apart from the registry the check modules import (audit.checks.registry):
a registry that imported its checks would import itself through them.
"""

from __future__ import annotations

from audit.checks import cni, config, coverage, dns, exposure, flows, hygiene, permissive  # noqa: F401  (each registers its checks)
from audit.checks.registry import REGISTRY, Check, Context


def all_checks() -> list[Check]:
    """Every registered check, by id."""
    return [REGISTRY[k] for k in sorted(REGISTRY)]


def checks_for(ctx: Context) -> list[Check]:
    """The checks that can run on ``ctx``: those needing flows only when flows were given."""
    return [c for c in all_checks() if c.needs is None or (c.needs == "flows" and ctx.traffic is not None)]
