"""Size limits: no file over MAX_FILE_LINES lines and no function over MAX_FUNCTION_LINES lines in
socialcare/ and workers/ (migrations excepted: each is a dated record, written once).

Today's offenders are listed in FILE_DEBTS and FUNCTION_DEBTS. The test fails on a new offender,
and on a listed one that is now within the limit (remove it from the list), so the lists only
ever shrink. A function's lines run from its first decorator to its last line, docstring
included; a nested function counts on its own and within the one around it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80
ROOTS = ("socialcare", "workers")

# Paths relative to the repository, with their size when listed.
FILE_DEBTS: dict[str, str] = {}
# "path:qualified name" (Class.method, outer.inner).
FUNCTION_DEBTS: dict[str, str] = {}


def _files() -> list[Path]:
    return sorted(
        p
        for root in ROOTS
        for p in (REPO / root).rglob("*.py")
        if "migrations" not in p.relative_to(REPO).parts
    )


def _functions(tree: ast.AST, prefix: str = "") -> list[tuple[str, int]]:
    """(qualified name, lines) of every function in the tree, nested ones included."""
    found: list[tuple[str, int]] = []
    for node in ast.iter_child_nodes(tree):
        name = prefix
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{node.name}"
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            found.append((name, (node.end_lineno or node.lineno) - first + 1))
        found += _functions(node, f"{name}." if name != prefix else prefix)
    return found


def file_sizes(paths: list[Path]) -> dict[str, int]:
    return {
        p.relative_to(REPO).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
        for p in paths
    }


def function_sizes(paths: list[Path]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = path.relative_to(REPO).as_posix()
        for name, lines in _functions(tree):
            sizes[f"{rel}:{name}"] = max(lines, sizes.get(f"{rel}:{name}", 0))
    return sizes


def _over(sizes: dict[str, int], limit: int) -> set[str]:
    return {name for name, lines in sizes.items() if lines > limit}


def test_no_new_file_over_the_limit():
    sizes = file_sizes(_files())
    new = sorted(_over(sizes, MAX_FILE_LINES) - set(FILE_DEBTS))
    assert not new, f"over {MAX_FILE_LINES} lines: " + ", ".join(f"{n} ({sizes[n]})" for n in new)


def test_no_new_function_over_the_limit():
    sizes = function_sizes(_files())
    new = sorted(_over(sizes, MAX_FUNCTION_LINES) - set(FUNCTION_DEBTS))
    assert not new, f"over {MAX_FUNCTION_LINES} lines: " + ", ".join(
        f"{n} ({sizes[n]})" for n in new
    )


def test_each_listed_debt_is_still_over_the_limit():
    files = file_sizes(_files())
    functions = function_sizes(_files())
    paid = sorted(name for name in FILE_DEBTS if files.get(name, 0) <= MAX_FILE_LINES)
    paid += sorted(name for name in FUNCTION_DEBTS if functions.get(name, 0) <= MAX_FUNCTION_LINES)
    assert not paid, f"within the limits now (remove from the debts): {paid}"


def test_the_measure_counts_decorators_nesting_and_methods(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(79))
    path = tmp_path / "probe.py"
    path.write_text(
        f"@decorated\ndef outer():\n{body}\n    def inner():\n        pass\n\n"
        "class Box:\n    def method(self):\n        pass\n"
    )
    tree = ast.parse(path.read_text())
    sizes = dict(_functions(tree))
    assert sizes["outer"] == 1 + 1 + 79 + 2  # decorator, def, body, the nested function
    assert sizes["outer.inner"] == 2
    assert sizes["Box.method"] == 2
    assert _over(sizes, MAX_FUNCTION_LINES) == {"outer"}
