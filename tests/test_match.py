"""Phrase matching: folding, word boundaries, counting, spans and the group fingerprint."""

from __future__ import annotations

import random
import unicodedata

import pytest

from pagewatch import match
from pagewatch.match import (
    Matcher,
    _fold_with_offsets,
    compile_groups,
    count,
    fingerprint,
    fold,
    fold_alias,
    spans,
)
from pagewatch.models import GroupCount, PhraseGroup, Span


def matcher(*aliases: str, name: str = "g") -> Matcher:
    return compile_groups([PhraseGroup(name, aliases)])


def total(text: str, *aliases: str) -> int:
    return count(matcher(*aliases), text)["g"].count


# -- folding ------------------------------------------------------------------------------------


def test_fold_casefolds_and_collapses_whitespace() -> None:
    assert fold("  Is IT\n\n Straße\t\u00a0ΣΑΣ ") == "is it strasse σασ"


def test_fold_alias_normalises_like_extraction() -> None:
    assert fold_alias(" Ｉｓ  ｉｔ\u00a0Uy\u00adghur\u200b ") == "is it uyghur"


# -- literal aliases: where they match ----------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "text", "expected"),
    [
        ("ethnic", "ethnic", 1),
        ("ethnic", "ethnicity", 0),
        ("ethnic", "multiethnic", 0),
        ("ethnic", "ethnic_group", 0),
        ("ethnic", "ethnic2", 0),
        ("ethnic", "ethnic-origin, (ethnic), 'ethnic'.", 3),
        ("ethnic", "ETHNIC Ethnic", 2),
        ("Uyghur", "Uyghur's Uyghur’s Uyghurs", 2),
        ("Uyghur", "民族Uyghur标签", 1),
        ("Uyghur", "Uyghur\nface", 1),
        ("Is it Uyghur", "is   it\nUYGHUR", 1),
        ("Is it Uyghur", "this is it uyghur", 1),
        ("Is it Uyghur", "isis it uyghur", 0),
        ("Straße", "STRASSE strasse straße", 3),
        ("ẞ", "ss", 1),
        ("C++", "C++ and c++11", 2),
        ("(beta)", "x(beta)y", 1),
        ("5G", "5G 5GHz", 1),
        ("维吾尔", "新疆维吾尔自治区", 1),
        ("维吾尔族", "维吾尔族人", 1),
        ("ウイグル", "ウイグル族", 1),
        ("위구르", "위구르족의 얼굴", 1),
        ("อุยกูร์", "ชาวอุยกูร์ในจีน", 1),
        ("新疆uyghur", "新疆uyghurs", 0),
        ("新疆uyghur", "老新疆uyghur.", 1),
        ("हिंद", "हिंदी", 0),
        ("हिंद", "हिंद।", 1),
        ("cafe", "cafe\u0301", 0),  # a combining mark continues the word
    ],
    ids=lambda value: str(value).replace("\n", "\\n"),
)
def test_literal_alias_boundaries(alias: str, text: str, expected: int) -> None:
    assert total(text, alias) == expected


def test_stored_mark_table_is_the_computed_one() -> None:
    """The combining marks kept in match.py are this Python's; if not, here is the new table."""
    if unicodedata.unidata_version != match._MARKS_UNICODE:
        pytest.skip(f"the table is for Unicode {match._MARKS_UNICODE}")
    computed = match.compute_mark_ranges()
    table = " ".join(f"{a:x}-{b:x}" if a != b else f"{a:x}" for a, b in computed)
    assert match._mark_ranges() == computed, f"regenerate match._MARKS:\n{table}"


def test_mark_ranges_are_computed_under_another_unicode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(match, "_MARKS_UNICODE", "0.0.0")
    ranges = match._mark_ranges()
    assert (0x300, 0x36F) in ranges and (0x93E, 0x94F) in ranges  # Devanagari vowel signs
    assert not any(low <= 0x3099 <= high for low, high in ranges)  # kana voicing: not a word


def test_overlapping_aliases_count_the_longest_once() -> None:
    counted = count(matcher("ethnic", "ethnic minority"), "an ethnic minority, an ethnic group")
    assert counted["g"] == GroupCount("g", 2, (("ethnic", 1), ("ethnic minority", 1)))


def test_longer_alias_failing_its_boundary_leaves_the_shorter_one() -> None:
    assert count(matcher("ethnic minority", "ethnic"), "ethnic minorityX")["g"].aliases == (
        ("ethnic", 1),
    )


def test_matches_do_not_overlap_within_an_alias() -> None:
    assert total("aaaa", "re:aa") == 2


