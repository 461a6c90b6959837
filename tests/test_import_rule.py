"""The import rule of docs/architecture.md, read from the source with ``ast``.

Each layer imports only layers below it (never a sibling at its own level, never one above),
and the sans-I/O core (wire/, image/, store/) imports no trio, no pyxs and no socket
module. pyxs is a test dependency: nothing in the package imports it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "xsmig_daemon"
NAME = PACKAGE.name

#: Layer of each top-level module or package of xsmig_daemon; lower numbers are lower.
LAYERS = {
    "__init__": 0,
    "defaults": 1,
    "argtypes": 1,
    "wire": 1,
    "image": 2,
    "store": 3,
    "imagefile": 3,
    "client": 4,
    "sockpath": 4,
    "mockd": 5,
    "export": 5,
    "service": 6,
    "cli": 7,
    "commands": 7,
    "__main__": 8,
    "clidoc": 8,
}
#: The top layer: cli.py registers the subcommands, which use its exit codes.
SAME_LAYER_ALLOWED = {("cli", "commands"), ("commands", "cli")}
SANS_IO = ("wire", "image", "store")
FORBIDDEN_IN_CORE = ("trio", "pyxs", "socket", "asyncio", "threading", "subprocess")


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).parts[0].removesuffix(".py"), path


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute dotted name) of every import in ``path``, relative ones resolved."""
    package = [NAME, *path.relative_to(PACKAGE).parent.parts]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            if node.module is None or (not node.level and node.module == NAME):
                for alias in node.names:
                    yield node.lineno, f"{module}.{alias.name}"
            else:
                yield node.lineno, module


def _layer_of(dotted: str) -> str | None:
    parts = dotted.split(".")
    if parts[0] != NAME:
        return None
    # ``from . import __version__``: a name of the package itself, not a module.
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "__init__"


def test_every_module_has_a_layer() -> None:
    assert {top for top, _ in _modules()} <= set(LAYERS)


def test_each_layer_imports_only_layers_below() -> None:
    wrong = []
    for top, path in _modules():
        for line, dotted in _imports(path):
            target = _layer_of(dotted)
            if target is None or target in (top, "__init__"):
                continue
            if (top, target) in SAME_LAYER_ALLOWED:
                continue
            if LAYERS[target] >= LAYERS[top]:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line}: {top} imports {dotted}")
    assert wrong == []


@pytest.mark.parametrize("layer", SANS_IO)
def test_the_core_imports_no_io(layer: str) -> None:
    wrong = [
        f"{path.relative_to(PACKAGE)}:{line}: {dotted}"
        for top, path in _modules()
        if top == layer
        for line, dotted in _imports(path)
        if dotted.split(".")[0] in FORBIDDEN_IN_CORE
    ]
    assert wrong == []


def test_nothing_imports_pyxs() -> None:
    wrong = [
        f"{path.relative_to(PACKAGE)}:{line}"
        for _, path in _modules()
        for line, dotted in _imports(path)
        if dotted.split(".")[0] == "pyxs"
    ]
    assert wrong == []


def test_the_checker_sees_relative_imports() -> None:
    """The rule is only as good as the import parser: a known import must be found."""
    found = {dotted for _, dotted in _imports(PACKAGE / "store" / "image_state.py")}
    assert "xsmig_daemon.image.records" in found
    assert "xsmig_daemon.wire.header" in found
