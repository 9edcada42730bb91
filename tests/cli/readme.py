"""The commands README.md shows, read from the README itself, and the real command tree."""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import typer.main

from tests.conftest import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
_SPAN = re.compile(r"`([^`]+)`")
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
# `socialcare` as a command word: at the start, or after a path (.venv/bin/) or a space.
_COMMAND = re.compile(r"(?:^|(?<=[/\s]))socialcare\s+(.*)", re.S)


def readme() -> str:
    """README.md, then every page under docs/ (the reference the README links to)."""
    pages = [README, *sorted(DOCS.glob("*.md"))]
    return "\n".join(page.read_text(encoding="utf-8") for page in pages)


def section(text: str, title: str) -> str:
    """The text of a `## title` section, up to the next section of the same level."""
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def code_blocks(text: str) -> list[str]:
    return _FENCE.findall(text)


def invocations(text: str) -> Iterator[list[str]]:
    """The words after each `socialcare` in the text's code blocks (one a line) and inline code
    spans (which may wrap lines)."""
    pieces: list[str] = []
    for block in code_blocks(text):
        pieces.extend(block.splitlines())
    pieces.extend(_SPAN.findall(_FENCE.sub("", text)))
    for piece in pieces:
        found = _COMMAND.search(piece)
        if found:
            yield found.group(1).split("#", 1)[0].split()


def tree() -> Any:
    """The click command tree of `socialcare` (what --help shows)."""
    from socialcare.cli import app

    return typer.main.get_command(app)


def _is_group(command: Any) -> bool:
    return hasattr(command, "commands")


def command_paths(root: Any | None = None, prefix: tuple[str, ...] = ()) -> set[str]:
    """Every command a user can run: leaves, and groups that run without a subcommand."""
    root = root if root is not None else tree()
    paths: set[str] = set()
    for name, command in root.commands.items():
        if getattr(command, "hidden", False):
            continue
        path = (*prefix, name)
        if _is_group(command):
            if command.invoke_without_command:
                paths.add(" ".join(path))
            paths |= command_paths(command, path)
        else:
            paths.add(" ".join(path))
    return paths


def resolve(words: Iterable[str], root: Any | None = None) -> tuple[set[str], set[str]]:
    """The command paths the words name (`a|b` names each), and those that do not exist."""
    root = root if root is not None else tree()
    found: set[str] = set()
    unknown: set[str] = set()

    def walk(group: Any, prefix: tuple[str, ...], rest: list[str]) -> None:
        word = rest[0] if rest else ""
        names = word.split("|") if word else []
        if not names or not all(re.fullmatch(r"[a-z][a-z0-9-]*", n) for n in names):
            if group.invoke_without_command or not prefix:
                if prefix:
                    found.add(" ".join(prefix))
            else:
                unknown.add(" ".join(prefix) + " (no subcommand)")
            return
        for name in names:
            command = group.commands.get(name)
            if command is None:
                if prefix and group.invoke_without_command:
                    found.add(" ".join(prefix))  # an argument of the group's own command
                else:
                    unknown.add(" ".join((*prefix, name)))
                continue
            if _is_group(command):
                walk(command, (*prefix, name), rest[1:])
            else:
                found.add(" ".join((*prefix, name)))

    walk(root, (), list(words))
    return found, unknown


def mentioned(text: str) -> tuple[set[str], set[str]]:
    """Every command path the text names, and every name that is no command."""
    found: set[str] = set()
    unknown: set[str] = set()
    root = tree()
    for words in invocations(text):
        ok, bad = resolve(words, root)
        found |= ok
        unknown |= bad
    return found, unknown


def quick_start_commands() -> list[list[str]]:
    """The Quick start's commands for working the queue, one per line, as a shell splits them
    (comments dropped), without the leading `.venv/bin/socialcare`."""
    for block in code_blocks(section(readme(), "Quick start")):
        if "socialcare claim-next" in block:
            commands = []
            for line in block.splitlines():
                words = shlex.split(line, comments=True)
                assert words[0].endswith("socialcare"), line
                commands.append(words[1:])
            return commands
    raise AssertionError("the Quick start shows no commands for working the queue")


def run_in_tests(files: Iterable[Path]) -> set[str]:
    """The command paths the test files run: the leading string arguments of every
    `.run(...)`/`.fails(...)` call, the string tuples given to `.run_all`/`.fails_all`, and the
    lists that start a process with `[SOCIALCARE, ...]`."""
    root = tree()
    paths: set[str] = set()

    def words(args: list[ast.expr]) -> list[str]:
        out = []
        for arg in args:
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                break
            out.append(arg.value)
        return out

    for file in files:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            # A long-running command started by hand: Popen([SOCIALCARE, "web", ...]).
            if isinstance(node, ast.List) and node.elts:
                first = node.elts[0]
                if isinstance(first, ast.Name) and first.id == "SOCIALCARE":
                    paths |= resolve(words(node.elts[1:]), root)[0]
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            calls: list[list[str]] = []
            if node.func.attr in ("run", "fails"):
                calls.append(words(node.args))
            elif node.func.attr in ("run_all", "fails_all") and node.args:
                listed = node.args[0]
                if isinstance(listed, ast.List | ast.Tuple):
                    for item in listed.elts:
                        if isinstance(item, ast.List | ast.Tuple):
                            calls.append(words(item.elts))
            for call in calls:
                if call:
                    paths |= resolve(call, root)[0]
    return paths
