"""The pure decisions: which count changes are alerts, and which pages stand in for the real one."""

from __future__ import annotations

import pytest

from pagewatch.detect import Finding, alias_that_went, compare, suspect

LONG_DOC = "Face attributes are returned for every face. " * 80  # a real page, ~3,600 chars


@pytest.mark.parametrize(
    ("before", "after", "gone", "open_removals", "expected"),
    [
        ({"u": 2}, {"u": 1}, False, set(), [Finding("u", "removed", 2, 1)]),
        ({"u": 2}, {"u": 0}, True, set(), [Finding("u", "page_removed", 2, 0)]),
        ({"u": 0}, {"u": 0}, True, set(), []),
        ({"u": 1}, {"u": 2}, False, set(), []),
        ({"u": 1}, {"u": 2}, False, {"u"}, [Finding("u", "restored", 1, 2)]),
        ({"u": 1}, {"u": 1, "new": 0}, False, set(), []),
        ({"u": 1, "e": 3}, {"e": 1, "u": 0}, False, set(),
         [Finding("e", "removed", 3, 1), Finding("u", "removed", 1, 0)]),
    ],
    ids=["fell", "page-gone", "gone-twice", "rose-unprompted", "restored", "new-group",
         "order-of-after"],
)  # fmt: skip
def test_compare(
    before: dict[str, int],
    after: dict[str, int],
    gone: bool,
    open_removals: set[str],
    expected: list[Finding],
) -> None:
    assert compare(before, after, page_gone=gone, open_removals=open_removals) == expected


def test_alias_that_went_is_the_one_that_fell_most() -> None:
    assert alias_that_went({"Uyghur": 3, "Uighur": 2}, {"Uyghur": 2}) == "Uighur"
    assert alias_that_went({"Uyghur": 3, "Uighur": 1}, {"Uyghur": 2}) == "Uyghur"  # ties: first
    assert alias_that_went({"Uyghur": 1}, {"Uyghur": 1}) == ""


ERRORS_SECTION = (
    "Face attributes\nDetectFaces returns attributes for every face. " * 10
    + "\nErrors\n403 Access denied: the key lacks the vision scope.\n429 Too Many Requests."
)


@pytest.mark.parametrize(
    ("text", "url", "final_url", "redirected", "is_suspect"),
    [
        ("Just a moment...\nChecking your browser", "https://v.example/d", "https://v.example/d",
         False, True),
        ("Please verify you are human", "https://v.example/d", "https://v.example/d", False, True),
        ("Access Denied\nYou don't have permission to access", "https://v.example/d",
         "https://v.example/d", False, True),
        ("Service Temporarily Unavailable", "https://v.example/d", "https://v.example/d", False,
         True),
        ("Sign in", "https://v.example/d", "https://v.example/login?next=/d", True, True),
        ("Sign in", "https://v.example/d", "https://v.example/account/signin.html", True, True),
        ("Sign in", "https://v.example/d", "https://login.v.example/?next=/d", True, True),
        ("Docs", "https://v.example/docs/auth", "https://v.example/docs/auth/", True, False),
        ("Docs", "https://v.example/d", "https://v.example/docs/login-api", True, False),
        ("This page has been retired.", "https://v.example/d", "https://v.example/d", False, False),
        (LONG_DOC + " Our API needs no captcha.", "https://v.example/d", "https://v.example/d",
         False, False),
        (ERRORS_SECTION[-700:], "https://v.example/d", "https://v.example/d", False, False),
        ("Is it Uyghur: boolean.", "https://v.example/login", "https://v.example/login", False,
         False),
    ],
    ids=["cloudflare", "human-check", "access-denied", "soft-503", "login-redirect",
         "signin-html", "login-host", "auth-doc-trailing-slash", "login-api-doc-page",
         "gutted-stub", "long-page-mentions-captcha", "error-codes-section",
         "login-path-not-redirected"],
)  # fmt: skip
def test_suspect(text: str, url: str, final_url: str, redirected: bool, is_suspect: bool) -> None:
    assert bool(suspect(text, url, final_url, redirected)) is is_suspect
