"""Severity levels, most severe first."""

from __future__ import annotations

SEVERITIES = ("critical", "high", "medium", "low", "info")


def rank(severity: str) -> int:
    """0 for critical; higher is less severe."""
    return SEVERITIES.index(severity)


def at_least(severity: str, threshold: str) -> bool:
    """Whether ``severity`` is ``threshold`` or more severe."""
    return rank(severity) <= rank(threshold)
