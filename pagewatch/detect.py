"""Deciding, from two consecutive successful captures' counts, what changed.

Only counts are compared: an alias swapped for another of its group, a passage moved, markup
churn or rotating noise leave every group's count as it was, and so raise nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One group whose count moved in a way worth an alert."""

    group: str
    kind: str  # removed | page_removed | restored
    count_before: int
    count_after: int


def compare(
    before: Mapping[str, int],
    after: Mapping[str, int],
    *,
    page_gone: bool,
    open_removals: Set[str] = frozenset(),
) -> list[Finding]:
    """Findings for groups counted in both captures, in the order of ``after``.

    ``page_gone``: the later capture is a 404/410, or a redirect to another page than before.
    ``open_removals``: groups whose latest alert is a removal; only those can be ``restored``.
    """
    findings = []
    for group, count_after in after.items():
        count_before = before.get(group)
        if count_before is None:
            continue
        if count_after < count_before:
            kind = "page_removed" if page_gone else "removed"
            findings.append(Finding(group, kind, count_before, count_after))
        elif count_after > count_before and group in open_removals:
            findings.append(Finding(group, "restored", count_before, count_after))
    return findings


def alias_that_went(before: Mapping[str, int], after: Mapping[str, int]) -> str:
    """The alias whose count fell the most (ties: the first), or '' if none fell."""
    best, drop = "", 0
    for alias, count in before.items():
        fell = count - after.get(alias, 0)
        if fell > drop:
            best, drop = alias, fell
    return best
