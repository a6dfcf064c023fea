"""Visible text: the golden traps in tests/fixtures/extract, then the rules one by one."""

from __future__ import annotations

import codecs
import importlib.util
import random
import tomllib
import unicodedata
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pagewatch.extract import check_selector, visible_text
from pagewatch.match import compile_groups, count, spans
from pagewatch.models import Extracted, PhraseGroup

FIXTURES = Path(__file__).parent / "fixtures" / "extract"
CASES: list[dict[str, Any]] = tomllib.loads((FIXTURES / "cases.toml").read_text("utf-8"))["case"]


def _encoded_table() -> ModuleType:
    spec = importlib.util.spec_from_file_location("encoded_fixtures", FIXTURES / "encoded.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ENCODED = _encoded_table()


def html(markup: str, content_type: str | None = "text/html; charset=utf-8") -> Extracted:
    return visible_text(markup.encode("utf-8"), content_type)


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_golden_case(case: dict[str, Any]) -> None:
    body = (FIXTURES / case["file"]).read_bytes()
    extracted = visible_text(body, case.get("content_type"), case.get("selector"))

    assert extracted.readable is case.get("readable", True), extracted.note
    assert extracted.scope_found is case.get("scope_found", True), extracted.note
    if "encoding" in case:
        assert extracted.encoding == case["encoding"]
    for expected in case.get("contains", []):
        assert expected in extracted.text
    for unexpected in case.get("absent", []):
        assert unexpected not in extracted.text

    matcher = compile_groups([PhraseGroup("phrase", tuple(case["aliases"]))])
    counted = count(matcher, extracted.text)["phrase"]
    assert counted.count == case["count"], extracted.text
    assert len(spans(matcher, "phrase", extracted.text)) == case["count"]


def test_every_fixture_file_is_used() -> None:
    used = {case["file"] for case in CASES}
    files = {path.name for path in FIXTURES.iterdir()} - {"cases.toml", "encoded.py"}
    assert files - used == set()
    assert used - files == set()


@pytest.mark.parametrize("name", sorted(ENCODED.ENCODED))
def test_encoded_fixture_bytes_are_as_generated(name: str) -> None:
    assert (FIXTURES / name).read_bytes() == ENCODED.encoded(name)


def test_gb18030_fixture_has_no_utf8_phrase() -> None:
    body = (FIXTURES / "gb18030-meta.html").read_bytes()
    assert "维吾尔".encode("gb18030") in body
    assert "维吾尔".encode() not in body


# -- text shape ---------------------------------------------------------------------------------


def test_lines_come_from_blocks_and_br_not_from_source_newlines() -> None:
    extracted = html(
        "<title> The\n  title </title><h1>Face\n   attributes</h1>"
        "<p>one <i>two</i>\nthree<br>four</p><ul><li>a</li><li> b </li></ul>tail"
    )
    assert extracted.text == "The title\nFace attributes\none two three\nfour\na\nb\ntail"


def test_inline_script_is_dropped_but_its_tail_kept() -> None:
    assert html("<p>a<script>x</script>b<style>y</style>c</p>").text == "abc"


def test_text_after_body_and_html_is_still_read() -> None:
    assert html("<body><p>in</p></body><p>after body</p></html>late").text == (
        "in\nafter body\nlate"
    )


def test_document_without_body_reads_everything_but_head() -> None:
    extracted = html("<html><head><title>T</title><style>s</style></head><frameset></frameset>")
    assert extracted.text == "T"


def test_control_characters_and_nul_vanish() -> None:
    assert html("<p>Uy\x00gh\x01ur\x7f\x0b\x1f</p><p>\ufffe\uffffa\x0cb</p>").text == "Uyghur\na b"
    assert visible_text(b"Uy\x00gh\x01ur\x7f\x1f.", "text/plain").text == "Uyghur ."


def test_form_feed_alone_is_a_space() -> None:
    assert html("<p>a\x0cb</p>").text == "a b"


def test_whitespace_variants_collapse_within_a_line() -> None:
    extracted = html("<p>a\u2003b\u3000c\t\td\u2028e&#160;&#160;f</p>")
    assert extracted.text == "a b c d e f"


def test_empty_document() -> None:
    extracted = html("")
    assert (extracted.text, extracted.readable, extracted.note) == ("", True, "empty document")


def test_title_only_counted_once_and_first() -> None:
    extracted = html("<title>Is it Uyghur</title><body><p>Body</p></body>")
    assert extracted.text.splitlines() == ["Is it Uyghur", "Body"]


def test_textarea_keeps_line_breaks() -> None:
    assert html("<textarea>one\ntwo</textarea>").text == "one\ntwo"


def test_nested_selector_matches_are_not_repeated() -> None:
    body = b"<div class=a><div class=a><p>Is it Uyghur</p></div></div><div class=a>x</div>"
    extracted = visible_text(body, "text/html", "div.a")
    assert extracted.text == "Is it Uyghur\nx"


def test_selector_can_pick_the_title() -> None:
    assert visible_text(b"<title>T</title><p>b</p>", "text/html", "title").text == "T"


def test_selector_matching_an_empty_element_is_found_but_empty() -> None:
    extracted = visible_text(b"<main></main><p>b</p>", "text/html", "main")
    assert (extracted.text, extracted.scope_found) == ("", True)


def test_selector_on_plain_text_is_not_found() -> None:
    extracted = visible_text(b"Uyghur", "text/plain", "main")
    assert (extracted.text, extracted.scope_found) == ("", False)


# -- charsets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/html; charset=gbk", "gb18030"),
        ("text/html; charset=x-gbk", "gb18030"),
        ('text/html; charset="GB2312"', "gb18030"),
        ("text/html;charset=ISO-8859-1", "cp1252"),
        ("text/html; charset=latin1", "cp1252"),
        ("text/html; charset=us-ascii", "cp1252"),
        ("text/html; charset=ascii", "cp1252"),
        ("text/html; charset=shift_jis", "cp932"),
        ("text/html; charset=x-sjis", "cp932"),
        ("text/html; charset=Windows-31J", "cp932"),
        ("text/html; charset=euc-kr", "cp949"),
        ("text/html; charset=utf8", "utf-8"),
        ("text/html; charset=koi8-r", "koi8-r"),
        ("text/html; charset=no-such-charset", "utf-8"),
        ("text/html; charset=utf-7", "utf-8"),
        ("text/html; charset=rot13", "utf-8"),
        ("text/html; charset=base64", "utf-8"),
        ("text/html; charset=cp500", "utf-8"),  # EBCDIC: no browser honours it
        ("text/html; charset=ibm037", "utf-8"),
    ],
    ids=lambda value: str(value),
)
def test_charset_labels_map_the_whatwg_way(content_type: str, expected: str) -> None:
    assert visible_text(b"<p>x</p>", content_type).encoding == expected


