"""What rendering a message's markdown would cost, estimated before markdown-it runs (see render_markdown)."""

from __future__ import annotations

import math
import re
from functools import lru_cache

# What rendering may cost. markdown-it-py is quadratic or worse on some inputs: measured on 4,000-char
# messages on the project's slower 2-core machine (bench.machine calibration 579 ms; the fast one of
# docs/BENCHMARKS.md is 73 ms), where an ordinary markup-dense message (a list with emphasis, code and a
# link per line) takes 15-19 ms and prose 0.2-0.3 ms: "![" * 2000 676 ms, "[" * 4000 418 ms, "[[" 287 ms,
# "[a][" 198-444 ms, "[" * 2000 + "]" * 2000 161 ms, 50 paragraphs of 78 "[" 146 ms, "![a](" repeated
# 58 ms, "[](" 47 ms, 100 ">" then 1,950 lines 1,650 ms (a quote's depth costs on every line of its
# paragraph), a header of 64 cells then 1,870 one-letter rows 1,940 ms (a table fills every row up to
# the header's width), "*a" 30-49 ms, one-letter lines 52 ms, a Python fence 74-87 ms; all grow about
# linearly from 4,000 to 16,000 chars. markdown_cost() estimates that time before markdown-it runs, from
# counts and regex scans costing 0.2-1.6 ms (4 ms at 20,000 chars): a weight per feature below (about its
# us on that machine), fitted on 130 families (each metacharacter alone, with text, with spaces, per
# line; the shapes above; tables, lists, fences, quotes, links, reference definitions, autolinks,
# entities) and checked on 3,150 random mixes of 80 markdown fragments at 4,000 chars, 600 at 8,000 and
# 400 at 16,000: no input that stays markdown cost more than its estimate +3.6 ms (1.31x). Text over its
# render_budget is shown as text: the shapes above then take 0.1-1.5 ms, and what stays markdown took at
# most 22 ms at 4,000 chars (~3 ms on the fast machine), 30 ms at 8,000, 72 ms at 16,000. So a page of
# 50 messages of the default 4,000-char limit renders in at most ~1.3 s there, however they are written.
MARKDOWN_MAX_CHARS = 20_000  # longer bodies (CHATAPP_MAX_MESSAGE_CHARS allows 100,000; AI replies) are text
RENDER_BUDGET = 25_000  # estimated us per message; an ordinary 4,000-char list is ~16,000, prose ~1,000
RENDER_BUDGET_PER_CHAR = 6  # ...or per char, if more: long AI replies (an ordinary one is 3.6 per char)
_CHAR_COST = 0.2  # escaping and sanitising
_LINE_COST = 40  # block rules tried on every line
_METACHAR_COSTS = {c: 8 for c in "\n!#$%&+-:<=>@[\\]^{}"} | {"*": 24, "_": 24, "~": 16, "`": 12, '"': 1.5}
_LINK_COST = 60  # per "](": normalising and validating the URL
_AUTOLINK_COST = 150
_INDENT_COST = 4  # per column of a line's indentation (nested lists)
_LIST_ITEM_COST = 30
_QUOTED_LINE_COST = 12  # per line of a paragraph per level of the quotes around it
_LABEL_SCAN_COST = 4  # per token a "[" passes on its way to its "]" (or to the end of its paragraph)
_DESTINATION_SCAN_COST = 0.5  # per character a "](" passes looking for its ")"
_TABLE_CELL_COST = 30
_CODE_LINE_COST = 3  # a line inside fenced code: only escaped
_MAX_NESTING = 100  # markdown-it's maxNesting (js-default)

_TEXT = re.compile(r"[^\n!#$%&*+\-:<=>@\[\\\]^_`{}~]+")  # markdown-it's inline tokens start elsewhere
_ESCAPE = re.compile(r"\\[\s\S]")
_BRACKET = re.compile(r"[\[\]]")
_FENCE_OPENER = re.compile(r"^(?:(`{3,})[^`\n]*|(~{3,})[^\n]*)$", re.M)  # at column 0: never inside anything
BLANK_LINES = re.compile(r"\n(?:[ \t]*\n)+")  # between paragraphs (also text_html's)
_AUTOLINK = re.compile(r"<(?:[A-Za-z][A-Za-z0-9+.\-]{1,31}:[^<>\x00-\x20]*|[^<>\x00-\x20@]+@[^<>\x00-\x20]+)>")
_INDENT = re.compile(r"^[ \t]+", re.M)
_LIST_MARKER = re.compile(r"(?:^|(?<=[ \t>]))(?:[-+*]|[0-9]{1,9}[.)])(?=[ \t\n]|$)", re.M)
_CONTAINER_PREFIX = re.compile(r"^[> \t\-+*.)0-9]+", re.M)
_URL_END = re.compile(r"[\x00-\x20\x7f]+")  # where a link destination ends


