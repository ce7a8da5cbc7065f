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


SHARING: tuple[frozenset[str], ...] = (frozenset({"exposure", "dns"}),)
"""Categories whose checks lean on the same engine memos (the class graph's egress answers, the
exposure index): shared among processes (``--jobs``), each such group runs in one process, the
other categories together in another. Measured on the L benchmark: this split took the checks from
3.9 s to 2.6 s on two CPUs; splitting across these groups duplicated the memos' work."""


def sharing_groups(checks: list[Check]) -> list[list[Check]]:
    """``checks`` split by SHARING (each group in the order given; empty groups left out)."""
    groups: list[list[Check]] = [[] for _ in range(len(SHARING) + 1)]
    for c in checks:
        groups[next((i for i, cats in enumerate(SHARING) if c.category in cats), len(SHARING))].append(c)
    return [g for g in groups if g]


def checks_for(ctx: Context) -> list[Check]:
    """The checks that can run on ``ctx``: those needing flows only when flows were given."""
    return [c for c in all_checks() if c.needs is None or (c.needs == "flows" and ctx.traffic is not None)]
