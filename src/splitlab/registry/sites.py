"""The site catalog: which database (``enwiki``) is served at which domain (``en.wikipedia.org``).

Experiment rows name sites by database name (Test Kitchen's ``sample_rate`` keys); Wikimedia's CDN
edge knows domains. The catalog is the bridge, and it also says which sites an ``edge-unique``
experiment's ``default`` rate covers: its listed sites.

- A catalog **file** (``SPLITLAB_SITE_CATALOG``, ``splitlab serve --site-catalog``) is closed: its
  sites are the only known ones. Two forms: a JSON object ``{"enwiki": "en.wikipedia.org", ...}``
  (a ``null`` domain means "by the naming rule"), or a text file with one database name per line,
  optionally followed by its domain (``#`` starts a comment) — Wikimedia's ``all.dblist`` is one.
- The **built-in** catalog lists a small starting set (``data/sites/default.dblist``) and is open:
  any other name that follows Wikimedia's naming (:func:`wikimedia_domain`) is known too.

Names outside the catalog are refused when an edge-unique experiment is saved (:meth:`check`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from splitlab.core.model import SampleRate
from splitlab.errors import ConfigError

DOMAIN = re.compile(r"[a-z0-9][-_.a-z0-9]{0,254}")
"""A domain as the edge schema takes it: lower case (wmfuniq's ``domains`` pattern)."""

FAMILIES = {
    "wiki": "wikipedia.org", "wiktionary": "wiktionary.org", "wikibooks": "wikibooks.org",
    "wikinews": "wikinews.org", "wikiquote": "wikiquote.org", "wikisource": "wikisource.org",
    "wikiversity": "wikiversity.org", "wikivoyage": "wikivoyage.org",
    "wikimedia": "wikimedia.org",
}
"""Database name suffix → domain of the project family: ``<lang><suffix>`` is served at
``<lang>.<domain>`` (``_`` in the language code becomes ``-``: ``zh_min_nanwiki``)."""

SPECIAL = {
    "commonswiki": "commons.wikimedia.org", "metawiki": "meta.wikimedia.org",
    "specieswiki": "species.wikimedia.org", "incubatorwiki": "incubator.wikimedia.org",
    "foundationwiki": "foundation.wikimedia.org", "outreachwiki": "outreach.wikimedia.org",
    "loginwiki": "login.wikimedia.org", "testcommonswiki": "test-commons.wikimedia.org",
    "wikidatawiki": "www.wikidata.org", "testwikidatawiki": "test.wikidata.org",
    "mediawikiwiki": "www.mediawiki.org", "wikifunctionswiki": "www.wikifunctions.org",
    "sourceswiki": "wikisource.org", "be_x_oldwiki": "be-tarask.wikipedia.org",
}
"""Wikis whose domain the family rule gets wrong: the shared wikis under wikimedia.org, the
projects with a domain of their own (Wikidata, MediaWiki.org, Wikifunctions, the multilingual
Wikisource) and the one Wikipedia renamed since its database was created (``be_x_old``)."""

_LANGUAGE = re.compile(r"[a-z][a-z0-9_]*")
BUILTIN = "default.dblist"


def wikimedia_domain(site: str) -> str | None:
    """The domain Wikimedia serves database ``site`` at (``enwiki`` → ``en.wikipedia.org``,
    ``frwiktionary`` → ``fr.wiktionary.org``, ``commonswiki`` → ``commons.wikimedia.org``), or
    ``None`` when the name does not follow the naming."""
    if site in SPECIAL:
        return SPECIAL[site]
    for suffix, domain in FAMILIES.items():
        language = site.removesuffix(suffix)
        if language != site and _LANGUAGE.fullmatch(language):
            return f"{language.replace('_', '-')}.{domain}"
    return None


def _domain(site: str, given: object, where: str) -> str:
    if given is None:
        derived = wikimedia_domain(site)
        if derived is None:
            raise ConfigError(where, f"site {site!r} has no domain and does not follow "
                                     "Wikimedia's naming (<lang>wiki, <lang>wiktionary, ...)")
        return derived
    if not isinstance(given, str) or not DOMAIN.fullmatch(given.lower()):
        raise ConfigError(where, f"site {site!r}: {given!r} is not a domain name")
    return given.lower()


@dataclass(frozen=True, slots=True)
class SiteCatalog:
    """Listed sites (database name → lower-case domain), and whether names outside the list
    that follow Wikimedia's naming are known too (``open``)."""

    domains: Mapping[str, str] = field(default_factory=dict)
    open: bool = False
    source: str = "catalog"

    @classmethod
    def build(cls, entries: Mapping[str, object], *, open: bool = False,
              source: str = "catalog") -> SiteCatalog:
        """A catalog from ``site → domain`` (``None``: by the naming rule). Raises
        :class:`ConfigError` for a bad name or domain, or a domain given to two sites."""
        domains: dict[str, str] = {}
        owners: dict[str, str] = {}
        for site, given in entries.items():
            if not isinstance(site, str) or not site or site != site.strip():
                raise ConfigError(source, f"{site!r} is not a site (database) name")
            domain = _domain(site, given, source)
            if domain in owners:
                raise ConfigError(source, f"domain {domain!r} is given to both "
                                          f"{owners[domain]!r} and {site!r}")
            owners[domain] = site
            domains[site] = domain
        return cls(domains, open, source)

    @classmethod
    def builtin(cls) -> SiteCatalog:
        """The built-in catalog: the starting set of ``data/sites/default.dblist``, open to
        every name that follows Wikimedia's naming."""
        text = files("splitlab").joinpath("data", "sites", BUILTIN).read_text("utf-8")
        return cls.build(_dblist(text, BUILTIN), open=True, source="built-in site catalog")

    @classmethod
    def load(cls, path: Path | None) -> SiteCatalog:
        """The catalog in ``path`` (closed), or the built-in one when ``path`` is ``None``."""
        if path is None:
            return cls.builtin()
        where = str(path)
        try:
            text = path.read_text("utf-8")
        except OSError as error:
            raise ConfigError(where, f"cannot read the site catalog: {error.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(where, "the site catalog is not UTF-8 text") from None
        if path.suffix == ".json":
            try:
                entries: Any = json.loads(text)
            except json.JSONDecodeError as error:
                raise ConfigError(where, f"malformed JSON: {error}") from None
            if not isinstance(entries, dict):
                raise ConfigError(where, "must be a JSON object: {database name: domain}")
        else:
            entries = _dblist(text, where)
        if not entries:
            raise ConfigError(where, "the site catalog lists no site")
        return cls.build(entries, source=where)

    def domain(self, site: str) -> str | None:
        """The domain of ``site``, or ``None`` when the catalog does not know it."""
        found = self.domains.get(site)
        if found is None and self.open:
            found = wikimedia_domain(site)
        return found

    def check(self, row: Mapping[str, Any]) -> None:
        """Refuse (:class:`ConfigError` on ``sample_rate``, or ``traffic_split`` for ``sl-v2``)
        an ``edge-unique`` row that names a site the catalog does not know: the edge could not
        be told about it."""
        if row.get("user_identifier_type") != "edge-unique":
            return
        split = row.get("traffic_split")
        field, sites = (("traffic_split", [s for s in split if s != "default"])
                        if isinstance(split, Mapping)
                        else ("sample_rate", list(SampleRate.parse(row["sample_rate"]).by_site)))
        unknown = sorted(s for s in sites if self.domain(s) is None)
        if unknown:
            raise ConfigError(field, f"site {unknown[0]!r} is not in the {self.source}, "
                                     "so the edge cannot be given its domain; add it to "
                                     "the catalog (SPLITLAB_SITE_CATALOG) or fix the name")


def _dblist(text: str, where: str) -> dict[str, str | None]:
    """``name [domain]`` per line; ``#`` comments and blank lines ignored."""
    entries: dict[str, str | None] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.partition("#")[0].split()
        if not words:
            continue
        if len(words) > 2 or words[0] in entries:
            raise ConfigError(f"{where}:{number}", "expected one site per line: name [domain]")
        entries[words[0]] = words[1] if len(words) == 2 else None
    return entries