def test_unknown_header_label_falls_through_to_meta() -> None:
    body = '<meta charset="gb2312"><p>维吾尔</p>'.encode("gb18030")
    extracted = visible_text(body, "text/html; charset=klingon")
    assert (extracted.encoding, extracted.text) == ("gb18030", "维吾尔")


@pytest.mark.parametrize(
    ("content_type", "meta"),
    [("text/html; charset=cp500", ""), ("text/html", '<meta charset="cp037">')],
    ids=["header", "meta"],
)
def test_an_ebcdic_label_on_an_ascii_page_is_ignored(content_type: str, meta: str) -> None:
    """Read as EBCDIC, an ASCII page is mojibake: every phrase gone."""
    body = f"{meta}<p>Is it Uyghur: boolean</p>".encode("ascii")
    assert visible_text(body, content_type).text == "Is it Uyghur: boolean"


@pytest.mark.parametrize(
    ("meta", "refresh"),
    [
        ('<meta http-equiv="refresh" content="0; url=/docs/v2">', "/docs/v2"),
        ("<meta http-equiv=REFRESH content=\"3;URL='https://v.example/new'\">",
         "https://v.example/new"),
        ('<meta http-equiv="refresh" content="300; url=/docs/v2">', ""),  # a slow reload
        ('<meta http-equiv="refresh" content="0">', ""),  # reloads itself
        ('<meta name="refresh" content="0; url=/x">', ""),
        ('<meta http-equiv="refresh" content="30">', ""),  # reloads itself every 30 s
        ('<meta http-equiv="refresh" content="0.5">', ""),
        ('<meta http-equiv="refresh" content="1; url=">', ""),
        ('<noscript><meta http-equiv="refresh" content="0; url=/nojs"></noscript>', ""),
    ],
    ids=["at-once", "quoted-url", "slow", "self", "not-http-equiv", "reload-30", "reload-half",
         "empty-url", "in-noscript"],
)  # fmt: skip
def test_a_meta_refresh_that_moves_browsers_on_at_once_is_reported(meta: str, refresh: str) -> None:
    body = f"<html><head>{meta}</head><body><p>This page has moved.</p></body></html>"
    assert visible_text(body.encode(), "text/html").refresh == refresh


