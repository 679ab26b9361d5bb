"""Text safe to put in a feed: XML-legal, size-limited, HTML limited to what apps render."""

from __future__ import annotations

import html
import re

import nh3

# Apple renders only these in show notes; everything else is stripped (content kept, tag dropped).
ALLOWED_TAGS = frozenset({"p", "ol", "ul", "li", "a"})
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Removed together with their content, not just unwrapped.
REMOVED_WITH_CONTENT = frozenset({"script", "style", "template", "noscript", "iframe", "object"})

# Everything XML 1.0 forbids (C0 controls except tab/newline/CR, surrogates, U+FFFE/U+FFFF).
_XML_ILLEGAL = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_HTML_ELEMENT = re.compile(
    r"<!--|</?(?:a|abbr|b|blockquote|body|br|center|code|div|em|embed|font|form|h[1-6]|head|hr"
    r"|html|i|iframe|img|input|li|link|meta|noscript|object|ol|p|pre|s|script|small|span"
    r"|strong|style|sub|sup|svg|table|td|template|th|tr|u|ul)(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)
_BLOCK_TAG = re.compile(r"<(?:p|ol|ul|li|div|br|h[1-6]|blockquote|table)\b", re.IGNORECASE)
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_TAG = re.compile(r"<[^>]*>")


def xml_safe(text: str) -> str:
    """Drop characters no XML parser accepts, whatever upstream validation let through."""
    return _XML_ILLEGAL.sub("", text)


def truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut to at most `max_bytes` of UTF-8 without splitting a character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", "ignore")


def looks_like_html(text: str) -> bool:
    return bool(_HTML_ELEMENT.search(text))


def _paragraphs(text: str, *, escape: bool) -> str:
    """Blank-line separated text becomes <p> paragraphs (the way editors type descriptions)."""
    parts = [" ".join(part.split()) for part in _BLANK_LINE.split(text.replace("\r\n", "\n"))]
    return "".join(f"<p>{html.escape(p, quote=False) if escape else p}</p>" for p in parts if p)


def sanitise_html(text: str) -> str:
    """Show notes as the small HTML subset podcast apps render; scripts go with their content."""
    text = xml_safe(text)
    if not looks_like_html(text):
        source = _paragraphs(text, escape=True)
    elif _BLOCK_TAG.search(text):
        source = text
    else:
        source = _paragraphs(text, escape=False)
    cleaned = nh3.clean(
        source,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(REMOVED_WITH_CONTENT),
        attributes={"a": {"href"}},
        url_schemes=set(ALLOWED_URL_SCHEMES),
        link_rel=None,
        strip_comments=True,
    )
    return xml_safe(cleaned).strip()


def html_to_text(fragment: str) -> str:
    """Plain text of sanitised HTML, for places that must not carry markup."""
    text = _TAG.sub(" ", fragment.replace("</p>", "\n\n").replace("</li>", "\n"))
    lines = (" ".join(line.split()) for line in html.unescape(text).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def limited_html(text: str, max_bytes: int) -> str:
    """Sanitised HTML that fits in `max_bytes`, cut in the source so no tag is left open."""
    cleaned = sanitise_html(text)
    budget = len(text)
    while len(cleaned.encode("utf-8")) > max_bytes and budget > 0:
        budget = min(budget - 1, int(budget * 0.9))
        cleaned = sanitise_html(_cut_source(text, budget))
    return cleaned


def _cut_source(text: str, length: int) -> str:
    """Shorten source text, preferring a word boundary, with an ellipsis to show the cut."""
    cut = text[:length]
    if " " in cut[-40:]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip() + "…"