def test_duplicate_spelling_counts_for_the_first() -> None:
    counted = count(matcher("Uyghur", "UYGHUR", "Uighur"), "Uyghur uyghur Uighur")
    assert counted["g"] == GroupCount("g", 3, (("Uyghur", 2), ("Uighur", 1)))


def test_count_reports_every_group_in_order_even_at_zero() -> None:
    groups = [
        PhraseGroup("uyghur", ("Uyghur", "Uighur", "维吾尔")),
        PhraseGroup("ethnicity", ("ethnic minority", "ethnicity")),
        PhraseGroup("alarm", ("re:u[iy]ghur alarm",)),
    ]
    counted = count(compile_groups(groups), "Uighur alarm. 维吾尔 and Uyghur; no ethnicity.")
    assert list(counted) == ["uyghur", "ethnicity", "alarm"]
    assert counted["uyghur"] == GroupCount(
        "uyghur", 3, (("Uyghur", 1), ("Uighur", 1), ("维吾尔", 1))
    )
    assert counted["ethnicity"] == GroupCount("ethnicity", 1, (("ethnicity", 1),))
    assert counted["alarm"] == GroupCount("alarm", 1, (("re:u[iy]ghur alarm", 1),))
    assert count(compile_groups(groups), "nothing here")["ethnicity"] == GroupCount("ethnicity", 0)


def test_alias_swap_keeps_the_group_count() -> None:
    group = matcher("Uyghur", "Uighur")
    before = count(group, "Is it Uyghur: true or false.")["g"]
    after = count(group, "Is it Uighur: true or false.")["g"]
    assert (before.count, after.count) == (1, 1)
    assert (before.aliases, after.aliases) == ((("Uyghur", 1),), (("Uighur", 1),))


# -- regex aliases ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "text", "expected"),
    [
        ("re:Is it U[yi]ghur", "Is it Uyghur? IS IT UIGHUR! is it  uighur", 3),
        ("re:u[iy]gh?ur", "Uyghur Uighur Uygur Uighurs", 4),
        ("re:\\bethnic\\b", "ethnic ethnicity", 1),
        ("re:is\\s+it", "is\n\n  it", 1),
        ("re:(?i)ETHNIC", "ethnic", 1),
        ("re:(?x) ethnic \\  minority  # a comment", "ethnic minority", 1),
        ("re:(?P<w>ab)(?P=w)", "abab ab", 1),
        ("re:straße", "Straße", 0),  # regexes see the casefolded text: "strasse"
        ("re:strasse", "Straße", 1),
    ],
    ids=lambda value: str(value).replace("\n", "\\n"),
)
def test_regex_alias(alias: str, text: str, expected: int) -> None:
    assert total(text, alias) == expected


