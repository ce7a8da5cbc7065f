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


SHARING: tuple[frozenset[str], ...] = (
    frozenset({"coverage", "hygiene", "permissive", "cni", "config", "flows"}),
    frozenset({"exposure", "dns"}),
)
"""The categories' groups when checks are shared among processes (``--jobs``): each group runs in
one process, this one the first. Checks within a group lean on the same engine memos (the class
graph's egress answers, the exposure index, the stacks per layer); split across processes, each
would build them again. Measured on the L benchmark with two processes: checks 3.8 s -> 2.7 s, the
worker copying 550 MB of what it reads (the other way round: 3.2 s, also 550 MB)."""


_GROUP_OF = {category: i for i, categories in enumerate(SHARING) for category in categories}


def sharing_groups(checks: list[Check]) -> list[list[Check]]:
    """``checks`` split by SHARING (in the order given; empty groups left out). Every category is
    in one group (a test holds it)."""
    groups: list[list[Check]] = [[] for _ in SHARING]
    for c in checks:
        groups[_GROUP_OF[c.category]].append(c)
    return [g for g in groups if g]


def checks_for(ctx: Context) -> list[Check]:
    """The checks that can run on ``ctx``: those needing flows only when flows were given."""
    return [c for c in all_checks() if c.needs is None or (c.needs == "flows" and ctx.traffic is not None)]
