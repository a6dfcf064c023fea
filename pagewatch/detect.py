"""Deciding, from two consecutive successful captures' counts, what changed.

Only counts are compared: an alias swapped for another of its group, a passage moved, markup
churn or rotating noise leave every group's count as it was, and so raise nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from urllib.parse import urlsplit

#: Pages that stand in for the real one: bot walls, challenges, soft errors, login walls. Such a
#: page has none of the phrases, so comparing it would accuse the vendor of removing them all.
INTERSTITIAL = re.compile(
    "|".join(
        [
            r"(?:verify|confirm|prove) (?:that )?you(?: are|'re) (?:a )?human",
            r"are you (?:a )?(?:human|robot)",
            r"you(?: have|'ve) been (?:blocked|rate(?: |-)limited)",
            r"rate limit(?:ed| exceeded)",
            r"incapsula incident",
            r"request unsuccessful",
            r"enable js and disable any ad ?blocker",
            r"not available in your (?:country|region|location)",
            r"(?:accept|allow) (?:all )?cookies to (?:continue|view|access|proceed)",
            r"(?:confirm|verify) (?:your age|(?:that )?you are (?:over|at least) \d+)",
            r"checking (?:if the site connection is secure|your browser)",
            r"just a moment\.\.\.",
            r"attention required",
            r"enable javascript and cookies to continue",
            r"captcha",
            r"bot (?:detection|protection|challenge)",
            r"ddos protection",
            r"access (?:to this page )?(?:has been )?denied",
            r"request (?:was )?(?:blocked|rejected)",
            r"you don't have permission to access",
            r"service (?:is )?(?:temporarily )?unavailable",
            r"temporarily unavailable",
            r"(?:under|down for) maintenance",
            r"too many requests",
            r"(?:please )?(?:log|sign) ?in to (?:continue|view|access|your account)",
            # soft errors: an error page served with 200 in the real page's place
            r"(?:page|document|resource) (?:was )?not found",
            r"(?:page|url) (?:you (?:are|were) looking for|you requested) (?:does not|doesn't|"
            r"could not|cannot|can't)",
            r"(?:this|the) page (?:does not|doesn't) exist",
            r"\b(?:404|410)\b[^\n]{0,20}(?:error|not found|gone)",
            r"something went wrong",
            r"an? (?:unexpected |internal )?error (?:has )?occurred",
            r"internal server error",
            r"bad gateway",
            r"gateway time-?out",
            r"origin (?:is )?unreachable",
            r"(?:you need to )?enable javascript to (?:run|use|view) this",
            r"(?:we'll|we will) be (?:right )?back",
            r"(?:scheduled|planned) maintenance",
            r"site (?:is )?(?:currently )?(?:down|offline)",
        ]
    )  # a space: any whitespace, line breaks too ("Sign in\nto continue"); " ?": any or none
    .replace(" ?", r"\s*")
    .replace(" ", r"\s+"),
    re.IGNORECASE,
)
#: An interstitial is short and says what it is at once (its title, its heading, after a site's
#: navigation); a documentation page whose error-code section mentions "Access denied" or "Too
#: Many Requests" is not one.
INTERSTITIAL_MAX_CHARS = 2500
INTERSTITIAL_HEAD_CHARS = 500
LOGIN_PATH = re.compile(
    r"/(?:log-?in|sign-?in|auth|sso|oauth2?|captcha|challenge|cdn-cgi)(?:\.\w+)?(?:/|$)", re.I
)
LOGIN_HOST = re.compile(r"^(?:login|signin|sso|auth|accounts?|id)\.", re.I)


def suspect(text: str, url: str, final_url: str, redirected: bool) -> str:
    """Why a captured page looks like a stand-in for the real one ('' if it does not).

    A page that merely shrinks is not suspect: vendors do gut pages, and that is a removal.
    """
    if redirected and _into_login(url, final_url):
        return f"redirected to a login or challenge page ({final_url})"
    if len(text) <= INTERSTITIAL_MAX_CHARS:
        found = INTERSTITIAL.search(text, 0, INTERSTITIAL_HEAD_CHARS)
        if found:
            return f"looks like an interstitial page ({found.group(0)!r})"
    return ""


def _into_login(url: str, final_url: str) -> bool:
    """Did a redirect move into a login or challenge path or host (not merely within one)?"""
    start, end = urlsplit(url), urlsplit(final_url)
    start_host, end_host = start.hostname or "", end.hostname or ""
    if end_host != start_host and LOGIN_HOST.match(end_host):
        return True
    return bool(LOGIN_PATH.search(end.path + "/")) and not LOGIN_PATH.search(start.path + "/")


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
