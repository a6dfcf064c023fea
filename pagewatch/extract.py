"""Visible text of a captured body: what a reader of the page sees, ready for matching and diffing.

The charset comes from the HTTP header, then a byte order mark, then a ``<meta>`` declaration, then
a guess (UTF-8 when it decodes, else windows-1252). HTML is parsed with lxml; the text is the
``<title>`` and the ``<body>`` without scripts, styles, ``noscript``, ``template`` and comments.
Inline markup adds no whitespace, block elements and ``<br>`` break lines, invisible characters
vanish, and the result is NFKC-normalised with whitespace collapsed within each line.
"""

from __future__ import annotations

import codecs
import itertools
import re
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from pagewatch.models import Extracted

if TYPE_CHECKING:  # lxml is imported where a page is parsed: commands that read none skip it
    from lxml import etree
    from lxml.cssselect import CSSSelector

#: Bump when a change to these rules can change the text of an unchanged page: stored counts made
#: under another version are then recounted before they are compared, never trusted as they are.
RULES_VERSION = 4  # 4: elements libxml2 left in <head> are read; EBCDIC labels; meta refresh

__all__ = ["check_selector", "visible_text"]

# Charset labels read the way browsers read them (WHATWG Encoding Standard): label or codec name.
_WHATWG_CODECS = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb18030": "gb18030",
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "us-ascii": "cp1252", "ascii": "cp1252",
    "iso-8859-9": "cp1254", "iso8859-9": "cp1254", "latin5": "cp1254",
    "tis-620": "cp874", "iso-8859-11": "cp874", "iso8859-11": "cp874",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932",
    "ms_kanji": "cp932", "windows-31j": "cp932",
    "euc-kr": "cp949", "euc_kr": "cp949", "ks_c_5601-1987": "cp949",
    "big5": "big5hkscs",
}  # fmt: skip
# Python codecs that are not a page's character set (or are unsafe to honour, like UTF-7).
_REFUSED_CODECS = frozenset(
    {"utf-7", "idna", "punycode", "raw_unicode_escape", "unicode_escape", "undefined", "mbcs"}
)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16's, which it starts with
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?\s*([^\s;"',]+)""", re.IGNORECASE)
_META_CHARSET = re.compile(
    rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([a-z0-9_.:\-]+)""", re.IGNORECASE
)
_COMMENT = re.compile(rb"<!--.*?(?:-->|\Z)", re.DOTALL)
_SNIFF_BYTES = 64 * 1024  # browsers re-read a page whose <meta> comes late

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/xml", "application/xml"})
_TEXT_TYPES = frozenset(
    {"application/json", "application/javascript", "application/x-javascript", "application/rtf"}
)
_BINARY_PREFIXES = ("image/", "audio/", "video/", "font/", "model/", "application/vnd.")
_BINARY_TYPES = frozenset(
    {
        "application/pdf", "application/octet-stream", "application/zip", "application/gzip",
        "application/x-gzip", "application/x-tar", "application/x-bzip2", "application/x-xz",
        "application/x-7z-compressed", "application/x-rar-compressed", "application/msword",
        "application/wasm", "application/java-archive", "application/x-shockwave-flash",
        "application/ogg", "application/x-msdownload", "application/x-protobuf",
    }
)  # fmt: skip
# A body without a usable type is HTML when it starts with a tag or names the HTML skeleton.
_HTML_START = re.compile(r"[\s\ufeff]*<[a-zA-Z!?]")
_HTML_SKELETON = re.compile(r"<(?:!doctype\s+html|html|head|body|meta|title)[\s>/]", re.IGNORECASE)
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")
_BINARY_CHARS = re.compile("[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")
_BINARY_SAMPLE = 4096  # characters looked at to tell binary data served as text
# The first bytes of files that are never text, whatever type they are served as (a PDF opens
# with lines of text, so its control bytes may come too late to tell).
_BINARY_MAGIC = (
    b"%PDF-", b"\x89PNG", b"GIF87a", b"GIF89a", b"\xff\xd8\xff", b"PK\x03\x04", b"\x1f\x8b",
    b"7z\xbc\xaf", b"Rar!\x1a\x07", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd", b"OggS\x00", b"ID3\x03",
    b"ID3\x04", b"wOFF", b"wOF2", b"\x00asm", b"\xd0\xcf\x11\xe0", b"\x7fELF", b"MZ\x90\x00",
)  # fmt: skip
_ASCII = bytes(range(0x80))
_HIGH_RUN = re.compile(rb"[\x80-\xff]{2,}")
#: bytes in valid multi-byte UTF-8 characters that outweigh a declared legacy charset: fewer
#: could be a legacy text that happens to be valid UTF-8 (two GBK characters can be)
_UTF8_EVIDENCE = 8

# Bytes of characters XML cannot hold (lxml refuses them in text), and DEL.
_NOT_XML = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_FORM_FEED_IS_SPACE = bytes.maketrans(b"\x0c", b" ")
_HTML_ENDS = (b"</html", b"</HTML", b"</Html")
_HTML_TRAILER = re.compile(rb"</html\s*>(?:\s+|<!--.*?-->)*", re.IGNORECASE | re.DOTALL)
_END_TAGS = re.compile(rb"</(?:body|html)\b[^>]*>", re.IGNORECASE)
# Line breaks made by markup are marked with a private-use character while the text is put
# together, so that source newlines collapse like any whitespace while structural breaks survive.
# The page's own U+E000, unrenderable anyway, is read as U+E001.
_MARK = "\ue000"
_MARK_STAND_IN = "\ue001"
# Numeric character references to U+E000 and to characters XML cannot hold (libxml2 decodes
# them as HTML5 says, and lxml would then refuse the text). The others are left to libxml2.
_SPECIAL_REFERENCE = re.compile(
    rb"&#(?:[xX]0*([1-8bBcCeEfF]|1[0-9a-fA-F]|7[fF]|[fF]{3}[eEfF]|[eE]000)(?![0-9a-fA-F])"
    rb"|0*([1-8]|1[124-9]|2[0-9]|3[01]|127|6553[45]|57344)(?![0-9]));?"
)

_SKIPPED = ("script", "style", "noscript", "template")
_PREFORMATTED = ("pre", "textarea", "listing", "xmp", "plaintext")
_BLOCKS = (
    "address", "article", "aside", "blockquote", "body", "button", "caption", "center", "dd",
    "details", "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer",
    "form", "frameset", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "html",
    "legend", "li", "listing", "main", "menu", "nav", "ol", "optgroup", "option", "p", "plaintext",
    "pre", "search", "section", "select", "summary", "table", "tbody", "td", "textarea", "tfoot",
    "th", "thead", "tr", "ul", "xmp",
)  # fmt: skip
# Soft hyphen, zero-width characters, noncharacters and controls: they vanish, even in a word.
_INVISIBLE = re.compile(
    "[\u00ad\u200b-\u200d\u2060\ufeff\ufffe\uffff\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]"
)
_NEWLINES = re.compile("\r\n?|\n|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


class _Decoded(NamedTuple):
    text: str
    encoding: str  # the Python codec
    utf8: bytes | None  # the body itself, BOM dropped, when it is valid UTF-8
    problem: str = ""  # why the text cannot be known: the charset is a guess we will not make


def check_selector(selector: str) -> None:
    """Raise ValueError with a short reason when ``selector`` is not a CSS selector we can apply."""
    _compile_selector(selector)


@lru_cache(maxsize=256)
def _compile_selector(selector: str) -> CSSSelector:
    from cssselect import SelectorError
    from lxml.cssselect import CSSSelector

    if not selector.strip():
        raise ValueError("empty CSS selector")
    try:
        return CSSSelector(selector, translator="html")
    except SelectorError as exc:
        raise ValueError(f"bad CSS selector {selector!r}: {exc}") from None


def visible_text(
    body: bytes,
    content_type: str | None = None,
    selector: str | None = None,
    *,
    huge: bool = False,
) -> Extracted:
    """The visible text of ``body`` (content-encoding already undone), scoped by ``selector``.

    ``content_type`` is the raw Content-Type header. ``huge`` lifts lxml's limits on very large or
    deeply nested documents from the start (without it they are lifted when a page needs it).
    Raises ValueError for an invalid selector.
    """
    compiled = _compile_selector(selector) if selector is not None else None
    mime, header_charset = _parse_content_type(content_type)
    if _is_binary_type(mime):
        return Extracted("", encoding="", readable=False, note=f"not text: {mime}")

    plain = mime == "text/plain"
    decoded = _decode(body, header_charset, sniff_meta=not plain)
    # An image, an archive or a compressed body under a text type: its "text" is noise. (UTF-16
    # is told by its characters; any other charset keeps control bytes as they are.)
    sample = decoded.text if _is_wide(decoded.encoding) else body[:_BINARY_SAMPLE].decode("latin-1")
    if body.startswith(_BINARY_MAGIC) or _is_binary_data(sample):
        return Extracted("", "", readable=False, note="not text: binary data" + _as(mime))
    if decoded.problem:
        return Extracted("", decoded.encoding, readable=False, note=decoded.problem)
    if mime in _HTML_TYPES or (not plain and _looks_like_html(decoded.text)):
        return _html_text(decoded, compiled, huge)
    encoding = decoded.encoding
    if not (plain or _is_text_type(mime) or _looks_like_text(body, encoding)):
        return Extracted("", encoding, readable=False, note=f"not text: {mime or 'binary data'}")
    if compiled is not None:
        return Extracted("", encoding, scope_found=False, note="selector on a non-HTML page")
    text = _INVISIBLE.sub("", decoded.text).replace(_MARK, _MARK_STAND_IN)
    return Extracted(_normalise(_NEWLINES.sub(_MARK, text), _MARK), encoding)


def _parse_content_type(content_type: str | None) -> tuple[str, str | None]:
    """The media type, lowercased ("" when missing), and the charset parameter if any."""
    media_type, _, params = (content_type or "").partition(";")
    match = _CHARSET_PARAM.search(params)
    return media_type.split(",")[0].strip().lower(), match.group(1) if match else None


def _is_binary_type(mime: str) -> bool:
    return mime in _BINARY_TYPES or (
        mime.startswith(_BINARY_PREFIXES) and not mime.endswith(("+xml", "+json"))
    )


def _is_text_type(mime: str) -> bool:
    return mime.startswith("text/") or mime in _TEXT_TYPES or mime.endswith(("+json", "+xml"))


def _looks_like_text(body: bytes, encoding: str) -> bool:
    return _is_wide(encoding) or not _BINARY_BYTES.search(body, 0, 1024)


def _as(mime: str) -> str:
    return f" as {mime}" if mime else ""


def _is_binary_data(text: str) -> bool:
    """More control characters than a text ever has (a stray one or two in a page is not
    binary), in whatever charset the body was read."""
    found = len(_BINARY_CHARS.findall(text, 0, _BINARY_SAMPLE))
    return found >= max(8, min(len(text), _BINARY_SAMPLE) // 50)


def _looks_like_html(text: str) -> bool:
    return bool(_HTML_START.match(text) or _HTML_SKELETON.search(text, 0, 1024))


def _codec(label: str) -> str | None:
    """The Python codec for a charset label, the WHATWG way; None for labels we do not honour."""
    label = label.strip().strip("\"'").lower()
    if label in _WHATWG_CODECS:
        return _WHATWG_CODECS[label]
    try:
        info = codecs.lookup(label)
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED_CODECS:
        return None
    if not info.name.startswith(("utf-16", "utf-32")) and not _keeps_ascii(info.name):
        return None  # EBCDIC and kin (cp037, cp500...): no browser reads a page with them
    return _WHATWG_CODECS.get(info.name, info.name)


@lru_cache(maxsize=64)
def _keeps_ascii(codec: str) -> bool:
    """Does ``codec`` read printable ASCII as ASCII, as every charset a browser honours does
    (UTF-16 and UTF-32 aside)? A page declaring one that does not would read as mojibake."""
    try:
        return _PRINTABLE_ASCII.decode(codec) == _PRINTABLE_ASCII.decode("ascii")
    except (UnicodeDecodeError, LookupError):
        return False


_PRINTABLE_ASCII = bytes(range(0x20, 0x7F)) + b"\t\n\r"


def _decode(body: bytes, header_charset: str | None, *, sniff_meta: bool) -> _Decoded:
    """Decode ``body``: header charset, then BOM, then ``<meta>``, then UTF-8 or windows-1252.

    A declaration the bytes contradict is not followed into mojibake (which reads as every
    phrase gone): a UTF-16 BOM beats a header naming another charset, clean UTF-8 text beats a
    declared legacy charset, and a body that is neither what it declares nor readable by the
    fallbacks has no text we can know (``problem`` says so).
    """
    bom = next((name for mark, name in _BOMS if body.startswith(mark)), None)
    encoding = _codec(header_charset) if header_charset else None
    if encoding in ("utf-16", "utf-32"):
        encoding = "utf-16-be" if bom == "utf-16-be" else "utf-16-le"
    if _is_wide(encoding) and bom is None and b"\0" not in body[:1024] and b"<" in body[:1024]:
        encoding = None  # markup in single bytes, no zero among them: not UTF-16, whatever it says
    if bom and encoding != bom and (_is_wide(bom) or _is_wide(encoding)):
        encoding = bom  # a UTF-16 body cannot be read as anything else, nor UTF-8 as UTF-16
    if encoding is None:
        encoding = bom
    if encoding is None and sniff_meta:
        encoding = _meta_charset(body)
    if encoding is None:
        encoding = _utf16_without_bom(body)
    for mark, name in _BOMS:
        if name == encoding and body.startswith(mark):
            body = body[len(mark) :]
    if encoding not in (None, "utf-8"):
        if not _is_wide(encoding) and _clean_utf8_text(body):
            return _Decoded(body.decode("utf-8"), "utf-8", body)  # the declaration lies
        return _Decoded(body.decode(encoding, errors="replace"), encoding, None)

    body = body.removeprefix(codecs.BOM_UTF8)
    try:
        return _Decoded(body.decode("utf-8"), "utf-8", body)
    except UnicodeDecodeError:
        pass
    try:  # a multi-byte character cut off at the very end still means UTF-8
        return _Decoded(
            codecs.getincrementaldecoder("utf-8")().decode(body, final=False), "utf-8", None
        )
    except UnicodeDecodeError:
        pass
    # Not clean UTF-8, declared so or not: a page of UTF-8 with a stray Latin-1 byte in its
    # footer is still UTF-8 (reading it all as windows-1252 would turn 维吾尔 into mojibake: a
    # false removal). Go by the evidence: valid multi-byte characters against invalid bytes.
    # (Bytes, not characters: one valid 3-byte character is better evidence than one bad byte.)
    text = body.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd")
    if len(body.translate(None, _ASCII)) - invalid > invalid:
        return _Decoded(text, "utf-8", None)
    if encoding == "utf-8" and sniff_meta:  # a header saying UTF-8 over a page that is not
        meta = _meta_charset(body)
        if meta not in (None, "utf-8"):
            return _Decoded(body.decode(meta, errors="replace"), meta, None)
    if _multibyte_legacy(body):
        # Runs of high bytes: GBK, Big5, Shift_JIS, EUC-KR, a Cyrillic code page... Guessing one
        # is guessing the words; windows-1252 would be mojibake. No text is the honest answer.
        what = "not UTF-8 as declared" if encoding == "utf-8" else "not UTF-8 and none declared"
        return _Decoded("", "", None, f"unknown charset: {what}, and not Western text")
    return _Decoded(body.decode("cp1252", errors="replace"), "cp1252", None)


def _is_wide(encoding: str | None) -> bool:
    return encoding is not None and encoding.startswith(("utf-16", "utf-32"))


def _clean_utf8_text(body: bytes) -> bool:
    """Valid UTF-8 with enough multi-byte characters that it cannot be a legacy charset's text."""
    if len(body.translate(None, _ASCII)) < _UTF8_EVIDENCE:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _utf16_without_bom(body: bytes) -> str | None:
    """UTF-16 told by its zero bytes: Latin text in UTF-16 has one in every other byte."""
    sample = body[:1024]
    half = len(sample) // 2
    if half < 4:
        return None
    even, odd = sample[0 : 2 * half : 2].count(0), sample[1 : 2 * half : 2].count(0)
    if odd * 3 >= half and even * 10 <= odd:
        return "utf-16-le"
    if even * 3 >= half and odd * 10 <= even:
        return "utf-16-be"
    return None


def _multibyte_legacy(body: bytes) -> bool:
    """Do the high bytes come in runs (a multi-byte or non-Latin charset), not one by one
    between ASCII letters the way accents do in windows-1252 text?"""
    high = len(body.translate(None, _ASCII))
    in_runs = sum(map(len, _HIGH_RUN.findall(body)))
    return in_runs >= 4 and in_runs * 2 > high


def _meta_charset(body: bytes) -> str | None:
    head = _COMMENT.sub(b"", body[:_SNIFF_BYTES])
    for match in _META_CHARSET.finditer(head):
        encoding = _codec(match.group(1).decode("ascii"))
        if encoding is not None:
            # A page that says UTF-16 in ASCII-compatible bytes is UTF-8 (WHATWG).
            return "utf-8" if encoding.startswith(("utf-16", "utf-32")) else encoding
    return None


def _html_text(decoded: _Decoded, selector: CSSSelector | None, huge: bool) -> Extracted:
    from lxml import etree

    text, encoding, mark = decoded.text, decoded.encoding, _MARK
    root, note = _parse(_parser_input(text, decoded.utf8), huge)
    if root is None:
        if note:
            return Extracted("", encoding, readable=False, note=note)
        return Extracted("", encoding, scope_found=selector is None, note="empty document")

    refresh = _refresh(root)
    _close_head(root)
    _reopen_body(root)
    etree.strip_elements(
        root, etree.Comment, etree.ProcessingInstruction, *_SKIPPED, with_tail=False
    )
    for pre in root.iter(*_PREFORMATTED):
        for node in pre.iter():
            inner = node.text
            if inner and "\n" in inner:
                node.text = inner.replace("\n", mark)
            after = node.tail
            if node is not pre and after and "\n" in after:
                node.tail = after.replace("\n", mark)
    for element in root.iter(*_BLOCKS):
        inner, after = element.text, element.tail
        element.text = mark + inner if inner else mark
        element.tail = mark + after if after else mark
    for br in root.iter("br"):
        after = br.tail
        br.tail = mark + after if after else mark

    if selector is not None:
        found = selector(root)  # a CSS selector yields a list of elements
        matched = (
            [e for e in found if isinstance(e, etree._Element)] if isinstance(found, list) else []
        )
        chosen = set(matched)
        # An element inside another match is already part of that match's text.
        parts = [
            _text_of(element)
            for element in matched
            if not any(ancestor in chosen for ancestor in element.iterancestors())
        ]
        if not parts:
            return Extracted("", encoding, scope_found=False, note="selector matched nothing")
    else:
        title = root.find("head/title")
        body = root.find("body")
        parts = [_text_of(title)] if title is not None else []
        if body is None:
            head = root.find("head")
            if head is not None:
                root.remove(head)
            body = root
        parts.append(_text_of(body))
    text = _normalise(mark.join(parts), mark, ascii_is_clean=True)
    return Extracted(text, encoding, note=note, refresh=refresh)


def _refresh(root: etree._Element) -> str:
    """Where a ``<meta http-equiv="refresh" content="0; url=...">`` sends browsers within
    REFRESH_MAX_S seconds ('' if nowhere): the page then stands in for another."""
    for meta in root.iter("meta"):
        if (meta.get("http-equiv") or "").strip().lower() != "refresh":
            continue
        if any(a.tag in ("noscript", "template") for a in meta.iterancestors()):
            continue  # browsers that run scripts, or none, never act on it
        found = _REFRESH.match(meta.get("content") or "")
        if found and float(found.group(1)) <= REFRESH_MAX_S:
            return found.group(2).strip()
    return ""


#: a meta refresh this soon is a redirect in all but name
REFRESH_MAX_S = 5
_REFRESH = re.compile(
    r"""\s*(\d+(?:\.\d*)?)(?![\d.])\s*[;,]\s*"""  # a delay, then a separator
    r"""(?:url\s*=\s*)?(?!url\s*=)["']?([^"'\s=][^"']*)""",  # and a URL that is not empty
    re.I,
)


def _parser_input(text: str, utf8: bytes | None) -> bytes:
    """The page in UTF-8 as lxml should parse it.

    Characters XML cannot hold, as such or as references, would make lxml refuse the text later:
    a form feed is a space, the others vanish (UTF-8 never uses these bytes inside a multi-byte
    character). U+E000 becomes U+E001 (see _MARK). And libxml2 drops what follows ``</html>``,
    which a browser reads into the body: when something does, the ``</html>`` and ``</body>``
    end tags go.
    """
    data = utf8 if utf8 is not None else text.encode("utf-8", errors="replace")
    if any(byte in data for byte in _NOT_XML):
        data = data.translate(_FORM_FEED_IS_SPACE, _NOT_XML.replace(b"\x0c", b""))  # FF: space
    if "\ufffe" in text or "\uffff" in text:  # noncharacters, which XML cannot hold either
        data = data.replace("\ufffe".encode(), b"").replace("\uffff".encode(), b"")
    if _MARK in text:
        data = data.replace(_MARK.encode(), _MARK_STAND_IN.encode())
    if b"&#" in data and _SPECIAL_REFERENCE.search(data):
        data = _SPECIAL_REFERENCE.sub(_special_reference, data)
    found = [at for at in map(data.find, _HTML_ENDS) if at >= 0]
    if found and not _HTML_TRAILER.fullmatch(data, min(found)):
        data = _END_TAGS.sub(b"", data)
    return data


def _special_reference(match: re.Match[bytes]) -> bytes:
    code = int(match.group(1), 16) if match.group(1) else int(match.group(2))
    if code == ord(_MARK):
        return b"&#%d;" % ord(_MARK_STAND_IN)
    return b" " if code == 0x0C else b""


def _close_head(root: etree._Element) -> None:
    """Move what libxml2 left in ``<head>`` after its first element that has no place there
    into the body, where a browser puts it: libxml2 does not know HTML5's elements, so a page
    whose minifier left out ``<body>`` (``<title>T</title><main>...``) kept its text in the head."""
    from lxml import etree

    head = root.find("head")
    if head is None:
        return
    stray = list(
        itertools.dropwhile(lambda e: not isinstance(e.tag, str) or e.tag in _HEAD_ONLY, head)
    )
    if not stray:
        return
    body = root.find("body")
    if body is None:
        body = etree.SubElement(root, "body")
    if body.text:  # text at the body's start comes after what moves in before it
        stray[-1].tail = (stray[-1].tail or "") + body.text
        body.text = None
    for index, element in enumerate(stray):
        body.insert(index, element)


_HEAD_ONLY = frozenset({"title", "meta", "link", "script", "style", "base", "noscript", "template"})


def _reopen_body(root: etree._Element) -> None:
    """Move what libxml2 left after ``</body>`` into the body, where a browser puts it."""
    body = root.find("body")
    if body is None or (body.tail is None and body.getnext() is None):
        return
    if body.tail:
        last = body[-1] if len(body) else None
        if last is None:
            body.text = (body.text or "") + body.tail
        else:
            last.tail = (last.tail or "") + body.tail
    body.tail = None
    for sibling in list(body.itersiblings()):
        if sibling.tag != "head":
            body.append(sibling)


def _parse(data: bytes, huge: bool) -> tuple[etree._Element | None, str]:
    """Parse HTML; a document cut short by lxml's limits is parsed again without them."""
    from lxml import etree

    for lifted in (True,) if huge else (False, True):
        parser = etree.HTMLParser(
            encoding="utf-8", remove_comments=True, remove_pis=True, huge_tree=lifted
        )
        try:
            root = etree.fromstring(data, parser)
        except etree.LxmlError as exc:
            return None, f"unparseable HTML: {exc}"
        limits = [e.message for e in parser.error_log if e.type_name == "ERR_RESOURCE_LIMIT"]
        if not limits:
            return root, ""
    # The text past the limit is missing: counting the rest would look like a removal.
    return None, f"not readable: {limits[0].split(',')[0].strip()}"


def _text_of(element: etree._Element) -> str:
    from lxml import etree

    return etree.tostring(element, method="text", encoding="unicode", with_tail=False)


def _normalise(text: str, newline: str, *, ascii_is_clean: bool = False) -> str:
    """Invisible characters removed, NFKC, whitespace collapsed, lines stripped, empty lines gone.

    Lines are separated by ``newline``; all other whitespace, "\\n" included, collapses. Invisible
    characters, controls and whitespace but the space are all unprintable, and ASCII is NFKC:
    quick tests spare the usual page the slow scans. ``ascii_is_clean``: the text holds no ASCII
    controls but tab, newline and carriage return.
    """
    text = text.replace("\n", " ").replace("\t", " ").replace("\r", " ").replace("\xa0", " ")
    lines = text.split(newline)
    unusual = [line for line in lines if not line.isascii()] if ascii_is_clean else lines
    if not all(map(str.isprintable, unusual)):
        text = " ".join(text.split())  # shorter first: NFKC is slow
        text = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))
        lines = [" ".join(line.split()) for line in text.split(newline)]
    elif not all(unicodedata.is_normalized("NFKC", line) for line in unusual):
        lines = unicodedata.normalize("NFKC", text).split(newline)  # may make spaces: "¨"
    lines = [" ".join(line.split()) if "  " in line else line for line in lines]
    return "\n".join(filter(None, map(str.strip, lines)))
