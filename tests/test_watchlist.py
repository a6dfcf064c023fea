"""Watchlist reading, validation messages and in-place editing.

Good and broken inputs are files under tests/fixtures/watchlists/; each broken file has exactly one
expected message, asserted whole, line number included.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from pagewatch import watchlist
from pagewatch.errors import WatchlistError
from pagewatch.models import PhraseGroup, Watch
from pagewatch.watchlist import (
    add_watch,
    format_interval,
    load_watchlist,
    load_watchlists,
    parse_interval,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "watchlists"
GOOD = FIXTURES / "good"
BROKEN = FIXTURES / "broken"

UYGHUR4 = PhraseGroup("uyghur", ("Uyghur", "Uighur", "Uygur", "维吾尔"))
ATTRIBUTES = PhraseGroup(
    "attributes", ("re:ethnic(ity)? attributes?", "re:\\bface (attribute|analysis)\\b")
)


def watch(fixture: str, line: int, url: str, every: int, *groups: PhraseGroup, **kw: str) -> Watch:
    path = GOOD / fixture
    return Watch(
        url=url,
        list=path.stem,
        every=every,
        groups=groups,
        selector=kw.get("selector"),
        path=str(path),
        line=line,
    )


GOOD_CASES: dict[str, list[Watch]] = {
    "minimal.toml": [
        watch(
            "minimal.toml",
            4,
            "https://vendor.example/docs/face-attributes",
            6 * 3600,
            PhraseGroup("uyghur", ("Uyghur", "Uighur")),
        ),
    ],
    "full.toml": [
        watch(
            "full.toml",
            9,
            "https://vendor.example/docs/face-attributes",
            5400,
            UYGHUR4,
            PhraseGroup("ethnicity", ("ethnicity",)),
            ATTRIBUTES,
            selector="main",
        ),
        watch(
            "full.toml",
            14,
            "http://cloud.example:8080/api/guide?lang=en#attributes",
            90,
            UYGHUR4,
            PhraseGroup("ethnicity", ("ethnic minority",)),  # replaces the list's group in place
            ATTRIBUTES,
            PhraseGroup("is-it-uyghur", ("Is it Uyghur",)),
        ),
        watch(
            "full.toml",
            19,
            "https://camera-vendor.example/products/alarm",
            7200,
            UYGHUR4,
            PhraseGroup("ethnicity", ("ethnicity",)),
            ATTRIBUTES,
            PhraseGroup("alarm", ("Uighur alarm", "Uyghur alarm")),
            PhraseGroup("维吾尔 警报", ("维吾尔人报警",)),
            selector="#content > .product p",
        ),
    ],
    "no-watches.toml": [],
    "inline-array.toml": [
        watch(
            "inline-array.toml",
            3,
            "https://vendor.example/a",
            6 * 3600,
            PhraseGroup("uyghur", ("Uyghur",)),
        ),
        watch(
            "inline-array.toml",
            4,
            "https://vendor.example/b",
            7 * 86400,
            PhraseGroup("uyghur", ("Uighur",)),
        ),
    ],
    "bom-crlf.toml": [
        watch(
            "bom-crlf.toml",
            5,
            "https://vendor.example/docs",
            1800,
            PhraseGroup("uyghur", ("Uyghur",)),
        ),
    ],
}

# (fixture, line, message): the whole of str(error) is f"{path}:{line}: {message}".
BROKEN_CASES = [
    (
        "toml-syntax.toml",
        6,
        "invalid TOML: expected '=' after a key in a key/value pair at column 5",
    ),
    ("toml-unclosed-array.toml", 3, "invalid TOML: invalid value at end of file"),
    ("toml-duplicate-key.toml", 6, "invalid TOML: cannot overwrite a value at column 33"),
    ("not-utf8.toml", 3, "not UTF-8 text (byte 0xe9); save it as UTF-8"),
    ("unknown-top-level-key.toml", 2, "unknown key 'interval' (expected every, phrases, watch)"),
    ("unknown-top-level-table.toml", 4, "unknown key 'phrase' (did you mean 'phrases'?)"),
    ("unknown-watch-key.toml", 9, "unknown key 'selecter' in [[watch]] (did you mean 'selector'?)"),
    (
        "url-bad-scheme.toml",
        5,
        "bad URL 'ftp://vendor.example/docs' (must start with http:// or https://)",
    ),
    (
        "url-relative.toml",
        5,
        "bad URL 'vendor.example/docs' (must start with http:// or https://)",
    ),
    ("url-no-host.toml", 5, "bad URL 'https:///docs/face-attributes' (no host)"),
    (
        "url-with-space.toml",
        5,
        "bad URL 'https://vendor.example/face attributes' (contains a space or control character)",
    ),
    ("url-not-string.toml", 5, "url must be a string, not ['https://vendor.example/a']"),
    ("url-duplicate.toml", 12, "duplicate URL 'https://vendor.example/docs' (first at line 5)"),
    ("watch-without-url.toml", 4, "watch has no url"),
    (
        "watch-not-array.toml",
        4,
        "'watch' must be an array of tables: write each one as [[watch]]",
    ),
    (
        "watch-without-groups.toml",
        6,
        "watch has no phrase groups: add a [phrases] table to the list"
        " or phrases = {...} to the watch",
    ),
    ("interval-bad-unit.toml", 1, "bad interval '6x' (use e.g. 30m, 6h, 1d)"),
    ("interval-float.toml", 1, "bad interval 1.5 (use e.g. 30m, 6h, 1d)"),
    ("interval-zero.toml", 6, "bad interval 0 (must be at least 1s)"),
    ("interval-zero-units.toml", 6, "bad interval '0h0m' (must be at least 1s)"),
    (
        "regex-bad.toml",
        4,
        "bad regex 're:(uyghur|uighur' in phrase group 'uyghur':"
        " missing ), unterminated subpattern at position 0",
    ),
    (
        "regex-matches-empty.toml",
        2,
        "regex 're:(uy)?' in phrase group 'uyghur' can match empty text",
    ),
    ("regex-zero-width.toml", 6, r"regex 're:\b' in phrase group 'boundary' can match empty text"),
    ("selector-bad.toml", 6, "bad selector 'main >' (Expected selector, got <EOF at 6>)"),
    (
        "selector-pseudo-element.toml",
        6,
        "bad selector 'p::text' (Pseudo-elements are not supported.)",
    ),
    ("group-empty.toml", 3, "phrase group 'ethnicity' is empty"),
    ("group-empty-name.toml", 2, "phrase group with an empty name"),
    ("group-not-strings.toml", 2, "phrase group 'uyghur' must be a list of strings"),
    ("alias-empty.toml", 8, "empty alias in phrase group 'alarm'"),
    (
        "alias-invisible.toml",
        3,
        "empty alias in phrase group 'soft'",
    ),  # soft hyphen, zero-width space
    (
        "regex-numbered-reference.toml",
        2,
        r"regex 're:(uy|ui)ghur \1' in phrase group 'repeated' refers to a group by number;"
        " name it: (?P<x>...)(?P=x)",
    ),
    (
        "regex-group-name-clash.toml",
        5,
        "regex 're:(?P<name>uygur)' in phrase group 'uyghur' reuses the group name 'name'"
        " of another alias",
    ),
    # [[watch]] and url = ... in comments and strings above must not shift the line.
    (
        "decoy-headers.toml",
        18,
        "bad URL 'https://vendor.example/b c' (contains a space or control character)",
    ),
]


# Reading ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", sorted(GOOD_CASES), ids=lambda name: name.removesuffix(".toml"))
def test_good_watchlist_loads_to_expected_watches(fixture: str) -> None:
    assert load_watchlist(GOOD / fixture) == GOOD_CASES[fixture]


@pytest.mark.parametrize(
    ("fixture", "line", "message"),
    BROKEN_CASES,
    ids=[case[0].removesuffix(".toml") for case in BROKEN_CASES],
)
def test_broken_watchlist_names_file_and_line(fixture: str, line: int, message: str) -> None:
    path = BROKEN / fixture
    with pytest.raises(WatchlistError) as caught:
        load_watchlist(path)
    assert str(caught.value) == f"{path}:{line}: {message}"
    assert (caught.value.path, caught.value.line) == (path, line)


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.name for p in GOOD.glob("*.toml")) == sorted(GOOD_CASES)
    assert sorted(p.name for p in BROKEN.glob("*.toml")) == sorted(c[0] for c in BROKEN_CASES)


def test_load_watchlists_reads_every_file_sorted_by_name(tmp_path: Path) -> None:
    for name in ("minimal.toml", "full.toml", "no-watches.toml"):
        shutil.copy(GOOD / name, tmp_path / name)
    (tmp_path / ".#full.toml").write_text("editor lock file, not a watchlist")
    (tmp_path / "notes.txt").write_text("not a watchlist")

    watches = load_watchlists(tmp_path)

    assert [(w.list, w.line) for w in watches] == [
        ("full", 9),
        ("full", 14),
        ("full", 19),
        ("minimal", 4),
    ]
    assert watches[0].path == str(tmp_path / "full.toml")


def test_load_watchlists_with_names_loads_only_those(tmp_path: Path) -> None:
    for name in ("minimal.toml", "full.toml"):
        shutil.copy(GOOD / name, tmp_path / name)
    assert {w.list for w in load_watchlists(tmp_path, names=["minimal"])} == {"minimal"}
    with pytest.raises(WatchlistError) as caught:
        load_watchlists(tmp_path, names=["minimal", "face-recognition"])
    assert str(caught.value) == "no watchlist named 'face-recognition'"


def test_load_watchlists_raises_the_first_broken_file(tmp_path: Path) -> None:
    shutil.copy(GOOD / "minimal.toml", tmp_path / "a.toml")
    shutil.copy(BROKEN / "url-no-host.toml", tmp_path / "b.toml")
    shutil.copy(BROKEN / "regex-bad.toml", tmp_path / "c.toml")
    with pytest.raises(WatchlistError) as caught:
        load_watchlists(tmp_path)
    assert (
        str(caught.value)
        == f"{tmp_path / 'b.toml'}:5: bad URL 'https:///docs/face-attributes' (no host)"
    )


def test_missing_file_is_a_watchlist_error(tmp_path: Path) -> None:
    with pytest.raises(WatchlistError) as caught:
        load_watchlist(tmp_path / "gone.toml")
    assert (
        str(caught.value)
        == f"{tmp_path / 'gone.toml'}: cannot read watchlist: No such file or directory"
    )


# Intervals ----------------------------------------------------------------------------------------

INTERVALS = [
    ("90s", 90),
    ("30m", 1800),
    ("6h", 21600),
    ("1d", 86400),
    ("2w", 1209600),
    ("1h30m", 5400),
    ("1H 30M", 5400),
    ("1d12h", 129600),
    (" 45m ", 2700),
    ("900", 900),
    (1, 1),
    (3600, 3600),
]


@pytest.mark.parametrize(("text", "seconds"), INTERVALS, ids=[repr(t) for t, _ in INTERVALS])
def test_parse_interval(text: str | int, seconds: int) -> None:
    assert parse_interval(text) == seconds


BAD_INTERVALS = [
    ("6x", "bad interval '6x' (use e.g. 30m, 6h, 1d)"),
    ("", "bad interval '' (use e.g. 30m, 6h, 1d)"),
    ("h", "bad interval 'h' (use e.g. 30m, 6h, 1d)"),
    ("1h30", "bad interval '1h30' (use e.g. 30m, 6h, 1d)"),
    ("30m1h", "bad interval '30m1h' (use e.g. 30m, 6h, 1d)"),
    ("1.5h", "bad interval '1.5h' (use e.g. 30m, 6h, 1d)"),
    ("-5m", "bad interval '-5m' (use e.g. 30m, 6h, 1d)"),
    ("0s", "bad interval '0s' (must be at least 1s)"),
    (0, "bad interval 0 (must be at least 1s)"),
    (-60, "bad interval -60 (must be at least 1s)"),
    ("366d", "bad interval '366d' (at most 365d)"),
]


@pytest.mark.parametrize(
    ("text", "message"), BAD_INTERVALS, ids=[repr(t) for t, _ in BAD_INTERVALS]
)
def test_parse_interval_refuses(text: str | int, message: str) -> None:
    with pytest.raises(WatchlistError) as caught:
        parse_interval(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1, "1s"), (90, "1m30s"), (3600, "1h"), (5400, "1h30m"), (86400, "1d"), (1209600, "2w")],
)
def test_format_interval_round_trips(seconds: int, text: str) -> None:
    assert format_interval(seconds) == text
    assert parse_interval(text) == seconds


# add_watch ----------------------------------------------------------------------------------------

URL = "https://cloud.example/docs/content-moderation/api-guide"


@pytest.fixture
def lists(tmp_path: Path) -> Path:
    """A watchlists folder holding a copy of the repository's face-recognition list."""
    folder = tmp_path / "watchlists"
    folder.mkdir()
    shutil.copy(ROOT / "watchlists" / "face-recognition.toml", folder)
    return folder


