"""The terminal of every command: results (the streamed text) on stdout, everything else on stderr through one rich
console that logging, spinners, progress bars and error lines share, so lines never run together."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.logging import RichHandler

if TYPE_CHECKING:
    from spatialvlm_cli.layout.files import LayoutFile

# Control characters other than newline and tab: a model (a random-weight preset, say) can emit escape sequences
# that would move the cursor or clear the screen. The files keep the raw text; the terminal shows U+FFFD instead.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class Terminal:
    """out: stdout for results; err: stderr for progress, warnings and errors. `stream` writes generated text
    piece by piece; `end_line` ends it with a newline, and a log record or an error line first closes a streamed
    line that is still open (so a warning or `error: interrupted` never lands on it)."""

    def __init__(self) -> None:
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self._streaming = False  # text was streamed and not yet ended
        self._line_open = False  # ... and its last character is not a newline

    def stream(self, piece: str) -> None:
        """Write generated text with no markup or highlighting, control characters shown as U+FFFD."""
        if piece:
            self.out.print(_CONTROL.sub("\ufffd", piece), end="", markup=False, highlight=False)
            self._streaming = True
            self._line_open = not piece.endswith("\n")

    def end_line(self) -> None:
        """End the streamed text with a newline (once)."""
        if self._streaming:
            self.out.print()
            self._streaming = self._line_open = False

    def close_open_line(self) -> None:
        """Before anything else is printed: end the streamed text if its last line is open."""
        if self._line_open:
            self.end_line()


terminal = Terminal()


class TerminalHandler(RichHandler):
    """Log records on the shared stderr console, after the streamed text's open line is closed."""

    def emit(self, record: logging.LogRecord) -> None:
        terminal.close_open_line()
        super().emit(record)


def read_layout(path: Path, err: Console) -> LayoutFile:
    """The layout file at `path` (`layout.files.read_layout_file`), its skipped lines and an empty layout said on
    `err`."""
    from spatialvlm_cli.layout.files import read_layout_file

    read = read_layout_file(path)
    for issue in read.issues:
        err.print(f"[yellow]{path}:{issue.line_no}: skipped[/] ({issue.reason})")
    if not len(read.layout):
        err.print(f"[yellow]{path} has no entity to draw[/]")
    return read