@pytest.mark.parametrize("element", ["main", "article", "section", "header", "nav"])
def test_minified_html5_without_body_keeps_its_text(element: str) -> None:
    """libxml2 keeps HTML5 elements it does not know in <head> when <body> is left out, as
    minifiers do; a browser reads them as the body. Lost, the text would read as a removal."""
    body = f"<!doctype html><title>Face</title><{element}><p>Is it Uyghur</p></{element}><p>end"
    assert visible_text(body.encode(), "text/html").text == "Face\nIs it Uyghur\nend"


def test_unknown_meta_label_falls_through_to_next_meta() -> None:
    body = '<meta charset="klingon"><meta charset="gbk"><p>维吾尔</p>'.encode("gb18030")
    assert visible_text(body, "text/html").encoding == "gb18030"


def test_meta_inside_a_comment_is_ignored() -> None:
    body = '<!-- <meta charset="gb2312"> --><p>维吾尔</p>'.encode()
    extracted = visible_text(body, "text/html")
    assert (extracted.encoding, extracted.text) == ("utf-8", "维吾尔")


def test_meta_found_past_the_first_kilobyte_within_4k() -> None:
    body = b"<!DOCTYPE html><head>" + b" " * 3000 + b"<meta charset=gbk>" + "维吾尔".encode("gbk")
    assert visible_text(body, "text/html").encoding == "gb18030"


def test_meta_saying_utf16_in_ascii_bytes_means_utf8() -> None:
    body = '<meta charset="utf-16"><p>维吾尔</p>'.encode()
    assert visible_text(body, "text/html").text == "维吾尔"


def test_header_beats_bom() -> None:
    body = codecs.BOM_UTF8 + "café".encode()
    extracted = visible_text(body, "text/plain; charset=windows-1252")
    assert (extracted.encoding, extracted.text) == ("cp1252", "ï»¿cafÃ©")


def test_header_utf16_without_bom_is_little_endian() -> None:
    extracted = visible_text("Uyghur".encode("utf-16-le"), "text/plain; charset=utf-16")
    assert (extracted.encoding, extracted.text) == ("utf-16-le", "Uyghur")


def test_utf8_cut_inside_the_last_character_is_still_utf8() -> None:
    body = "<p>维吾尔 ok</p><p>维".encode()[:-1]
    extracted = visible_text(body, "text/html")
    assert extracted.encoding == "utf-8"
    assert extracted.text.startswith("维吾尔 ok")


# -- content types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["application/pdf", "image/png", "application/octet-stream", "video/mp4", "font/woff2"],
)
def test_binary_types_are_not_readable(content_type: str) -> None:
    extracted = visible_text(b"<p>Uyghur</p>", content_type)
    assert (extracted.readable, extracted.text) == (False, "")
    assert extracted.note == f"not text: {content_type}"


def test_binary_body_without_type_is_not_readable() -> None:
    extracted = visible_text(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", None)
    assert (extracted.readable, extracted.note) == (False, "not text: binary data")


def test_unknown_type_that_is_html_is_read_as_html() -> None:
    extracted = visible_text(b"<html><body><p>Is <b>it</b></p></body></html>", "application/x-php")
    assert (extracted.readable, extracted.text) == (True, "Is it")


def test_plain_text_without_type_is_read_as_text() -> None:
    extracted = visible_text(b"Is it\r\nUyghur\r\n\r\n", None)
    assert (extracted.readable, extracted.text) == (True, "Is it\nUyghur")


def test_xhtml_is_html() -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
        b'<head><title>T</title><script src="a.js"/></head><body><p>Uy<b/>ghur</p></body></html>'
    )
    assert visible_text(body, "application/xhtml+xml").text == "T\nUyghur"


def test_json_is_read_as_text() -> None:
    assert visible_text(b'{"label": "Uyghur"}', "application/json").text == '{"label": "Uyghur"}'


# -- limits and errors --------------------------------------------------------------------------