def test_add_appends_after_the_untouched_original(lists: Path) -> None:
    path = lists / "face-recognition.toml"
    original = path.read_bytes()

    returned = add_watch(
        lists,
        "face-recognition",
        "https://vendor.example/docs/new-page",
        phrases=["alarm=Uighur alarm, Uyghur alarm", "Is it Uyghur"],
        every="2h",
        selector="main .content",
    )

    assert returned == path
    data = path.read_bytes()
    assert data.startswith(original)
    assert data[len(original) :].decode() == (
        "\n"
        "[[watch]]\n"
        'url = "https://vendor.example/docs/new-page"\n'
        'selector = "main .content"\n'
        'every = "2h"\n'
        'phrases = {alarm = ["Uighur alarm", "Uyghur alarm"], is-it-uyghur = ["Is it Uyghur"]}\n'
    )
    added = load_watchlist(path)[-1]
    assert added == Watch(
        url="https://vendor.example/docs/new-page",
        list="face-recognition",
        every=7200,
        groups=(
            UYGHUR4,
            PhraseGroup("ethnicity", ("ethnic minority", "ethnicity")),
            PhraseGroup("alarm", ("Uighur alarm", "Uyghur alarm")),
            PhraseGroup("is-it-uyghur", ("Is it Uyghur",)),
        ),
        selector="main .content",
        path=str(path),
        line=original.count(b"\n") + 2,
    )


