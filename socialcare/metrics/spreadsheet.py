"""Text cells a spreadsheet shows, never runs: every CSV socialcare writes passes its text
cells (team names, brand handles, topics...) through neutralise."""

from __future__ import annotations

# A spreadsheet runs a cell that starts with one of these as a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """A text cell a spreadsheet will show, never run: formula starts get a leading apostrophe."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell
