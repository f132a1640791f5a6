"""Message markdown -> safe HTML, once per message on the server (not per viewer)."""

from __future__ import annotations

import html
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_FORMATTER = HtmlFormatter(nowrap=True)
ALLOWED_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "del",
    "s",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "span",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "pre": {"class"},
    "span": {"class"},
    "th": {"align"},
    "td": {"align"},
    "ol": {"start"},
}
URL_SCHEMES = {"http", "https", "mailto"}


def _highlight(code: str, lang: str, _attrs: str) -> str:
    try:
        lexer = get_lexer_by_name(lang) if lang else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it escapes it as plain code
    return f'<pre class="codehilite"><code>{highlight(code, lexer, _FORMATTER)}</code></pre>'


_MD = MarkdownIt("js-default", {"highlight": _highlight, "breaks": True})


def _image_as_link(renderer, tokens, idx, options, env) -> str:
    """Images are not loaded (a remote image would tell its server who reads the room): their alt
    text becomes a link to them instead (the URL is then checked by the sanitiser like any link)."""
    token = tokens[idx]
    alt = escapeHtml(renderer.renderInlineAsText(token.children or [], options, env)) or "image"
    return f'<a href="{escapeHtml(token.attrGet("src") or "")}">{alt}</a>'


_MD.add_render_rule("image", _image_as_link)


@lru_cache(maxsize=4096)
def render_markdown(text: str) -> str:
    """Render user markdown to HTML that is safe to insert: raw HTML is escaped by the parser,
    then an allow-list sanitiser (nh3) drops anything else, including javascript: links."""
    html = _MD.render(text)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    ).strip()


@lru_cache(maxsize=1)
def code_css() -> str:
    """Pygments styles for code blocks, light and dark."""
    return HtmlFormatter(nobackground=True).get_style_defs(".codehilite") + HtmlFormatter(
        nobackground=True, style="github-dark"
    ).get_style_defs(".body--dark .codehilite")


def plain_text(text: str) -> str:
    """The words of a markdown message without its markup, on one line (for previews)."""
    words = html.unescape(nh3.clean(render_markdown(text), tags=set()))
    return " ".join(words.split())
