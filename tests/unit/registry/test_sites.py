"""The site catalog: Wikimedia's naming, catalog files, and the registry refusing unknown sites."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitlab.errors import ConfigError
from splitlab.registry.sites import SiteCatalog, wikimedia_domain
from splitlab.registry.store import Registry

from .conftest import FakeClock


@pytest.mark.parametrize(("site", "domain"), [
    ("enwiki", "en.wikipedia.org"), ("frwiktionary", "fr.wiktionary.org"),
    ("dewikivoyage", "de.wikivoyage.org"), ("itwikisource", "it.wikisource.org"),
    ("zh_min_nanwiki", "zh-min-nan.wikipedia.org"), ("simplewiki", "simple.wikipedia.org"),
    ("commonswiki", "commons.wikimedia.org"), ("metawiki", "meta.wikimedia.org"),
    ("wikidatawiki", "www.wikidata.org"), ("mediawikiwiki", "www.mediawiki.org"),
    ("specieswiki", "species.wikimedia.org"), ("wikifunctionswiki", "www.wikifunctions.org"),
    ("sourceswiki", "wikisource.org"), ("be_x_oldwiki", "be-tarask.wikipedia.org"),
    ("test2wiki", "test2.wikipedia.org"),
])
def test_wikimedia_naming(site: str, domain: str) -> None:
    assert wikimedia_domain(site) == domain


@pytest.mark.parametrize("site", ["wiki", "EnWiki", "en-wiki", "foo", "2wiki", "enwiki.org", ""])
def test_names_outside_the_naming_have_no_domain(site: str) -> None:
    assert wikimedia_domain(site) is None


def test_builtin_is_open_and_files_are_closed(tmp_path: Path) -> None:
    builtin = SiteCatalog.builtin()
    assert builtin.domains["commonswiki"] == "commons.wikimedia.org"
    assert builtin.domain("frwiktionary") == "fr.wiktionary.org"  # not listed, but named well
    path = tmp_path / "all.dblist"
    path.write_text("# Wikimedia-style list\nenwiki\n\nwiki.example  WWW.Example.org  # ours\n")
    catalog = SiteCatalog.load(path)
    assert dict(catalog.domains) == {"enwiki": "en.wikipedia.org",
                                     "wiki.example": "www.example.org"}
    assert catalog.domain("frwiki") is None


def test_json_catalog(tmp_path: Path) -> None:
    path = tmp_path / "sites.json"
    path.write_text('{"enwiki": null, "shop": "shop.example.com"}')
    assert dict(SiteCatalog.load(path).domains) == {"enwiki": "en.wikipedia.org",
                                                    "shop": "shop.example.com"}


@pytest.mark.parametrize(("name", "text", "message"), [
    ("a.json", "[1]", "must be a JSON object"),
    ("a.json", "{", "malformed JSON"),
    ("a.json", "{}", "lists no site"),
    ("a.json", '{"shop": "Shop Example"}', "not a domain name"),
    ("a.json", '{"a": "x.org", "b": "x.org"}', "given to both 'a' and 'b'"),
    ("a.dblist", "shop\n", "does not follow Wikimedia's naming"),
    ("a.dblist", "enwiki en.wikipedia.org extra\n", "one site per line"),
    ("a.dblist", "enwiki\nenwiki\n", "one site per line"),
])
def test_bad_catalogs_are_refused(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        SiteCatalog.load(path)


def test_missing_catalog_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the site catalog"):
        SiteCatalog.load(tmp_path / "absent.dblist")


def edge_row(name: str, rate: object, unit: str = "edge-unique") -> dict[str, object]:
    return {"name": name, "groups": ["control", "test"], "sample_rate": rate,
            "user_identifier_type": unit, "start": "2026-11-01T00:00:00Z",
            "end": "2026-12-01T00:00:00Z"}


def test_registry_refuses_edge_rows_naming_unknown_sites(tmp_path: Path) -> None:
    sites = SiteCatalog.build({"enwiki": None, "dewiki": None})
    registry = Registry.open(None, tmp_path, clock=FakeClock(), sites=sites)
    with pytest.raises(ConfigError, match="'frwiki' is not in the catalog") as refused:
        registry.create("experiment", edge_row("edge-unknown-site", {"default": 0.1,
                                                                     "1": ["frwiki"]}), "t")
    assert refused.value.field == "sample_rate"
    assert registry.records("experiment") == []
    # mw-user experiments never reach the edge: any site name is theirs to use
    registry.create("experiment", edge_row("logged-in-any-site", {"default": 0, "1": ["x"]},
                                           "mw-user"), "t")
    created = registry.create("experiment", edge_row("edge-known-site", {"default": 0.1,
                                                                         "1": ["enwiki"]}), "t")
    with pytest.raises(ConfigError, match="'frwiki'"):
        registry.update("experiment", "edge-known-site",
                        {"sample_rate": {"default": 0.1, "1": ["frwiki"]}}, created.etag, "t")
    # a catalog that later drops a site does not stop the experiment from being ended
    shrunk = Registry(registry.engine, registry.tables, registry.clock,
                      SiteCatalog.build({"dewiki": None}))
    assert shrunk.end("experiment", "edge-known-site", None, "t").revision == 2
    registry.close()
