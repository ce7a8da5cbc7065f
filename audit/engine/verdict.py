"""Verdicts for one port: what ``reach`` prints, from the stack's walk (see audit.engine.stack)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from audit.engine.direction import Direction
from audit.engine.ports import PortSet
from audit.engine.stack import Decision, Endpoint, evaluate
from audit.fastinit import fast_init
from audit.inventory import ContainerPort

if TYPE_CHECKING:
    from audit.engine.analysis import Analysis


@fast_init
@dataclass(frozen=True)
class SideVerdict:
    """One side of a connection (the source's egress or the destination's ingress), as the
    policy stack decided it for one port (see audit.engine.stack)."""

    direction: Direction
    allowed: bool
    isolated: bool
    """Some policy of the namespace tier isolates the pod in this direction."""
    policies: tuple[str, ...]
    """Those policies."""
    allowed_by: tuple[str, ...] = ()
    """Namespace-tier allow rules that name the peer on this port (they add up)."""
    decided: Decision | None = None
    """The first-matching rule that decided, unless the namespace tier's union of allows did."""
    passed: Decision | None = None
    """A Pass rule that sent the port on from a higher tier."""
    governed: bool = True
    rejected_by: tuple[tuple[str, str], ...] = ()
    """When the namespace tier denied by default: each rule in force there, and why it did not match."""
    ordered: bool = False
    """Policies with an order of their own share the namespace tier (its end denies)."""

    def explain(self) -> str:
        side = "egress of the source" if self.direction == "Egress" else "ingress of the destination"
        if not self.governed:
            return f"{side}: not governed by NetworkPolicy (hostNetwork or outside the cluster)"
        passed = f"passed on by {self.passed.rule}; " if self.passed is not None else ""
        decided = self.decided
        if decided is not None and (decided.action != "Allow" or decided.tier != "namespace"):
            word = "allowed by" if decided.action == "Allow" else "denied by"
            before = "not isolated by the namespace's policies; " if decided.tier == "baseline" else ""
            return f"{side}: {passed}{before}{word} {decided.rule} ({decided.note})"
        if not self.isolated:
            return f"{side}: {passed}not isolated (no policy with {self.direction} selects it): allowed"
        isolated = f"{passed.rstrip('; ')}, then isolated" if passed else "isolated"
        if self.allowed_by:
            return f"{side}: {isolated} by {', '.join(self.policies)}; allowed by {', '.join(self.allowed_by)}"
        return f"{side}: {isolated} by {', '.join(self.policies)}; no rule allows it: denied" + (" at the end of the tier" if self.ordered else "")

    def explain_lines(self) -> list[str]:
        """The explanation, then (when denied by default) one line per rule in force and why it did not match."""
        lines = [self.explain()]
        if self.governed and not self.allowed and self.decided is None and self.isolated:
            lines += [f"  {ref}: {reason}" for ref, reason in self.rejected_by] or ["  (its policies have no rules in this direction)"]
        return lines


@fast_init
@dataclass(frozen=True)
class Verdict:
    """Whether a connection is allowed, and the rules on each side that decided it."""

    allowed: bool
    egress: SideVerdict
    ingress: SideVerdict

    def explain(self) -> list[str]:
        return [self.egress.explain(), self.ingress.explain()]

    def explain_lines(self) -> list[str]:
        return self.egress.explain_lines() + self.ingress.explain_lines()


def port_in(ports: PortSet, port: int, protocol: str) -> bool:
    return any(lo <= port <= hi for lo, hi in ports.as_dict().get(protocol, ()))


def side_verdict(analysis: Analysis, direction: Direction, subject: Endpoint, other: Endpoint, port: int, protocol: str,
                 dst_ports: tuple[ContainerPort, ...] | None) -> SideVerdict:
    """One side of a connection for one port, from the stack's walk (egress verdicts shared per signature)."""
    if not isinstance(subject, int) or (not analysis.classes[subject].governed and not analysis.classes[subject].virtual):
        return SideVerdict(direction, True, False, (), governed=False)
    signature = analysis.egress_signature(subject) if direction == "Egress" else None
    if signature is not None:
        key = (signature, other, port, protocol, dst_ports)
        memo = analysis.egress_verdict_memo()
        hit = memo.get(key)
        if hit is None:
            hit = memo[key] = _verdict(analysis, direction, subject, other, port, protocol, dst_ports)
        return hit
    return _verdict(analysis, direction, subject, other, port, protocol, dst_ports)


def _verdict(analysis: Analysis, direction: Direction, subject: int, other: Endpoint, port: int, protocol: str,
             dst_ports: tuple[ContainerPort, ...] | None) -> SideVerdict:
    """One port's verdict from the stack's walk, with the rules that decided it."""
    outcome = evaluate(analysis, subject, direction, other, dst_ports)
    seg = outcome.at(port, protocol)
    namespace_tier = analysis.stack_for(subject, direction).get("namespace", ())
    allowed_by = tuple(
        rule.label for entry in namespace_tier for rule in entry.rules(direction)
        if rule.action == "Allow" and analysis.rule_names(rule, subject, other)
        and port_in(analysis.rule_ports(rule, dst_ports), port, protocol))
    rejected: tuple[tuple[str, str], ...] = ()
    if not seg.allowed and seg.decision is None:
        # Denied by default: say for every rule in force why it did not match, so the fix is obvious.
        peer_word = "destination" if direction == "Egress" else "source"
        rejected = tuple(
            (rule.label, f"{peer_word} matches none of its peers ({rule.text})" if not analysis.rule_names(rule, subject, other)
             else f"{port}/{protocol} is not among its ports ({rule.text})")
            for entry in namespace_tier for rule in entry.rules(direction))
    return SideVerdict(direction, seg.allowed, bool(outcome.isolated), tuple(dict.fromkeys(p.key for p in outcome.isolated)),
                       allowed_by if seg.allowed else (), seg.decision, seg.passed, rejected_by=rejected,
                       ordered=any(e.layer.ordered for e in outcome.isolated))