def normalized(text: str) -> str:
    """Line ends as markdown-it reads them."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _markdown_part(text: str) -> str:
    """The text markdown-it parses: all but the inside of top-level fenced code (only escaped, ~2 us a line).
    Only fences opened at column 0 are skipped, a subset of what markdown-it sees as fences."""
    parts, pos = [], 0
    while (opener := _FENCE_OPENER.search(text, pos)) is not None:
        fence = opener.group(1) or opener.group(2)
        parts.append(text[pos : opener.end()])  # the info string is unescaped: counted
        closer = re.compile(rf"^ {{0,3}}{re.escape(fence)}{re.escape(fence[0])}*[ \t]*$", re.M)
        found = closer.search(text, opener.end() + 1)
        pos = len(text) if found is None else found.end()
    parts.append(text[pos:])
    return "\n\n".join(parts)


def _count_cost(prose: str) -> float:
    """What markdown-it spends on characters, lines, tokens and links, from their counts."""
    return (
        _CHAR_COST * len(prose)
        + _LINE_COST * (prose.count("\n") + 1)
        + sum(cost * prose.count(char) for char, cost in _METACHAR_COSTS.items())
        + _LINK_COST * prose.count("](")
    )


def _pattern_cost(prose: str) -> float:
    """What markdown-it spends on autolinks, list items and indentation (nested lists)."""
    indent = "".join(_INDENT.findall(prose))
    return (
        _AUTOLINK_COST * len(_AUTOLINK.findall(prose))
        + _INDENT_COST * (len(indent) + 3 * indent.count("\t"))
        + _LIST_ITEM_COST * len(_LIST_MARKER.findall(prose))
    )


def _label_scan_tokens(block: str) -> int:
    """How many tokens markdown-it passes looking for the "]" of each "[" (to the block's end if none)."""
    tokens = _TEXT.sub("", _ESCAPE.sub("\\\\", block))  # a character per token: an escape is one
    opened: list[int] = []
    scanned = 0
    for bracket in _BRACKET.finditer(tokens):
        if bracket.group() == "[":
            opened.append(bracket.start())
        elif opened:
            scanned += bracket.start() - opened.pop()
    return scanned + sum(len(tokens) - start for start in opened)


def _destination_scan_chars(block: str) -> int:
    """How many characters markdown-it passes looking for the ")" of each "](": it stops at a space, or
    after 32 nested "(" (so after the 33rd "](" that follows on the same run)."""
    runs = (run for run in _URL_END.split(block) if "](" in run)
    return sum(min(run.count("]("), 33) * len(run) for run in runs)


def _table_cells(block: str) -> int:
    """At most how many cells a table in the block has: every row is filled up to the header's width
    (a row's cells are between its pipes, less an empty one before a leading or after a trailing pipe)."""
    lines = [line.strip(" \t") for line in block.split("\n")]
    width = max(line.count("|") + 1 - line.startswith("|") - (len(line) > 1 and line.endswith("|")) for line in lines)
    return width * len(lines)


def _quote_depth(block: str) -> int:
    """How deep the block's quotes nest (every line of a paragraph is handled at each level)."""
    return min(_MAX_NESTING, max((p.count(">") for p in _CONTAINER_PREFIX.findall(block)), default=0))


def _block_cost(block: str) -> float:
    """What the constructs of one block (between blank lines) cost beyond their counts."""
    cost = 0.0
    if "[" in block:
        cost += _LABEL_SCAN_COST * _label_scan_tokens(block) + _DESTINATION_SCAN_COST * _destination_scan_chars(block)
    if "|" in block:
        cost += _TABLE_CELL_COST * _table_cells(block)
    if ">" in block:
        cost += _QUOTED_LINE_COST * _quote_depth(block) * (block.count("\n") + 1)
    return cost


def render_budget(text: str) -> float:
    """What rendering text may cost (in markdown_cost's us)."""
    return max(RENDER_BUDGET, RENDER_BUDGET_PER_CHAR * len(text))


@lru_cache(maxsize=4096)  # asked for twice on the live path (may it render on the loop? then rendering)
def markdown_cost(text: str) -> float:
    """About how many us markdown-it would take on text, or infinity when it is too long to try; it stops
    counting once past the text's render_budget."""
    if len(text) > MARKDOWN_MAX_CHARS:
        return math.inf
    budget, text = render_budget(text), normalized(text)
    prose = _markdown_part(text)
    cost = _count_cost(prose) + _CODE_LINE_COST * max(0, text.count("\n") - prose.count("\n"))
    if cost <= budget:
        cost += _pattern_cost(prose)
    for block in BLANK_LINES.split(prose) if cost <= budget else ():
        cost += _block_cost(block)
        if cost > budget:
            break
    return cost
