"""Message markdown -> safe HTML, once per message on the server (not per viewer)."""

from __future__ import annotations

import html
import logging
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import find_lexer_class_by_name

from chatapp.live.markdown_cost import BLANK_LINES, markdown_cost, normalized, render_budget
from chatapp.live.markdown_cost import MARKDOWN_MAX_CHARS as MARKDOWN_MAX_CHARS  # re-exported (tests)

log = logging.getLogger(__name__)

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


# Highlighting: Pygments' cost per character of its worst case among 7 alphabets of code-like and random
# text, measured as in markdown_cost.py (x1.2). Only these languages are highlighted: across all 605 lexers the worst
# measured was 390 us per char (pug on random punctuation), and a lexer's first use in a process costs
# 6-280 ms (importing and compiling its rules; 6-105 ms for these, 0.9 s for all of them), so fences
# naming 50 different rare languages cost seconds after every restart.
# Highlighting takes what is left of a message's render_budget; code beyond it is shown unhighlighted.
HIGHLIGHT_COSTS = {
    **dict.fromkeys(["python", "py", "ruby", "rb", "go"], 13),
    **dict.fromkeys(["javascript", "js", "jsx", "rust", "rs", "swift"], 14),
    **dict.fromkeys(["typescript", "ts", "tsx", "c", "cpp", "c++"], 17),
    **dict.fromkeys(["java", "kotlin", "csharp", "cs"], 11),
    **dict.fromkeys(["bash", "sh", "shell", "console", "sql", "yaml", "yml", "css"], 7),
    **dict.fromkeys(["json", "html", "xml", "toml", "ini", "diff", "php"], 4),
}


@lru_cache(maxsize=64)
def _lexer_class(lang: str):
    """The lexer for an allowed language (looking it up by alias takes ~150 us)."""
    return find_lexer_class_by_name(lang)


def _fence(renderer, tokens, idx, options, env) -> str:
    """A fenced code block, highlighted if its language is known and the message's budget allows."""
    token = tokens[idx]
    lang = token.info.split(maxsplit=1)[0].lower() if token.info.strip() else ""
    cost = len(token.content) * HIGHLIGHT_COSTS.get(lang, 0)
    if lang not in HIGHLIGHT_COSTS or cost > env.get("highlight_budget", 0):
        return renderer.fence(tokens, idx, options, env)  # escaped, unhighlighted
    env["highlight_budget"] -= cost
    return f'<pre class="codehilite"><code>{highlight(token.content, _lexer_class(lang)(), _FORMATTER)}</code></pre>\n'


_MD = MarkdownIt("js-default", {"breaks": True})
_MD.add_render_rule("fence", _fence)


def _image_as_link(renderer, tokens, idx, options, env) -> str:
    """Images are not loaded (a remote image would tell its server who reads the room): their alt
    text becomes a link to them instead (the URL is then checked by the sanitiser like any link)."""
    token = tokens[idx]
    alt = escapeHtml(renderer.renderInlineAsText(token.children or [], options, env)) or "image"
    return f'<a href="{escapeHtml(token.attrGet("src") or "")}">{alt}</a>'


_MD.add_render_rule("image", _image_as_link)


def text_html(text: str) -> str:
    """A message shown as written: escaped, with its paragraphs and line breaks."""
    paragraphs = BLANK_LINES.split(normalized(text).strip("\n"))
    return "\n".join("<p>" + html.escape(p).replace("\n", "<br>\n") + "</p>" for p in paragraphs)


def _sanitised(rendered: str) -> str:
    """Only allowed tags, attributes and URL schemes; links open in a new tab without a referrer."""
    return nh3.clean(
        rendered,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    ).strip()


@lru_cache(maxsize=4096)
def render_markdown(text: str) -> str:
    """Render user markdown to HTML that is safe to insert: raw HTML is escaped by the parser,
    then an allow-list sanitiser (nh3) drops anything else, including javascript: links.

    Text that would cost more than its render_budget, or that fails to render, is shown as escaped text.
    """
    try:
        cost, budget = markdown_cost(text), render_budget(text)
        if cost > budget:
            return text_html(text)
        return _sanitised(_MD.render(text, {"highlight_budget": budget - cost}))
    except Exception as error:  # one message must never make a room unreadable
        log.warning("a message of %d chars could not be rendered (%s): shown as text", len(text), type(error).__name__)
        return text_html(text)


@lru_cache(maxsize=1)
def code_css() -> str:
    """Pygments styles for code blocks, light and dark."""
    return HtmlFormatter(nobackground=True).get_style_defs(".codehilite") + HtmlFormatter(
        nobackground=True, style="github-dark"
    ).get_style_defs(".body--dark .codehilite")


PREVIEW_SOURCE_CHARS = 1000  # a preview shows 120 chars: it reads at most the first blocks up to this
PREVIEW_MAX_COST = 10_000  # markdown_cost's us: the lobby renders on the loop, 50 rooms in at most ~0.5 s


@lru_cache(maxsize=4096)
def plain_text(text: str) -> str:
    """The words of a markdown message without its markup, on one line (for previews); the beginning of
    a costly one as written."""
    if len(text) > PREVIEW_SOURCE_CHARS:
        head = text[:PREVIEW_SOURCE_CHARS]
        text = head[: head.rfind("\n\n")] if "\n\n" in head else head  # whole blocks when it can
    if markdown_cost(text) > PREVIEW_MAX_COST:
        return " ".join(text.split())
    return " ".join(html.unescape(nh3.clean(render_markdown(text), tags=set())).split())
