"""Holding a provider back until a check (the promotion gate) has passed."""

from __future__ import annotations

import pulumi


def after(gate: pulumi.Output | None, value):
    """`value`, but only once `gate` has resolved: every resource of a provider configured with it waits."""
    return value if gate is None else gate.apply(lambda _: value)
