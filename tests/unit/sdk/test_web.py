"""Page decoration and the anonymous-id cookie, without a framework."""

from __future__ import annotations

from splitlab.sdk.web import WebOptions, anonymous_id_from, cookie_header, decorate_html, is_html

from .sdk_helpers import make, row
from .web_helpers import read_page

ROWS = [row("Sticky Header Test", "edge-unique")]


def manager():  # type: ignore[no-untyped-def]
    client, _, _ = make(ROWS)
    return client.manager(anonymous_id="C" * 20)


def test_pages_without_a_body_tag_are_left_alone() -> None:
    assert decorate_html(b"<p>fragment</p>", "text/html", manager(), WebOptions()) is None


def test_class_tokens_are_lower_cased_and_existing_classes_kept() -> None:
    body = b'<html><BODY class="a b" id=x>text</BODY></html>'
    decorated = decorate_html(body, "text/html; charset=utf-8", manager(),
                              WebOptions(class_prefix="site"))
    assert decorated is not None
    page = read_page(decorated.decode())
    assert page.config is not None
    group = page.config["assigned"]["Sticky Header Test"]
    assert page.body_classes == ["a", "b", "site-experiment-sticky-header-test",
                                 f"site-experiment-sticky-header-test-{group}"]


def test_only_ascii_compatible_charsets_are_decorated() -> None:
    for charset in ("utf-16", "iso-2022-jp", "no-such-charset"):
        page = "<body>日本</body>".encode("utf-16" if charset != "iso-2022-jp" else charset)
        assert decorate_html(page, f"text/html; charset={charset}", manager(),
                             WebOptions(class_prefix="x")) is None
    latin = decorate_html("<body>é</body>".encode("latin-1"), "text/html; charset=ISO-8859-1",
                          manager(), WebOptions(class_prefix="x"))
    assert latin is not None and latin.decode("latin-1").endswith("é</body>")


def test_script_block_cannot_be_closed_by_data() -> None:
    client, _, _ = make([row("evil</script>name", "edge-unique")])
    decorated = decorate_html(b"<body></body>", "text/html",
                              client.manager(anonymous_id="D" * 20), WebOptions(class_prefix="x"))
    assert decorated is not None
    assert decorated.count(b"</script>") == 1
    assert read_page(decorated.decode()).config is not None


def test_cookie_helpers() -> None:
    value = "E" * 20
    assert anonymous_id_from(f"other=1; splitlab_anon={value}", "splitlab_anon") == value
    assert anonymous_id_from("splitlab_anon=../../etc", "splitlab_anon") is None
    assert anonymous_id_from(None, "splitlab_anon") is None
    header = cookie_header(WebOptions(cookie_max_age=60), value, secure=True)
    assert header == f"splitlab_anon={value}; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
    assert is_html("text/html; charset=utf-8") and not is_html("application/json")
    assert not is_html(None)


def test_cached_body_classes_equal_the_cores() -> None:
    from splitlab.core.decoration import body_classes

    client, _, _ = make([row("Sticky Header Test", "edge-unique"),
                         row("other.exp_name-1", "session")])
    manager = client.manager(anonymous_id="F" * 20, session_id="s" * 20)
    result = manager.enrollment_result()
    for prefix in ("xlab", "My Site"):
        for _ in range(2):  # cold and cached
            assert manager.body_classes(result, prefix) == " ".join(body_classes(result, prefix))
