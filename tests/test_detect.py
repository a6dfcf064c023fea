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


@pytest.mark.parametrize(
    "text",
    [
        "Page not found\nSorry, the page you are looking for does not exist.",
        "Oops! Something went wrong\nAn unexpected error occurred. Please try again.",
        "502 Bad Gateway\nnginx",
        "504 Gateway Time-out",
        "Error 404 - Not Found",
        "You need to enable JavaScript to run this app.",
        "We'll be back soon!\nSorry for the inconvenience, we're undergoing scheduled maintenance.",
        "Internal Server Error",
        "This page does not exist. Go home.",
    ],
    ids=["not-found", "went-wrong", "bad-gateway", "gateway-timeout", "error-404", "js-shell",
         "back-soon", "internal-error", "does-not-exist"],
)  # fmt: skip
def test_soft_error_pages_served_with_200_stand_in(text: str) -> None:
    """An error page in the real page's place has none of the phrases: never compared."""
    assert suspect(text, "https://v.example/d", "https://v.example/d", False)


NAV = "Products\nSolutions\nPricing\nDocumentation\nPartners\nCustomers\nCompany\n" * 5
FOOTER = "\nAbout us\nCareers\nPress\nPrivacy\nTerms\nCookie settings\nSitemap" * 30


@pytest.mark.parametrize(
    "text",
    [
        "Sign in\nto continue to Cloud Console",
        "Sign in to your account\nEmail\nPassword",
        NAV + "Please log in to view this page.",
        NAV + "Please complete the CAPTCHA below.",
        "Access denied\nReference #18.2f1" + FOOTER,
        "Sorry, you have been blocked\nYou are unable to access vendor.example",
        "Request unsuccessful. Incapsula incident ID: 1234-5678",
        "Please enable JS and disable any ad blocker",
        "Press and hold to confirm you are a human (and not a bot).",
        "You have been rate limited. Try again later.",
        "We're down for maintenance. Back shortly.",
        "Please accept cookies to continue.",
        "Please confirm you are at least 18 years old.",
        "This content is not available in your country.",
    ],
    ids=["google-signin", "signin-account", "login-after-nav", "captcha-after-nav",
         "denied-with-footer", "blocked", "incapsula", "datadome", "human-hold", "rate-limited",
         "maintenance", "cookie-wall", "age-gate", "geo-block"],
)  # fmt: skip
def test_stand_ins_as_vendors_and_their_walls_word_them(text: str) -> None:
    assert suspect(text, "https://v.example/d", "https://v.example/d", False)


@pytest.mark.parametrize(
    "text",
    [
        LONG_DOC + "If no face is found, the page not found error occurred is returned.",
        "Errors: a 404 error is returned when the image is not found. " + LONG_DOC,
        "This page has been retired. The face attribute API is no longer offered.",
        "This page no longer exists in v3: see the migration guide.",
    ],
    ids=["words-late-in-a-real-page", "error-codes-early-in-a-long-page", "retired-stub",
         "gone-in-v3-stub"],
)  # fmt: skip
def test_error_words_do_not_make_a_page_a_stand_in(text: str) -> None:
    """A real or gutted page that mentions errors is compared (a gutted page is a removal)."""
    assert not suspect(text, "https://v.example/d", "https://v.example/d", False)
