"""The layers stay apart: pages never touch the store, the domain knows nothing of UI or database libraries.

These tests read the source with `ast` (every import statement, also those inside functions or
under TYPE_CHECKING), so they catch a forbidden import wherever it hides.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "chatapp"

DATABASE_AND_AI = ("sqlmodel", "sqlalchemy", "psycopg", "litellm")
FORBIDDEN = {
    "pages": (*DATABASE_AND_AI, "chatapp.store"),
    "api": (*DATABASE_AND_AI, "chatapp.store"),
    "domain": ("nicegui", *DATABASE_AND_AI, "chatapp.pages", "chatapp.api", "chatapp.store"),
    "live": ("nicegui", *DATABASE_AND_AI, "chatapp.pages", "chatapp.api", "chatapp.store"),  # any transport's
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file; relative imports are resolved.

    `source` stands in for the file's text (to check the reader itself on code that is not on disk).
    """
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from chatapp import store` imports chatapp.store
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return found


def is_within(module: str, forbidden: str) -> bool:
    return module == forbidden or module.startswith(forbidden + ".")


def python_files(subpackage: str | None = None) -> list[Path]:
    root = PACKAGE_DIR / subpackage if subpackage else PACKAGE_DIR
    return sorted(root.rglob("*.py")) if root.exists() else []


def violations(subpackage: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(PACKAGE_DIR.parent)}:{line} imports {module}"
        for path in python_files(subpackage)
        for line, module in imported_modules(path)
        if any(is_within(module, name) for name in forbidden)
    ]


def test_the_import_reader_sees_imports_in_every_form() -> None:
    """Guard against a checker that silently finds nothing."""
    modules = {module for _, module in imported_modules(PACKAGE_DIR / "pages" / "session.py")}
    assert {"fastapi", "chatapp.domain.accounts", "nicegui"} <= modules
    source = (
        "from ..store import db\n"
        "from . import theme\n"
        "def f():\n    import sqlalchemy.orm\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from chatapp import store\n"
    )
    probe = {module for _, module in imported_modules(PACKAGE_DIR / "pages" / "probe.py", source)}
    assert {"chatapp.store", "chatapp.store.db", "chatapp.pages.theme", "sqlalchemy.orm"} <= probe
    assert violations_in(probe, FORBIDDEN["pages"]) == ["chatapp.store", "chatapp.store.db", "sqlalchemy.orm"]


def violations_in(modules: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(is_within(m, name) for name in forbidden))


@pytest.mark.parametrize("subpackage", sorted(FORBIDDEN))
def test_layer_does_not_import_forbidden_packages(subpackage: str) -> None:
    if subpackage != "api" and not python_files(subpackage):
        pytest.fail(f"chatapp/{subpackage} has no Python files; the layering test would check nothing")
    assert violations(subpackage, FORBIDDEN[subpackage]) == []


def test_only_the_llm_adapter_imports_litellm() -> None:
    found = [
        f"{path.relative_to(PACKAGE_DIR.parent)}:{line}"
        for path in python_files()
        for line, module in imported_modules(path)
        if is_within(module, "litellm")
    ]
    assert [where.split(":")[0] for where in found] == ["chatapp/llm.py"]


def _is_service_class(node: ast.ClassDef) -> bool:
    """A class with behaviour and state of its own: it defines __init__ and is not an exception or a Protocol."""
    bases = {ast.unparse(base) for base in node.bases}
    if bases & {"Protocol", "Exception"} or any(base.endswith("Error") for base in bases):
        return False
    return any(isinstance(item, ast.FunctionDef) and item.name == "__init__" for item in node.body)


def _public(node: ast.AST) -> bool:
    return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("_")


def test_public_domain_functions_and_service_methods_have_docstrings() -> None:
    missing: list[str] = []
    service_classes: set[str] = set()
    for path in python_files("domain"):
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(PACKAGE_DIR.parent)
        for node in tree.body:
            if _public(node) and not ast.get_docstring(node):
                missing.append(f"{where}:{node.lineno} {node.name}()")
            if isinstance(node, ast.ClassDef) and _is_service_class(node):
                service_classes.add(node.name)
                if not node.name.startswith("_") and not ast.get_docstring(node):
                    missing.append(f"{where}:{node.lineno} class {node.name}")
                for item in node.body:
                    if _public(item) and not ast.get_docstring(item):
                        missing.append(f"{where}:{item.lineno} {node.name}.{item.name}()")
    # the services the UI uses must be among the classes checked, or this test proves nothing
    assert {"Accounts", "Rooms", "Chat", "LiveRooms", "SessionWatch", "Passwords"} <= service_classes
    assert missing == []