def test_add_without_phrases_uses_the_list_groups(lists: Path) -> None:
    path = lists / "face-recognition.toml"
    add_watch(lists, "face-recognition", "https://vendor.example/docs/other")
    added = load_watchlist(path)[-1]
    assert added.url == "https://vendor.example/docs/other"
    assert added.groups == (UYGHUR4, PhraseGroup("ethnicity", ("ethnic minority", "ethnicity")))
    assert added.every == 6 * 3600
    assert added.selector is None


def test_add_creates_a_new_list(tmp_path: Path) -> None:
    folder = tmp_path / "watchlists"
    path = add_watch(folder, "new-list", URL, phrases=["uyghur=Uyghur,Uighur,维吾尔"])

    assert path == folder / "new-list.toml"
    assert path.read_text(encoding="utf-8") == (
        "# new-list: pages pagewatch watches for the removal of flagged phrases.\n"
        "# The format is described in docs/watchlists.md.\n"
        "\n"
        'every = "6h"\n'
        "\n"
        "[[watch]]\n"
        f'url = "{URL}"\n'
        'phrases = {uyghur = ["Uyghur", "Uighur", "维吾尔"]}\n'
    )
    assert load_watchlist(path) == [
        Watch(
            url=URL,
            list="new-list",
            every=21600,
            groups=(PhraseGroup("uyghur", ("Uyghur", "Uighur", "维吾尔")),),
            path=str(path),
            line=6,
        )
    ]
    assert [p.name for p in folder.iterdir()] == ["new-list.toml"]  # no temp file left behind


