"""What counts as English in text a user reads: words of Latin letters, except what a user types or
reads as a name (commands, options, file names, formats, ids, units)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

COMMANDS = [
    "run", "failures", "purge", "audit", "roles", "show", "eval", "export",
    "rescore", "calibrate", "import-events", "report", "users", "serve",
    "users add", "users disable", "users reset", "users list",
]  # fmt: skip
# The program, its commands, formats, CSV column names, the [metrics] section of callqa.toml and
# date patterns; units and the recogniser's name as the handbook and a supervisor write them.
ALLOWED = {"callqa", "CSV", "JSON", "Lines", "YAML", "TOML", "call_id", "rule_id", "passed", "score"}
ALLOWED |= {"metrics", "YYYY", "MM", "DD"} | set(COMMANDS) | {"import", "events"}
ALLOWED |= {"add", "disable", "reset", "list", "agent", "supervisor", "manager"}  # typed: users …, --role
ALLOWED |= {"Dask", "Prefect"}  # the engines, by their names
ALLOWED |= {"t"}  # t 分布, as Chinese statistics texts write it
ALLOWED |= {"dB", "ms", "s", "Hz", "kHz", "MP3", "WAV", "FLAC", "PCM", "XLSX", "HTML", "ASR", "CRM", "ID"}


def english_words(text: str, allowed: set[str] = frozenset()) -> set[str]:
    text = re.sub(r"(?<![\w])--?[\w-]+", " ", text)  # options
    text = re.sub(r"[\w./-]*[./][\w./-]*", " ", text)  # file names and paths
    text = re.sub(r"\b[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+\b", " ", text)  # rule ids: HOLD-ASK, FATAL-ABUSE
    text = re.sub(r"\b[A-Z]{1,4}\d[\w-]*", " ", text)  # call and agent ids: HX20261120-0001, A01
    text = re.sub(r"(?<![\w-])\d[\w-]*", " ", text)  # ids from file names: 1009_20261120-150000
    text = re.sub(r"\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b", " ", text)  # scorecard and file hashes
    text = re.sub(r"\b[A-F] 类", " ", text)  # the handbook's call types (F 类（骚扰）)
    text = re.sub(r"(?<=\|)-+(?=\|)", " ", text)  # Markdown table rules
    return {w for w in re.findall(r"[A-Za-z_]+", text) if w not in ALLOWED | set(allowed)}


class _VisibleText(HTMLParser):
    """The text a reader sees on a page, and the tooltips and labels they can hover or hear."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1
        for name, value in attrs:
            if name in ("title", "alt", "aria-label", "placeholder") and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    return "\n".join(parser.parts)
