"""The two directions a policy governs, and how rules name their peers in each."""

from __future__ import annotations

from typing import Literal

Direction = Literal["Ingress", "Egress"]
DIRECTIONS: tuple[Direction, ...] = ("Ingress", "Egress")


def peer_word(direction: Direction) -> str:
    """``from`` for ingress peers, ``to`` for egress peers (NetworkPolicy's and ANP's field names)."""
    return "from" if direction == "Ingress" else "to"