@pytest.mark.parametrize(
    ("items", "groups"),
    [
        (["uyghur=Uyghur,Uighur"], [PhraseGroup("uyghur", ("Uyghur", "Uighur"))]),
        (["uyghur = Uyghur , Uighur "], [PhraseGroup("uyghur", ("Uyghur", "Uighur"))]),
        (["Is it Uyghur"], [PhraseGroup("is-it-uyghur", ("Is it Uyghur",))]),
        (["维吾尔=维吾尔,维族"], [PhraseGroup("维吾尔", ("维吾尔", "维族"))]),
        (["re:uy?gh?ur"], [PhraseGroup("uy-gh-ur", ("re:uy?gh?ur",))]),
        (["a=x", "a=y,x"], [PhraseGroup("a", ("x", "y"))]),  # items of one group merge
        (
            ["Uighur alarm", "uighur-alarm=Uyghur alarm"],
            [PhraseGroup("uighur-alarm", ("Uighur alarm", "Uyghur alarm"))],
        ),
    ],
    ids=["name-aliases", "spaces", "plain-alias", "cjk-name", "regex-alias", "merge", "slug-merge"],
)
def test_add_phrase_items(tmp_path: Path, items: list[str], groups: list[PhraseGroup]) -> None:
    path = add_watch(tmp_path, "l", URL, phrases=items)
    assert load_watchlist(path)[0].groups == tuple(groups)