def test_nesting_beyond_any_limit_is_not_readable_rather_than_cut_short() -> None:
    body = b"<p>before</p>" + b"<div>" * 3000 + b"Uyghur" + b"</div>" * 3000
    extracted = visible_text(body, "text/html")
    assert extracted.readable is False
    assert "depth" in extracted.note


def test_huge_text_node_is_read_whole() -> None:
    body = b"<p>" + b"word " * 2_200_000 + b"Uyghur</p>"
    extracted = visible_text(body, "text/html")
    assert extracted.text.endswith("word Uyghur")
    assert visible_text(body, "text/html", huge=True).text == extracted.text


@pytest.mark.parametrize("selector", ["", "  ", "p[", "::text", "a >> b", "p:nth-child(x)"])
def test_bad_selectors_raise_value_error(selector: str) -> None:
    with pytest.raises(ValueError, match="selector"):
        check_selector(selector)
    with pytest.raises(ValueError, match="selector"):
        visible_text(b"<p>x</p>", "text/html", selector)


@pytest.mark.parametrize(
    "selector", ["main", "div.attrs > p", "#content", "h1, h2", "li:first-child"]
)
def test_good_selectors_pass(selector: str) -> None:
    check_selector(selector)


def test_private_use_characters_are_not_taken_for_line_breaks() -> None:
    # U+E000 marks line breaks inside extraction: the page's own reads as U+E001.
    extracted = html("<p>a\ue000b &#xE000;c &#57344;d &#xe001;e &#xF007;f</p>")
    assert extracted.text == "a\ue001b \ue001c \ue001d \ue001e \uf007f"


def test_references_to_characters_xml_cannot_hold() -> None:
    markup = "<p>a&#1;b&#x0B;c&#x7f;d&#xFFFE;e&#xffff;f&#0;g&#x92;h&#xD800;i&#12;j</p>"
    assert html(markup).text == "abcdef\ufffdg’h\ufffdi j"
    assert html("<title>x&#2;y</title><pre>a&#1;\nb</pre>").text == "xy\na\nb"


def test_undeclared_utf8_with_a_stray_latin1_byte_stays_utf8() -> None:
    body = "<p>新疆维吾尔自治区</p><footer>".encode() + b"\xa9 2020</footer>"
    found = visible_text(body, "text/html")
    assert found.encoding == "utf-8"
    assert "新疆维吾尔自治区" in found.text


def test_undeclared_latin1_page_reads_as_windows_1252() -> None:
    found = visible_text("<p>Café ethnique – résumé</p>".encode("cp1252"), "text/html")
    assert (found.encoding, found.text) == ("cp1252", "Café ethnique – résumé")


def test_meta_charset_after_a_long_inline_script_is_found() -> None:
    script = "<script>" + "var x = 1;" * 1000 + "</script>"
    html = f'<html><head>{script}<meta charset="gbk"></head><body><p>维吾尔</p></body></html>'
    found = visible_text(html.encode("gb18030"), "text/html")
    assert found.text == "维吾尔"


_TOKENS = [
    "<p>", "</p>", "<div>", "<pre>", "</pre>", "<script>", "</script>", "<!--", "-->", "</body>",
    "</html>", "<body>", "<br>", "<td>", "<title>", "</title>", "<textarea>", "<template>", "&#1;",
    "&#xE000;", "&nbsp;", "&shy;", "&amp;", "&", "<", "\u200b", "\ue000", "\x00", "\x0c", "\x7f",
    "\ufffe", "\u2028", "\x85", "\xa0", "¨", "ﬁ", "ẞ", " ", "\n", "\t", "Uyghur", "维吾尔",
]  # fmt: skip


@pytest.mark.parametrize("seed", range(40))
def test_broken_markup_never_raises_and_text_stays_normal(seed: int) -> None:
    rng = random.Random(seed)
    markup = "".join(rng.choice(_TOKENS) for _ in range(rng.randint(1, 80)))
    for content_type in ("text/html", None, "text/plain"):
        text = visible_text(markup.encode(), content_type).text
        assert "\ue000" not in text
        assert "  " not in text and "\n\n" not in text and text == text.strip()
        assert text == unicodedata.normalize("NFKC", text)
        visible = text.replace("\n", "").replace(" ", "")
        assert not [c for c in visible if c.isspace() or unicodedata.category(c) == "Cc"]
        assert not [c for c in visible if c in "\u00ad\u200b\ufeff\ufffe\uffff"]
