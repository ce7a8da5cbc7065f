"""Configuration hygiene: waivers that have run out."""

from __future__ import annotations

from collections.abc import Iterable

from audit.checks.registry import Context, Hit, check


@check(
    "NP-CFG-001",
    "Waiver has expired",
    "medium",
    rationale="""A waiver accepts a risk until a date. Once the date has passed the waiver no longer
    applies: the findings it covered are reported again, and the waiver needs review.""",
    remediation="Fix the waived findings, or renew the waiver with a new date and a current reason.",
)
def expired_waiver(ctx: Context) -> Iterable[Hit]:
    for i, waiver in enumerate(ctx.config.waivers):
        if waiver.expired(ctx.today):
            yield Hit(None, "Waiver", f"waivers[{i}]", f"expired {waiver.expires}: {waiver.describe()}", key=str(i))
