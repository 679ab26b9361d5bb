"""OAI-PMH 2.0 repository over the catalogue: the six verbs, `oai_dc` and `mods`, sets per series.

Harvesters (library catalogues, BASE, institutional repositories) poll with `from` to learn what
changed. Each item's datestamp is the episode's last change; episodes that are unpublished
(drafts, scheduled) and episodes deleted for good (`tombstones/`) are answered as deleted
records, persistently, so a harvester drops what it holds.

Resumption tokens are stateless: the list's arguments and the last (datestamp, id) sent, signed
with the site's secret and valid for `TOKEN_TTL`. Lists are in (datestamp, id) order, so a
change while a harvest is under way moves an item to the end, where the harvest still meets it,
and never shifts the items of the pages still to come.

Protocol: https://www.openarchives.org/OAI/openarchivesprotocol.html
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from archive.catalog import CatalogView
from archive.config import Settings
from archive.dublin_core import MODS, MODS_SCHEMA, OAI_DC, OAI_DC_SCHEMA, XSI, mods, oai_dc
from archive.models import Episode
from archive.records import PublicRecord, public_record, repository_host, whole_seconds

OAI = "http://www.openarchives.org/OAI/2.0/"
OAI_SCHEMA = "http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd"
OAI_IDENTIFIER = "http://www.openarchives.org/OAI/2.0/oai-identifier"
PAGE_SIZE = 100  # records or headers per response
TOKEN_TTL = timedelta(hours=24)
GRANULARITY = "YYYY-MM-DDThh:mm:ssZ"
LIST_ARGUMENTS = ({"metadataPrefix"}, {"from", "until", "set"})
VERBS: dict[str, tuple[set[str], set[str]]] = {
    "Identify": (set(), set()),
    "ListMetadataFormats": (set(), {"identifier"}),
    "ListSets": (set(), set()),
    "GetRecord": ({"identifier", "metadataPrefix"}, set()),
    "ListIdentifiers": LIST_ARGUMENTS,
    "ListRecords": LIST_ARGUMENTS,
}
TOKEN_VERBS = {"ListIdentifiers", "ListRecords", "ListSets"}
# The protocol's elements unprefixed (xmlns="…/OAI/2.0/"), as harvesters are used to seeing
# them. ElementTree's `default_namespace` cannot serialise unprefixed attributes, so the URI
# is mapped to the empty prefix instead: it concerns elements of this namespace only.
ET.register_namespace("", OAI)
# What XML 1.0 cannot carry at all (ElementTree writes it as is): echoed arguments lose it.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_DOMAIN = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*(\.[a-zA-Z][a-zA-Z0-9-]*)+")


@dataclass(frozen=True)
class Format:
    prefix: str
    schema: str
    namespace: str
    build: Callable[[PublicRecord], ET.Element]


FORMATS = {
    "oai_dc": Format("oai_dc", OAI_DC_SCHEMA, OAI_DC, oai_dc),
    "mods": Format("mods", MODS_SCHEMA, MODS, mods),
}


@dataclass(frozen=True)
class Item:
    """One record as a harvester sees it: live (with its episode) or deleted."""

    id: str
    datestamp: datetime
    series: str  # '' for a deleted episode whose series is no longer known
    episode: Episode | None  # None: deleted

    @property
    def key(self) -> tuple[str, str]:
        return (stamp(self.datestamp), self.id)


class OAIError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def stamp(moment: datetime) -> str:
    return whole_seconds(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Records:
    """Every record of a snapshot, in list order and by episode id (built once per snapshot)."""

    items: list[Item]
    by_id: dict[str, Item]

    @classmethod
    def of(cls, view: CatalogView, deleted: dict[str, datetime | None]) -> Records:
        items = items_of(view, deleted)
        return cls(items, {item.id: item for item in items})


def items_of(view: CatalogView, deleted: dict[str, datetime | None]) -> list[Item]:
    """Every record in (datestamp, id) order: published episodes, unpublished ones as
    deleted, and deletions (`tombstones/`) the catalogue no longer names."""
    published = {e.id for e in view.published}
    found: list[Item] = []
    for episode in view.data.episodes.values():
        live = episode.id in published
        found.append(Item(episode.id, whole_seconds(episode.updated_at), episode.series,
                          episode if live else None))
    for episode_id, when in deleted.items():
        if episode_id not in view.data.episodes:
            found.append(Item(episode_id, whole_seconds(when or view.updated_at), "", None))
    return sorted(found, key=lambda item: item.key)


class Repository:
    """Answers one OAI-PMH request from a catalogue snapshot and its list of deletions."""

    def __init__(self, settings: Settings, view: CatalogView, records: Records,
                 now: datetime | None = None) -> None:
        self.settings = settings
        self.view = view
        self.records = records
        self.items = records.items
        self.now = whole_seconds(now or datetime.now(UTC))
        self.host = repository_host(settings)
        self.base_url = f"{settings.base_url.rstrip('/')}/oai"
        self.tokens = URLSafeTimedSerializer(settings.secret_key or "archive", salt="oai-pmh")

    # -- the request ------------------------------------------------------------------------

    def respond(self, pairs: Sequence[tuple[str, str]]) -> bytes:
        root = ET.Element(f"{{{OAI}}}OAI-PMH", {f"{{{XSI}}}schemaLocation": f"{OAI} {OAI_SCHEMA}"})
        _text(root, "responseDate", stamp(self.now))
        request = _text(root, "request", self.base_url)
        try:
            verb, arguments = self._check(pairs)
            for name, value in arguments.items():
                request.set(name, _NOT_XML.sub("\ufffd", value))
            request.set("verb", verb)
            getattr(self, f"_{verb}")(root, arguments)
        except OAIError as error:
            if error.code in ("badVerb", "badArgument"):
                request.attrib.clear()  # the spec: echo no arguments of an illegal request
            for child in list(root)[2:]:
                root.remove(child)
            _text(root, "error", error.message).set("code", error.code)
        return ET.tostring(root, encoding="utf-8", xml_declaration=True)

    def _check(self, pairs: Sequence[tuple[str, str]]) -> tuple[str, dict[str, str]]:
        names = [name for name, _ in pairs]
        verbs = [value for name, value in pairs if name == "verb"]
        if len(verbs) != 1 or verbs[0] not in VERBS:
            raise OAIError("badVerb", "The verb is missing, repeated or not an OAI-PMH verb.")
        verb = verbs[0]
        arguments = {name: value for name, value in pairs if name != "verb"}
        if len(arguments) != len(names) - 1:
            raise OAIError("badArgument", "An argument is repeated.")
        required, optional = VERBS[verb]
        if "resumptionToken" in arguments:
            if verb not in TOKEN_VERBS:
                raise OAIError("badArgument", f"{verb} takes no resumptionToken.")
            if len(arguments) != 1:
                raise OAIError("badArgument", "resumptionToken is an exclusive argument.")
            return verb, arguments
        unknown = set(arguments) - required - optional
        if unknown:
            raise OAIError("badArgument", f"{verb} does not take {', '.join(sorted(unknown))}.")
        missing = required - set(arguments)
        if missing:
            raise OAIError("badArgument", f"{verb} needs {', '.join(sorted(missing))}.")
        return verb, arguments

    # -- the verbs --------------------------------------------------------------------------

    def _Identify(self, root: ET.Element, arguments: dict[str, str]) -> None:
        identify = _text(root, "Identify")
        _text(identify, "repositoryName", self.settings.site_title)
        _text(identify, "baseURL", self.base_url)
        _text(identify, "protocolVersion", "2.0")
        _text(identify, "adminEmail", self.settings.owner_email)
        earliest = self.items[0].datestamp if self.items else self.view.updated_at
        _text(identify, "earliestDatestamp", stamp(min(earliest, self.view.updated_at)))
        _text(identify, "deletedRecord", "persistent")
        _text(identify, "granularity", GRANULARITY)
        if not _DOMAIN.fullmatch(self.host):
            return  # an oai-identifier needs a domain name (not localhost or an address)
        description = _text(identify, "description")
        ident = ET.SubElement(description, f"{{{OAI_IDENTIFIER}}}oai-identifier", {
            f"{{{XSI}}}schemaLocation":
                f"{OAI_IDENTIFIER} http://www.openarchives.org/OAI/2.0/oai-identifier.xsd"})
        sample = f"oai:{self.host}:0123abcd4567"
        for name, value in (("scheme", "oai"), ("repositoryIdentifier", self.host),
                            ("delimiter", ":"), ("sampleIdentifier", sample)):
            ET.SubElement(ident, f"{{{OAI_IDENTIFIER}}}{name}").text = value

    def _ListMetadataFormats(self, root: ET.Element, arguments: dict[str, str]) -> None:
        if "identifier" in arguments:
            self._find(arguments["identifier"])
        formats = _text(root, "ListMetadataFormats")
        for fmt in FORMATS.values():
            element = _text(formats, "metadataFormat")
            _text(element, "metadataPrefix", fmt.prefix)
            _text(element, "schema", fmt.schema)
            _text(element, "metadataNamespace", fmt.namespace)

    def _ListSets(self, root: ET.Element, arguments: dict[str, str]) -> None:
        if "resumptionToken" in arguments:
            raise OAIError("badResumptionToken", "This repository gives no tokens for sets.")
        sets = _text(root, "ListSets")
        for series in self.view.all_series:
            element = _text(sets, "set")
            _text(element, "setSpec", series.slug)
            _text(element, "setName", series.title)

    def _GetRecord(self, root: ET.Element, arguments: dict[str, str]) -> None:
        fmt = self._format(arguments["metadataPrefix"])
        item = self._find(arguments["identifier"])
        self._record(_text(root, "GetRecord"), item, fmt)

    def _ListIdentifiers(self, root: ET.Element, arguments: dict[str, str]) -> None:
        self._list(root, "ListIdentifiers", arguments, with_metadata=False)

    def _ListRecords(self, root: ET.Element, arguments: dict[str, str]) -> None:
        self._list(root, "ListRecords", arguments, with_metadata=True)

    # -- lists ------------------------------------------------------------------------------

    def _list(self, root: ET.Element, verb: str, arguments: dict[str, str],
              with_metadata: bool) -> None:
        if "resumptionToken" in arguments:
            query = self._read_token(arguments["resumptionToken"])
        else:
            query = {"m": arguments["metadataPrefix"], "s": arguments.get("set", ""),
                     "f": arguments.get("from", ""), "u": arguments.get("until", ""),
                     "a": None}
        fmt = self._format(query["m"])
        start, end = _range(query["f"], query["u"])
        # A series that is gone may still have deleted records to report.
        if query["s"] and query["s"] not in self.view.data.series \
                and not any(item.series == query["s"] for item in self.items):
            raise OAIError("noRecordsMatch", "There is no such set.")
        matching = [item for item in self.items
                    if (not query["s"] or item.series == query["s"])
                    and (start is None or item.datestamp >= start)
                    and (end is None or item.datestamp <= end)]
        after = tuple(query["a"]) if query["a"] else None
        cursor = 0 if after is None else sum(1 for item in matching if item.key <= after)
        page = matching[cursor:cursor + PAGE_SIZE]
        if not page and after is None:
            raise OAIError("noRecordsMatch", "No records match these arguments.")
        container = _text(root, verb)
        for item in page:
            if with_metadata:
                self._record(container, item, fmt)
            else:
                self._header(container, item)
        if after is None and len(matching) <= PAGE_SIZE:
            return
        token = _text(container, "resumptionToken")
        token.set("completeListSize", str(len(matching)))
        token.set("cursor", str(cursor))
        if cursor + len(page) < len(matching):
            token.text = self.tokens.dumps({**query, "a": list(page[-1].key)})
            token.set("expirationDate", stamp(self.now + TOKEN_TTL))

    def _read_token(self, token: str) -> dict[str, Any]:
        try:
            query = self.tokens.loads(token, max_age=TOKEN_TTL.total_seconds())
        except SignatureExpired:
            raise OAIError("badResumptionToken", "The resumption token has expired.") from None
        except BadSignature:
            raise OAIError("badResumptionToken", "The resumption token is not valid.") from None
        if not isinstance(query, dict) or set(query) != {"m", "s", "f", "u", "a"}:
            raise OAIError("badResumptionToken", "The resumption token is not valid.")
        return query

    # -- records ----------------------------------------------------------------------------

    def _format(self, prefix: str) -> Format:
        try:
            return FORMATS[prefix]
        except KeyError:
            raise OAIError("cannotDisseminateFormat",
                           f"No format {prefix!r}; use oai_dc or mods.") from None

    def _find(self, identifier: str) -> Item:
        prefix = f"oai:{self.host}:"
        episode_id = identifier[len(prefix):] if identifier.startswith(prefix) else ""
        item = self.records.by_id.get(episode_id)
        if item is not None:
            return item
        raise OAIError("idDoesNotExist", "There is no such record in this repository.")

    def _header(self, parent: ET.Element, item: Item) -> None:
        header = _text(parent, "header")
        if item.episode is None:
            header.set("status", "deleted")
        _text(header, "identifier", f"oai:{self.host}:{item.id}")
        _text(header, "datestamp", stamp(item.datestamp))
        if item.series:
            _text(header, "setSpec", item.series)

    def _record(self, parent: ET.Element, item: Item, fmt: Format) -> None:
        record = _text(parent, "record")
        self._header(record, item)
        if item.episode is not None:
            series = self.view.data.series.get(item.episode.series)
            public = public_record(item.episode, series, self.settings)
            _text(record, "metadata").append(fmt.build(public))


def _text(parent: ET.Element, name: str, text: str = "") -> ET.Element:
    element = ET.SubElement(parent, f"{{{OAI}}}{name}")
    if text:
        element.text = text
    return element


def parse_stamp(value: str, *, end: bool) -> tuple[datetime, bool]:
    """A `from`/`until` value at day or second granularity; (moment, is_day)."""
    try:
        if len(value) == 10:
            day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
            return (day + timedelta(days=1, seconds=-1) if end else day), True
        if len(value) == 20:
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC), False
    except ValueError:
        pass
    raise OAIError("badArgument", f"{value!r} is not a date of the form YYYY-MM-DD or "
                   "YYYY-MM-DDThh:mm:ssZ.")


def _range(start: str, end: str) -> tuple[datetime | None, datetime | None]:
    first = parse_stamp(start, end=False) if start else None
    last = parse_stamp(end, end=True) if end else None
    if first and last:
        if first[1] != last[1]:
            raise OAIError("badArgument", "from and until must have the same granularity.")
        if first[0] > last[0]:
            raise OAIError("badArgument", "from is later than until.")
    return (first[0] if first else None, last[0] if last else None)
