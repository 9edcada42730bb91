"""socialcare/sources/ holds the platform adapters only: none of its modules touches the
database (the ingestion services that do live in socialcare/ingest/)."""

from __future__ import annotations

import ast

from tests.conftest import REPO

DATABASE = ("sqlalchemy", "socialcare.db", "socialcare.posts.models", "socialcare.ingest")


def _imported(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_source_module_imports_the_database():
    files = sorted((REPO / "socialcare" / "sources").rglob("*.py"))
    assert len(files) > 10
    touching = {
        path.name: sorted(n for n in _imported(path) if n.startswith(DATABASE)) for path in files
    }
    assert {name: found for name, found in touching.items() if found} == {}


def test_the_ingestion_services_import_the_database():
    """The check above reads real imports: the services moved out of sources/ do import it."""
    names = _imported(REPO / "socialcare" / "ingest" / "service.py")
    assert any(n.startswith(DATABASE) for n in names)