def test_add_refuses_a_url_already_watched(lists: Path) -> None:
    path = lists / "face-recognition.toml"
    original = path.read_bytes()
    before = path.stat().st_mtime_ns

    with pytest.raises(WatchlistError) as caught:
        add_watch(lists, "face-recognition", URL, phrases=["x=X"])

    assert str(caught.value) == f"{path}:18: '{URL}' is already watched in face-recognition.toml"
    assert path.read_bytes() == original
    assert path.stat().st_mtime_ns == before


BAD_ADDS = [
    (
        {"url": "ftp://vendor.example/x"},
        "bad URL 'ftp://vendor.example/x' (must start with http:// or https://)",
    ),
    ({"url": "https://"}, "bad URL 'https://' (no host)"),
    ({"every": "6x"}, "bad interval '6x' (use e.g. 30m, 6h, 1d)"),
    ({"every": "0m"}, "bad interval '0m' (must be at least 1s)"),
    ({"selector": "main >"}, "bad selector 'main >' (Expected selector, got <EOF at 6>)"),
    (
        {"phrases": ["x=re:("]},
        "bad regex 're:(' in phrase group 'x': missing ), unterminated subpattern at position 0"
        " (from --phrase 'x=re:(')",
    ),
    (
        {"phrases": ["re:a*"]},
        "regex 're:a*' in phrase group 'a' can match empty text (from --phrase 're:a*')",
    ),
    (
        {"phrases": ["x=Uyghur,,Uighur"]},
        "empty alias in phrase group 'x' (from --phrase 'x=Uyghur,,Uighur')",
    ),
    (
        {"list_name": "../escape"},
        "bad list name '../escape' (use letters, digits, '.', '_' and '-'; not starting with '.')",
    ),
    (
        {"list_name": ".hidden"},
        "bad list name '.hidden' (use letters, digits, '.', '_' and '-'; not starting with '.')",
    ),
]


