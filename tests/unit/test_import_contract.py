"""The drawing of the imports (docs/architecture.md, "Architecture: which package may use
which"), checked.

Every `import` and `from ... import` in socialcare/ and workers/ (at module level or inside a
function: both are a dependency) is read with `ast`, and each edge between two parts of the
package must go downwards in LAYERS. Edges that go sideways or upwards today are listed in DEBTS
with the reason; the test fails when a new one appears, and when a listed one is gone (so the
list only ever shrinks).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

# Top to bottom: a part may import the parts after it in its own layer's tuple, and any part of a
# lower layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    # `python -m socialcare`.
    ("__main__",),
    # What people start: the command line (socialcare/cli/, the main job `socialcare run` too).
    ("cli",),
    # Training and evaluation of the models (socialcare/training/): the runtime never imports
    # it; the command line's `model train` and `model eval` do, inside the command.
    ("training",),
    ("web",),
    # The Celery app and its tasks (the web app and the command line enqueue through them).
    ("workers",),
    # Every table registered in one place (what Alembic and the entry points import).
    ("models",),
    # One flow per step of the pipeline (a Celery task calls exactly one) and first-run seeding
    # (flows/seed.py).
    ("flows",),
    # The domain, each package over the ones after it in this tuple. The route step
    # (routing/route.py and its batch locks) opens and changes cases; the rest of routing/ (rules,
    # teams, SLAs) is what cases read.
    (
        "ops",
        "surge",
        "metrics",
        "routing.route",
        "routing.locks",
        "cases",
        "scoring",
        "routing",
        # Agents, teams, sessions and tokens (routing reads teams); auth: passwords and roles.
        "people",
        "auth",
        "ingest",
        "sources",
        "posts",
    ),
    ("migrations", "leases", "db", "config", "logs", "display", "ids", "errors"),
)

MIGRATION_ENV = "socialcare/migrations/env.py"

# (importing module, imported module): sideways or upwards today, and why.
DEBTS: dict[tuple[str, str], str] = {
    ("socialcare.config", "socialcare.metrics.recipients"): (
        "DIGEST_RECIPIENTS is parsed by the digest recipients' own parser"
    ),
    ("socialcare.people.service", "socialcare.cases.events"): (
        "people changes are recorded in the case event log's audit trail"
    ),
    ("socialcare.people.logins", "socialcare.cases.events"): (
        "logins and lockouts are recorded in the case event log's audit trail"
    ),
    ("socialcare.routing.service", "socialcare.cases.events"): (
        "team changes are recorded in the case event log's audit trail"
    ),
    ("socialcare.posts.service", "socialcare.scoring.urgency"): (
        "engagement totals are computed at ingestion by the urgency formula's counter"
    ),
    ("socialcare.posts.service", "socialcare.sources.base"): (
        "ingestion takes the sources' IncomingPost and AccountRef"
    ),
    ("socialcare.metrics.surge_figures", "socialcare.surge.models"): (
        "the digests and reports summarise the surge incidents of their period"
    ),
}


def _part(module: str) -> str | None:
    """The part of the drawing a module belongs to: socialcare.cases.work -> cases."""
    parts = module.split(".")
    if parts[0] == "workers":
        return "workers"
    if parts[0] != "socialcare":
        return None
    if len(parts) == 1:
        return None  # the package's __init__ holds nothing but its docstring
    module_part = ".".join(parts[1:3])
    if any(module_part in names for names in LAYERS):
        return module_part  # a module with a place of its own in the drawing
    return parts[1]


def _rank(part: str) -> tuple[int, int]:
    for layer, names in enumerate(LAYERS):
        if part in names:
            return layer, names.index(part)
    raise AssertionError(f"{part} is in no layer of the drawing: add it to LAYERS")


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from socialcare import flows` names a module, not a symbol.
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in ("socialcare", "workers")}


def _known(name: str, modules: set[str]) -> str | None:
    """The longest prefix of an imported name that is a module of the project."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def _edges() -> set[tuple[str, str]]:
    files = [
        p
        for root in ("socialcare", "workers")
        for p in (REPO / root).rglob("*.py")
        # Alembic's environment and revisions import whatever they migrate; the migrations
        # package itself (running them from code) is drawn as a foundation.
        if "versions" not in p.parts and p.relative_to(REPO).as_posix() != MIGRATION_ENV
    ]
    modules = {_module_name(p) for p in files}
    edges = set()
    for path in files:
        source = _module_name(path)
        for name in _imports(path):
            target = _known(name, modules)
            if target and target != source:
                edges.add((source, target))
    return edges


def _upwards(edge: tuple[str, str]) -> bool:
    source, target = (_part(m) for m in edge)
    if source is None or target is None or source == target:
        return False
    return _rank(target) <= _rank(source)


def test_every_part_of_the_package_has_a_place_in_the_drawing():
    parts = {_part(source) for source, _ in _edges()} - {None}
    for part in parts:
        assert part is not None
        _rank(part)


def test_imports_go_down_the_drawing_except_the_listed_debts():
    upwards = {edge for edge in _edges() if _upwards(edge)}
    new = sorted(upwards - set(DEBTS))
    assert not new, "imports against the drawing (docs/architecture.md): " + ", ".join(
        f"{a} -> {b}" for a, b in new
    )


def test_each_listed_debt_still_exists():
    edges = _edges()
    paid = sorted(edge for edge in DEBTS if edge not in edges or not _upwards(edge))
    assert not paid, f"no longer imported or no longer against the drawing: {paid}"


def test_the_checker_sees_an_upward_import(tmp_path):
    """The reader finds function-level imports too (they are how cycles usually hide)."""
    path = tmp_path / "probe.py"
    path.write_text("def f():\n    from socialcare.web.app import create_app\n")
    assert "socialcare.web.app" in _imports(path)
    assert _upwards(("socialcare.cases.work", "socialcare.web.app"))
    assert _upwards(("socialcare.db", "socialcare.posts.models"))
    assert not _upwards(("socialcare.web.app", "socialcare.cases.work"))


def _module_level_imports(path: Path) -> set[str]:
    """What a file imports when it is imported (its functions' imports left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return found


def test_training_is_reached_only_from_inside_the_model_commands():
    """No worker, flow, page or service imports socialcare.training, and the command line
    imports it only inside a command, so no process loads the training code to start."""
    importers = {src for src, dst in _edges() if _part(dst) == "training"}
    outside = sorted(m for m in importers if _part(m) not in ("training", "cli"))
    assert not outside, f"socialcare.training imported by {outside}"
    cli = sorted((REPO / "socialcare" / "cli").rglob("*.py"))
    assert cli, "the command line's files"
    at_import = sorted(
        path.name
        for path in cli
        if any(name.startswith("socialcare.training") for name in _module_level_imports(path))
    )
    assert not at_import, f"socialcare.training imported at module level by {at_import}"
    assert ("socialcare.cli", "socialcare.training.sentiment") in _edges()
