"""Reading runbooks as a user's tools would: headings, anchors, fenced code blocks, links."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from covet_otel.mixin.runbooks import RUNBOOKS_DIR, SECTIONS

_FENCE = re.compile(r"^( *)```([A-Za-z0-9_+-]*)\s*$")
_HEADING = re.compile(r"^(#{1,6}) +(.+?) *#* *$")
_HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language tag, text (indentation removed) and line number."""

    path: Path
    lang: str
    text: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"

    @property
    def changes_state(self) -> bool:
        """Blocks that change the server say so on their first line (``-- Changes state: ...``)."""
        first = self.text.lstrip().splitlines()[0] if self.text.strip() else ""
        return "changes state" in first.lower()


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"<[^>]+>", "", heading)
    text = re.sub(r"[`*_~]", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def outside_fences(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines that are not inside a fenced block."""
    lines: list[tuple[int, str]] = []
    in_fence = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            lines.append((number, line))
    return lines


def headings(text: str) -> list[tuple[int, str]]:
    """(level, title) of every heading outside code blocks."""
    found = []
    for _, line in outside_fences(text):
        match = _HEADING.match(line)
        if match:
            found.append((len(match.group(1)), match.group(2)))
    return found


def anchors(text: str) -> set[str]:
    """Every anchor a link can point at: heading slugs (GitHub numbering of duplicates) and ids."""
    result: set[str] = set()
    seen: dict[str, int] = {}
    for _, title in headings(text):
        base = slug(title)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    for _, line in outside_fences(text):
        result.update(_HTML_ANCHOR.findall(line))
    return result


def sections(text: str) -> dict[str, str]:
    """Body of each level-2 section by title (text up to the next level-2 heading)."""
    result: dict[str, str] = {}
    current: str | None = None
    body: list[str] = []
    in_fence = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match and len(match.group(1)) <= 2:
            if current is not None:
                result[current] = "\n".join(body)
            current = match.group(2) if len(match.group(1)) == 2 else None
            body = []
        elif current is not None:
            body.append(line)
    if current is not None:
        result[current] = "\n".join(body)
    return result


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lang = ""
    indent = 0
    start = 0
    body: list[str] = []
    in_fence = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = _FENCE.match(line)
        if match and not in_fence:
            in_fence, indent, lang, start, body = True, len(match.group(1)), match.group(2), number, []
        elif match and in_fence:
            found.append(Block(path, lang, "\n".join(body) + "\n", start))
            in_fence = False
        elif in_fence:
            body.append(line[indent:] if line[:indent].strip() == "" else line)
    return found


def links(text: str) -> list[tuple[int, str, str]]:
    """(line number, label, target) of every Markdown link outside code blocks."""
    found = []
    for number, line in outside_fences(text):
        found += [(number, label, target) for label, target in _LINK.findall(line)]
    return found


def commands(block: Block, program: str) -> list[list[str]]:
    """The argument lists of the lines of a shell/console block that run ``program``.

    A ``$ `` prompt and leading ``VAR=value`` assignments are dropped, backslash continuations are
    joined, and only the command before a pipe is kept (``redis-cli INFO memory | grep used``
    gives ``redis-cli INFO memory``)."""
    result = []
    joined = block.text.replace("\\\n", " ")
    for raw in joined.splitlines():
        line = raw.strip()
        if line.startswith("$ "):
            line = line[2:]
        if program not in line:
            continue
        words = shlex.split(line, comments=True)
        while words and _ENV_ASSIGNMENT.match(words[0]):
            words = words[1:]
        if not words or words[0] != program:
            continue
        for stop in ("|", ">", ">>", "&&", ";"):
            if stop in words:
                words = words[: words.index(stop)]
        result.append(words)
    return result


def runbook_files() -> list[Path]:
    return sorted(p for p in RUNBOOKS_DIR.glob("*.md") if p.name != "README.md")


__all__ = [
    "SECTIONS",
    "Block",
    "anchors",
    "blocks",
    "commands",
    "headings",
    "links",
    "outside_fences",
    "runbook_files",
    "sections",
    "slug",
]
