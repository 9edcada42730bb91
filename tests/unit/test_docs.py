"""The README's links and the configuration page agree with the code: a setting added without
its row, a row for a setting that is gone, or a link to a page that moved fails here."""

from __future__ import annotations

import re

from socialcare.config import Settings
from tests.conftest import REPO

CONFIGURATION = REPO / "docs" / "configuration.md"
_ROW = re.compile(r"^\| (`[A-Z][A-Z0-9_]*`(?:, `[A-Z][A-Z0-9_]*`)*) \|", re.M)
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _procfile_variables() -> set[str]:
    text = (REPO / "Procfile").read_text(encoding="utf-8")
    return set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text)) - {"PORT"}


def test_the_configuration_page_has_a_row_for_every_setting_and_no_other() -> None:
    cells = _ROW.findall(CONFIGURATION.read_text(encoding="utf-8"))
    rows = [name for cell in cells for name in re.findall(r"`([A-Z0-9_]+)`", cell)]
    assert len(rows) == len(set(rows)), "a variable with two rows"
    settings = {f.alias for f in Settings.model_fields.values() if f.alias}
    wanted = settings | _procfile_variables()
    assert set(rows) - {"PORT"} == wanted - {"PORT"}, (
        f"no row: {sorted(wanted - set(rows))}; not a setting: {sorted(set(rows) - wanted)}"
    )


def test_every_local_link_of_the_readme_and_the_docs_leads_to_a_file() -> None:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    assert len(pages) > 1
    for page in pages:
        for target in _LINK.findall(page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (page.parent / target).is_file(), f"{page.name} links to {target}"


def test_the_readme_first_page_stays_short() -> None:
    """What it is, the two commands, a screenshot and the links: a newcomer reads it in two
    minutes; the reference lives in docs/."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.split()) < 1200
    assert "docs/screenshots/queue.png" in text
    for command in ("scripts/install && .venv/bin/socialcare run", "scripts/test"):
        assert command in text