@pytest.mark.parametrize(
    ("change", "message"),
    BAD_ADDS,
    ids=[
        "scheme",
        "no-host",
        "interval",
        "interval-zero",
        "selector",
        "regex",
        "empty-regex",
        "empty-alias",
        "path-escape",
        "hidden-name",
    ],
)
def test_add_refuses_invalid_input_without_touching_the_file(
    lists: Path, change: dict[str, object], message: str
) -> None:
    path = lists / "face-recognition.toml"
    original = path.read_bytes()
    arguments: dict[str, object] = {
        "list_name": "face-recognition",
        "url": "https://vendor.example/new",
    }
    arguments.update(change)

    with pytest.raises(WatchlistError) as caught:
        add_watch(lists, **arguments)  # type: ignore[arg-type]

    assert str(caught.value) == message
    assert path.read_bytes() == original
    assert sorted(p.name for p in lists.iterdir()) == ["face-recognition.toml"]


def test_add_without_any_groups_asks_for_phrase(tmp_path: Path) -> None:
    with pytest.raises(WatchlistError) as caught:
        add_watch(tmp_path, "empty", URL)
    assert str(caught.value) == (
        "no phrases to watch for: pass --phrase (e.g. --phrase 'uyghur=Uyghur,Uighur'),"
        f" or add a [phrases] table to {tmp_path / 'empty.toml'}"
    )
    assert not (tmp_path / "empty.toml").exists()


def test_add_refuses_to_edit_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    shutil.copy(BROKEN / "regex-bad.toml", path)
    original = path.read_bytes()
    with pytest.raises(WatchlistError) as caught:
        add_watch(tmp_path, "broken", URL, phrases=["x=X"])
    assert str(caught.value).startswith(f"{path}:4: bad regex ")
    assert path.read_bytes() == original


def test_add_keeps_crlf_bom_and_a_missing_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "windows.toml"
    original = b'\xef\xbb\xbf[phrases]\r\nuyghur = ["Uyghur"]  # no newline at the end'
    path.write_bytes(original)

    add_watch(tmp_path, "windows", URL)

    assert path.read_bytes() == original + f'\r\n\r\n[[watch]]\r\nurl = "{URL}"\r\n'.encode()
    assert [w.line for w in load_watchlist(path)] == [4]


def test_add_to_a_list_written_with_an_inline_watch_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "inline.toml"
    shutil.copy(GOOD / "inline-array.toml", path)
    original = path.read_bytes()
    with pytest.raises(WatchlistError) as caught:
        add_watch(tmp_path, "inline", URL, phrases=["x=X"])
    assert str(caught.value).startswith(f"{path}: cannot append a [[watch]] table to this file: ")
    assert path.read_bytes() == original


def test_add_restores_the_file_when_it_does_not_read_back(
    lists: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = lists / "face-recognition.toml"
    original = path.read_bytes()

    def fail(path: Path) -> list[Watch]:
        assert path.read_bytes() != original  # called on the written file
        raise WatchlistError("simulated", path, 1)

    monkeypatch.setattr(watchlist, "load_watchlist", fail)
    with pytest.raises(WatchlistError, match="simulated"):
        add_watch(lists, "face-recognition", "https://vendor.example/new")
    assert path.read_bytes() == original


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_add_keeps_the_file_mode(lists: Path) -> None:
    path = lists / "face-recognition.toml"
    path.chmod(0o640)
    add_watch(lists, "face-recognition", "https://vendor.example/new")
    assert path.stat().st_mode & 0o777 == 0o640


# The repository's own watchlists and docs ---------------------------------------------------------


REPO_LISTS = sorted((ROOT / "watchlists").glob("*.toml"))


@pytest.mark.parametrize("path", REPO_LISTS, ids=[p.stem for p in REPO_LISTS])
def test_repository_watchlist_loads(path: Path) -> None:
    watches = load_watchlist(path)
    assert watches
    assert all(w.url.split("/")[2].endswith(".example") for w in watches)


def test_whatever_loads_can_be_matched() -> None:
    """The reader's checks cover the matcher's: a list that loads never fails at check time."""
    from pagewatch.match import compile_groups

    for path in [*GOOD.glob("*.toml"), *REPO_LISTS]:
        for loaded in load_watchlist(path):
            compile_groups(loaded.groups)


def test_repository_has_example_watchlists() -> None:
    assert [p.name for p in REPO_LISTS] == ["face-recognition.toml", "surveillance-marketing.toml"]


DOCS = (ROOT / "docs" / "watchlists.md").read_text(encoding="utf-8")
DOC_BLOCKS = re.findall(r"^```toml\n(.*?)^```", DOCS, re.MULTILINE | re.DOTALL)
DOC_ERRORS = re.findall(
    r"^```toml invalid\n(.*?)^```\s*^```text\n(.*?)\n^```", DOCS, re.MULTILINE | re.DOTALL
)


def _doc_file_name(block: str) -> str:
    named = re.match(r"# watchlists/([\w.-]+\.toml)\n", block)
    return named.group(1) if named else "example.toml"


@pytest.mark.parametrize("block", DOC_BLOCKS, ids=[f"block{i}" for i in range(len(DOC_BLOCKS))])
def test_docs_toml_block_loads(tmp_path: Path, block: str) -> None:
    path = tmp_path / _doc_file_name(block)
    path.write_text(block, encoding="utf-8")
    assert load_watchlist(path)


@pytest.mark.parametrize(
    ("block", "message"),
    DOC_ERRORS,
    ids=[_doc_file_name(b).removesuffix(".toml") for b, _ in DOC_ERRORS],
)
def test_docs_error_example_is_the_real_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path = Path("watchlists") / _doc_file_name(block)
    path.parent.mkdir()
    path.write_text(block, encoding="utf-8")
    with pytest.raises(WatchlistError) as caught:
        load_watchlist(path)
    assert str(caught.value) == message


def test_docs_have_examples() -> None:
    assert len(DOC_BLOCKS) >= 4
    assert len(DOC_ERRORS) >= 8


def test_docs_add_example_is_what_add_writes(tmp_path: Path) -> None:
    shown = next(b for b in DOC_BLOCKS if "https://cloud.example/docs/moderation" in b)
    add_watch(
        tmp_path,
        "face-recognition",
        "https://vendor.example/docs/face-attributes",
        ["uyghur=Uyghur"],
    )
    add_watch(
        tmp_path,
        "face-recognition",
        "https://cloud.example/docs/moderation",
        ["Is it Uyghur"],
        every="1h",
        selector="main",
    )
    path = add_watch(
        tmp_path,
        "face-recognition",
        "https://camera-vendor.example/alarm",
        ["alarm=Uighur alarm,Uyghur alarm", "re:minorit(y|ies) alert"],
    )
    assert path.read_text(encoding="utf-8").endswith("\n" + shown)


@pytest.mark.parametrize("kind", ["directory", "dangling-link"])
def test_a_toml_that_is_no_file_is_an_error_not_skipped(tmp_path: Path, kind: str) -> None:
    """`check` over a list that silently is not there would report "checked 0" and exit 0."""
    target = tmp_path / "vendors.toml"
    if kind == "directory":
        target.mkdir()
    else:
        target.symlink_to(tmp_path / "moved-away.toml")
    with pytest.raises(WatchlistError) as caught:
        load_watchlists(tmp_path)
    what = "a directory" if kind == "directory" else "a link to nothing"
    assert str(caught.value) == f"{target}: {what}, not a watchlist file"