def test_regex_and_literal_aliases_share_one_scan() -> None:
    counted = count(matcher("Uyghur", "re:is it u[yi]ghur"), "Is it Uyghur? Uyghur.")
    assert counted["g"] == GroupCount("g", 2, (("Uyghur", 1), ("re:is it u[yi]ghur", 1)))


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("re:U[yi", "is not a regular expression"),
        ("re:(unclosed", "is not a regular expression"),
        ("re:a*", "can match the empty string"),
        ("re:\\b", "can match the empty string"),
        ("re:(?=x)", "can match the empty string"),
        ("re:x|", "can match the empty string"),
        ("re:", "is an empty regular expression"),
        ("re:   ", "is an empty regular expression"),
        ("re:(a)\\1", "by name"),
        ("re:(a+)+b", "without bound"),
        ("re:uy(?:\\s*\\w+)*ur", "without bound"),
        ("re:(?:x|(?:y+)*)z", "without bound"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("\u200b", "is empty"),
    ],
    ids=["unclosed-class", "unclosed-group", "star", "word-boundary", "lookahead",
         "empty-branch", "empty", "blank", "numbered-backref", "nested-plus", "nested-star",
         "nested-in-branch", "empty-literal", "blank-literal", "invisible-literal"],
)  # fmt: skip
def test_bad_aliases_raise_value_error_naming_group_and_alias(alias: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        compile_groups([PhraseGroup("uyghur", ("Uyghur", alias))])
    assert "'uyghur'" in str(raised.value)
    assert repr(alias) in str(raised.value)


@pytest.mark.parametrize(
    "alias",
    ["re:xinjiang(?:\\s+\\w+){0,3}\\s+camps", "re:(?>a+)+b", "re:(?:a++)+b", "re:\\w+\\s+\\w+",
     "re:(a|b)*c"],
    ids=["bounded-outer", "atomic-inner", "possessive-inner", "in-sequence", "alternation"],
)  # fmt: skip
def test_repetitions_that_cannot_backtrack_without_end_are_allowed(alias: str) -> None:
    compile_groups([PhraseGroup("uyghur", (alias,))])


def test_regexes_whose_group_names_clash_raise_value_error() -> None:
    with pytest.raises(ValueError, match=r"'g'.*clash"):
        matcher("re:(?P<x>a)b", "re:(?P<x>c)d")


def test_group_without_aliases_and_duplicate_groups_raise_value_error() -> None:
    with pytest.raises(ValueError, match="'g' has no aliases"):
        matcher()
    with pytest.raises(ValueError, match="'g' is defined twice"):
        compile_groups([PhraseGroup("g", ("a",)), PhraseGroup("g", ("b",))])


def test_regex_with_nested_set_warning_still_compiles() -> None:
    assert total("[a] a", "re:[[]a") == 1


# -- spans --------------------------------------------------------------------------------------


def located(text: str, *aliases: str) -> list[tuple[str, str]]:
    return [(text[s.start : s.end], s.alias) for s in spans(matcher(*aliases), "g", text)]


def test_spans_map_back_to_the_original_text() -> None:
    text = "Is it Uyghur?\nThe UIGHUR alarm; 新疆维吾尔自治区"
    assert located(text, "Uyghur", "Uighur", "维吾尔") == [
        ("Uyghur", "Uyghur"),
        ("UIGHUR", "Uighur"),
        ("维吾尔", "维吾尔"),
    ]
    assert spans(matcher("Uyghur"), "g", text) == [Span(6, 12, "Uyghur")]


def test_spans_through_casefolding_that_lengthens() -> None:
    text = "Die STRAẞE, die Straße und die strasse. Σ ﬁx"
    assert located(text, "strasse") == [
        ("STRAẞE", "strasse"),
        ("Straße", "strasse"),
        ("strasse", "strasse"),
    ]
    assert located(text, "ss") == []  # inside a word
    assert located("ß ẞ", "ss") == [("ß", "ss"), ("ẞ", "ss")]


def test_spans_through_collapsed_whitespace() -> None:
    text = "  Is \n\n it\t\u00a0 Uyghur  and is it uyghur"
    assert located(text, "Is it Uyghur") == [
        ("Is \n\n it\t\u00a0 Uyghur", "Is it Uyghur"),
        ("is it uyghur", "Is it Uyghur"),
    ]
    assert spans(matcher("Is it Uyghur"), "g", text)[0] == Span(2, 19, "Is it Uyghur")


def test_spans_of_a_regex_alias() -> None:
    assert located("Is it  Uighur", "re:is it u[yi]ghur") == [
        ("Is it  Uighur", "re:is it u[yi]ghur")
    ]


def test_spans_of_an_unknown_group_raise_key_error() -> None:
    with pytest.raises(KeyError):
        spans(matcher("Uyghur"), "nope", "Uyghur")


_ALPHABET = "aUyghurß ẞİΣς\n\t\u00a0 维吾尔ﬁ'.-"


@pytest.mark.parametrize("seed", range(20))
def test_count_and_spans_agree(seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(rng.choice(_ALPHABET) for _ in range(400))
    group = matcher("Uyghur", "a", "ss", "维吾尔", "re:u\\s?g")
    assert _fold_with_offsets(text)[0] == fold(text)
    found = spans(group, "g", text)
    counted = count(group, text)["g"]
    assert len(found) == counted.count
    assert tuple(
        (alias, n) for alias in ("Uyghur", "a", "ss", "维吾尔", "re:u\\s?g")
        if (n := sum(s.alias == alias for s in found))
    ) == counted.aliases  # fmt: skip
    for span in found:  # every span folds to a match of its alias
        assert fold(text[span.start : span.end])


# -- fingerprint --------------------------------------------------------------------------------

GROUPS = [PhraseGroup("uyghur", ("Uyghur", "Uighur", "维吾尔")), PhraseGroup("ethnic", ("ethnic",))]


def test_fingerprint_is_stable() -> None:
    assert fingerprint(GROUPS) == "c94435a01dd2dd40"
    assert compile_groups(GROUPS).fingerprint == fingerprint(GROUPS)


def test_fingerprint_ignores_group_order_only() -> None:
    assert fingerprint(GROUPS[::-1]) == fingerprint(GROUPS)
    changed = [PhraseGroup("uyghur", ("Uyghur", "Uighur")), GROUPS[1]]
    renamed = [PhraseGroup("uighur", GROUPS[0].aliases), GROUPS[1]]
    assert len({fingerprint(GROUPS), fingerprint(changed), fingerprint(renamed)}) == 3
    assert len(fingerprint(GROUPS)) == 16
