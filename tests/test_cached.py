"""audit.engine.cached: computed on first use, then answered by the instance."""

from __future__ import annotations

import dataclasses

import pytest

from audit.engine.cached import cached


def test_computed_once_then_kept_on_the_instance():
    calls = []

    @dataclasses.dataclass(frozen=True)
    class Thing:
        a: int

        @cached
        def double(self) -> int:
            """Twice a."""
            calls.append(self.a)
            return self.a * 2

    one, two = Thing(1), Thing(2)
    assert (one.double, one.double, two.double) == (2, 2, 4)
    assert calls == [1, 2]  # once per instance
    assert vars(one)["double"] == 2 and one == Thing(1)  # kept beside the fields; equality is the fields'
    assert isinstance(Thing.double, cached) and Thing.double.__doc__ == "Twice a."
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.a = 3  # type: ignore[misc]


def test_a_failure_is_not_kept():
    class Flaky:
        tries = 0

        @cached
        def value(self) -> int:
            Flaky.tries += 1
            if Flaky.tries == 1:
                raise ValueError("first")
            return 7

    flaky = Flaky()
    with pytest.raises(ValueError, match="first"):
        _ = flaky.value
    assert flaky.value == 7 and flaky.value == 7 and Flaky.tries == 2
