"""Word diffs and the removed passage shown in context.

Each case is a before and an after text, the aliases of one phrase group, and the exact segments
(and their wdiff rendering) that an alert would carry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from pagewatch import diff
from pagewatch.diff import removal_context, word_diff
from pagewatch.models import Context, Span


def spans(text: str, *aliases: str) -> list[Span]:
    """Matches of the aliases in text: whole words for Latin aliases, substrings for CJK ones."""
    found = []
    for alias in aliases:
        pattern = rf"\b{re.escape(alias)}\b" if alias.isascii() else re.escape(alias)
        found += [Span(m.start(), m.end(), alias) for m in re.finditer(pattern, text, re.I)]
    return sorted(found, key=lambda span: span.start)


def context(before: str, after: str, *aliases: str, **options: float) -> Context | None:
    width = int(options.pop("width", 160))
    return removal_context(
        before, after, spans(before, *aliases), spans(after, *aliases), width=width, **options
    )


@dataclass
class Case:
    before: str
    after: str
    aliases: tuple[str, ...]
    width: int
    alias: str
    segments: tuple[tuple[str, str], ...]
    rendered: str


TABLE = """Face attributes
The detection API returns these attributes for each face.
Attribute
Description
Age
Estimated age in years
Gender
Male or female
Is it Uyghur
Whether the person is Uyghur
Glasses
Whether the person wears glasses
"""

PAGE = (
    "Product overview\n\nThe camera counts people at the gate.\n\n\n\n\n"
    "Our model also recognises ethnic attributes such as Uyghur or Han, with an accuracy of 95"
    " percent.\n\n\n\n\nPricing starts at 200 dollars per camera."
)

FLAGS = "Our ethnicity model flags Uyghur faces in crowds and sends an alarm to the operator."

CASES = {
    "table-row-removed": Case(
        TABLE,
        TABLE.replace("Is it Uyghur\nWhether the person is Uyghur\n", ""),
        ("Uyghur", "Uighur"),
        40,
        "Uyghur",
        (
            ("=", "…age in years\nGender\nMale or female\n"),
            ("-", "Is it Uyghur\nWhether the person is Uyghur\n"),
            ("=", "Glasses\nWhether the person wears glasses…"),
        ),
        "…age in years\nGender\nMale or female\n"
        "[-Is it Uyghur\nWhether the person is Uyghur-]\n"
        "Glasses\nWhether the person wears glasses…",
    ),
    "word-replaced-by-euphemism": Case(
        FLAGS,
        FLAGS.replace("Uyghur", "minority"),
        ("Uyghur",),
        30,
        "Uyghur",
        (
            ("=", "Our ethnicity model flags "),
            ("-", "Uyghur"),
            ("+", "minority"),
            ("=", " faces in crowds and sends an…"),
        ),
        "Our ethnicity model flags [-Uyghur-]{+minority+} faces in crowds and sends an…",
    ),
    "nearby-insertion-shown": Case(
        FLAGS,
        FLAGS.replace("Uyghur", "minority").replace("and sends", "and quickly sends"),
        ("Uyghur",),
        40,
        "Uyghur",
        (
            ("=", "Our ethnicity model flags "),
            ("-", "Uyghur"),
            ("+", "minority"),
            ("=", " faces in crowds and "),
            ("+", "quickly "),
            ("=", "sends an alarm to…"),
        ),
        "Our ethnicity model flags [-Uyghur-]{+minority+} faces in crowds and {+quickly+} sends"
        " an alarm to…",
    ),
    "paragraph-removed-blank-lines-collapsed": Case(
        PAGE,
        PAGE.replace(
            "Our model also recognises ethnic attributes such as Uyghur or Han, with an accuracy"
            " of 95 percent.\n\n\n\n\n",
            "",
        ),
        ("Uyghur",),
        40,
        "Uyghur",
        (
            ("=", "…camera counts people at the gate.\n\n\n"),
            (
                "-",
                "Our model also recognises ethnic attributes such as Uyghur or Han, with an"
                " accuracy of 95 percent.\n\n\n",
            ),
            ("=", "Pricing starts at 200 dollars per camera…"),
        ),
        "…camera counts people at the gate.\n\n\n[-Our model also recognises ethnic attributes"
        " such as Uyghur or Han, with an accuracy of 95 percent.-]\n\n\nPricing starts at 200"
        " dollars per camera…",
    ),
    "last-line-removed": Case(
        "Attributes: glasses, smile.\nIs it Uyghur: boolean.",
        "Attributes: glasses, smile.",
        ("Uyghur",),
        160,
        "Uyghur",
        (("=", "Attributes: glasses, smile."), ("-", "\nIs it Uyghur: boolean.")),
        "Attributes: glasses, smile.\n[-Is it Uyghur: boolean.-]",
    ),
    "alias-spans-deletion-boundary": Case(
        "The attribute ethnic minority is returned for each detected face.",
        "The attribute ethnic group is returned for each detected face.",
        ("ethnic minority", "ethnicity"),
        20,
        "ethnic minority",
        (
            ("=", "…attribute ethnic "),
            ("-", "minority"),
            ("+", "group"),
            ("=", " is returned for…"),
        ),
        "…attribute ethnic [-minority-]{+group+} is returned for…",
    ),
    "second-of-two-occurrences-removed": Case(
        "Uyghur is listed in the help page. The API also returns Uyghur as an attribute value.",
        "Uyghur is listed in the help page. The API also returns an attribute value.",
        ("Uyghur",),
        20,
        "Uyghur",
        (("=", "…API also returns "), ("-", "Uyghur as "), ("=", "an attribute value.")),
        "…API also returns [-Uyghur as-] an attribute value.",
    ),
    "cjk-deletion": Case(
        "人脸属性包括年龄、性别、是否维吾尔族以及是否佩戴眼镜。",
        "人脸属性包括年龄、性别、以及是否佩戴眼镜。",
        ("维吾尔", "Uyghur"),
        8,
        "维吾尔",
        (("=", "…包括年龄、性别、"), ("-", "是否维吾尔族"), ("=", "以及是否佩戴眼镜…")),
        "…包括年龄、性别、[-是否维吾尔族-]以及是否佩戴眼镜…",
    ),
    "spelling-swap-is-not-what-went": Case(
        "The old form Uighur is used in the guide.\nIs it Uyghur: yes or no.\nGlasses: yes or no.",
        "The old form Uyghur is used in the guide.\nGlasses: yes or no.",
        ("Uyghur", "Uighur"),
        30,
        "Uyghur",
        (
            ("=", "…"),
            ("-", "Uighur"),
            ("+", "Uyghur"),
            ("=", " is used in the guide.\n"),
            ("-", "Is it Uyghur: yes or no.\n"),
            ("=", "Glasses: yes or no."),
        ),
        "…[-Uighur-]{+Uyghur+} is used in the guide.\n[-Is it Uyghur: yes or no.-]\n"
        "Glasses: yes or no.",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_removal_context(case: Case) -> None:
    found = context(case.before, case.after, *case.aliases, width=case.width)

    assert found == Context(case.alias, case.segments)
    assert found.render() == case.rendered


def test_long_deletion_is_shown_around_the_match() -> None:
    words = " ".join(f"w{i}" for i in range(200))
    before = f"Intro.\n{words} Uyghur {words}\nOutro."

    found = context(before, "Intro.\nOutro.", "Uyghur", width=20)

    assert found is not None
    shown_before = " ".join(f"w{i}" for i in range(141, 200))
    shown_after = " ".join(f"w{i}" for i in range(76))
    assert found.segments == (
        ("=", "Intro.\n"),
        ("-", f"…{shown_before} Uyghur {shown_after}…"),
        ("=", "Outro."),
    )
    assert len(found.segments[1][1]) == 597  # about MAX_REMOVED, both "…" included


def test_long_replacement_is_shown_from_its_start() -> None:
    before = "Intro.\nIs it Uyghur: yes.\nOutro."
    after = "Intro.\n" + " ".join(f"n{i}" for i in range(300)) + "\nOutro."

    found = context(before, after, "Uyghur")

    assert found == Context(
        "Uyghur",
        (
            ("=", "Intro.\n"),
            ("-", "Is it Uyghur: yes."),
            ("+", " ".join(f"n{i}" for i in range(142)) + "…"),
            ("=", "\nOutro."),
        ),
    )


def test_one_megabyte_page_with_one_paragraph_removed() -> None:
    paragraphs = [
        f"Section {i} describes feature {i} of the vendor platform in plain words."
        for i in range(15_000)
    ]
    paragraphs[9_000] = "Is it Uyghur: the model reports whether the face is Uyghur."
    before = "\n".join(paragraphs)
    after = "\n".join(paragraphs[:9_000] + paragraphs[9_001:])
    assert len(before) > 1_000_000

    found = context(before, after, "Uyghur", width=50)

    assert found == Context(
        "Uyghur",
        (
            ("=", "…8999 of the vendor platform in plain words.\n"),
            ("-", "Is it Uyghur: the model reports whether the face is Uyghur.\n"),
            ("=", "Section 9001 describes feature 9001 of the vendor…"),
        ),
    )


APPROXIMATE = {
    "diff-out-of-time": (
        FLAGS,
        FLAGS.replace("Uyghur", "minority"),
        0.0,
        (("=", "…model flags "), ("-", "Uyghur"), ("=", " faces in crowds and…")),
    ),
    "match-outside-any-deletion": (
        "Uyghur is here. Other text was removed.",
        "Uyghur is here.",
        2.0,
        (("-", "Uyghur"), ("=", " is here. Other text…")),
    ),
}


@pytest.mark.parametrize(
    ("before", "after", "timeout", "segments"), APPROXIMATE.values(), ids=APPROXIMATE.keys()
)
def test_approximate_context(
    before: str, after: str, timeout: float, segments: tuple[tuple[str, str], ...]
) -> None:
    # the second case: the match module saw the match go, the diff saw other text go
    found = removal_context(before, after, spans(before, "Uyghur"), [], 20, timeout)

    assert found == Context("Uyghur", segments, approximate=True)


def test_approximate_context_takes_the_alias_that_fell_most() -> None:
    before = "Uighur once. Uyghur here. Uyghur there."
    after = "Uighur once."
    spans_before = spans(before, "Uyghur", "Uighur")

    found = removal_context(before, after, spans_before, spans(after, "Uighur"), 6, timeout=0)

    assert found == Context(
        "Uyghur", (("=", "…once. "), ("-", "Uyghur"), ("=", " here.…")), approximate=True
    )


def test_no_matches_no_context() -> None:
    assert removal_context("Uyghur", "", [], []) is None


@pytest.mark.parametrize(
    "text", ["", "one line", "Is it Uyghur?\n\n维吾尔族\n"], ids=["empty", "one-line", "mixed"]
)
def test_identical_texts_have_no_edits(text: str) -> None:
    assert word_diff(text, text) == ([(0, text)] if text else [])


WORD_DIFFS = {
    "replaced-word": (
        "The Uyghur people",
        "The Uighur people",
        [(0, "The "), (-1, "Uyghur"), (1, "Uighur"), (0, " people")],
    ),
    "edits-stay-whole-words": (
        "It lists ethnic minority and more",
        "It lists ethnic majority and nothing",
        [
            (0, "It lists ethnic "),
            (-1, "minority"),
            (1, "majority"),
            (0, " and "),
            (-1, "more"),
            (1, "nothing"),
        ],
    ),
    "punctuation": (
        "Attributes: age, gender, ethnicity.",
        "Attributes: age; gender.",
        [
            (0, "Attributes: age"),
            (-1, ","),
            (1, ";"),
            (0, " gender"),
            (-1, ", ethnicity"),
            (0, "."),
        ],
    ),
    "cjk-characters": (
        "支持识别维吾尔族人脸。",
        "支持识别人脸。",
        [(0, "支持识别"), (-1, "维吾尔族"), (0, "人脸。")],
    ),
    "devanagari-word-whole": (
        "भाषा हिन्दी है",
        "भाषा उर्दू है",
        [(0, "भाषा "), (-1, "हिन्दी"), (1, "उर्दू"), (0, " है")],
    ),
    "lines-and-words": (
        "Age\nGender\nIs it Uyghur\nGlasses\n",
        "Age\nGender: male or female\nGlasses\n",
        [
            (0, "Age\nGender"),
            (-1, "\nIs it Uyghur"),
            (1, ": male or female"),
            (0, "\nGlasses\n"),
        ],
    ),
}


@pytest.mark.parametrize(
    ("before", "after", "expected"), WORD_DIFFS.values(), ids=WORD_DIFFS.keys()
)
def test_word_diff(before: str, after: str, expected: list[tuple[int, str]]) -> None:
    diffs = word_diff(before, after)

    assert diffs == expected
    assert "".join(text for op, text in diffs if op <= 0) == before
    assert "".join(text for op, text in diffs if op >= 0) == after


ROUND_TRIPS = {
    "punctuation-runs": ("Wait... what?! (yes) — no.", "Wait, what? (no) — yes!"),
    "cjk-mixed-latin": ("维吾尔 Uyghur 族，人脸识别。", "Uighur 族，人脸检测。维吾尔"),
    "whitespace-and-blank-lines": ("a\n\n\n b\n", "a\n b\n\n\n\n"),
    "one-side-empty": ("", "all new\ntext"),
    "combining-marks-and-emoji": ("cafe\u0301 👍🏽 ok", "café 👍 ok"),
    "moved-paragraph": ("A one.\nB two.\nC three.\n", "C three.\nA one.\nB two.\n"),
}


@pytest.mark.parametrize(("before", "after"), ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
@pytest.mark.parametrize("timeout", [2.0, 0.0], ids=["timeout-2s", "no-time"])
def test_word_diff_rebuilds_both_texts(before: str, after: str, timeout: float) -> None:
    diffs = word_diff(before, after, timeout)

    assert "".join(text for op, text in diffs if op <= 0) == before
    assert "".join(text for op, text in diffs if op >= 0) == after
    assert all(text for _, text in diffs)


def test_too_many_distinct_words_keep_line_granularity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diff, "_MAX_TOKENS", 3)

    diffs = word_diff("keep\nthe old words here\nkeep\n", "keep\nthe new words here\nkeep\n")

    assert diffs == [
        (0, "keep\n"),
        (-1, "the old words here\n"),
        (1, "the new words here\n"),
        (0, "keep\n"),
    ]
