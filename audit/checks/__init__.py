"""Checks: small pure functions over the analysis, discovered from one registry."""

from audit.checks.registry import REGISTRY, Check, Context, Hit, check

__all__ = ["REGISTRY", "Check", "Context", "Hit", "check"]
