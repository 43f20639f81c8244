"""The names a .pyi stub declares: tests hold each C module's stub against the module."""

from __future__ import annotations

import ast
from pathlib import Path
from types import ModuleType


def stub_names(stub: Path) -> set[str]:
    """Functions, classes and annotated names at the stub's top level."""
    names = set()
    for node in ast.parse(stub.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def public_names(module: ModuleType) -> set[str]:
    return {name for name in dir(module) if not name.startswith("_")}
