"""The dependency direction of DESIGN.md, checked from the source (import-linter checks the rest).

The core may import only the standard library and ``splitlab.errors``; the SDK may import only
the standard library, the core, ``splitlab.errors`` and itself (optional integrations guarded).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from conftest import ROOT

SRC = ROOT / "src" / "splitlab"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_core_imports_only_the_standard_library_and_errors() -> None:
    for path in (SRC / "core").rglob("*.py"):
        for module in imported_modules(path):
            top = module.split(".")[0]
            allowed = top in sys.stdlib_module_names or module.startswith(
                ("splitlab.core", "splitlab.errors")
            )
            assert allowed, f"{path.relative_to(ROOT)} imports {module}"


def test_the_core_does_no_io_clock_randomness_or_logging() -> None:
    forbidden = {"os", "io", "time", "random", "secrets", "logging", "socket", "subprocess",
                 "uuid", "pathlib", "urllib", "threading", "multiprocessing"}
    for path in (SRC / "core").rglob("*.py"):
        used = {m.split(".")[0] for m in imported_modules(path)} & forbidden
        assert not used, f"{path.relative_to(ROOT)} imports {sorted(used)}"
