"""The package layout: the model's runtime stands alone, and nothing serves from the trainer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = {
    "churn", "scoring", "registry", "cli", "training", "serving", "webhook", "history",
    "monitoring", "console",
}  # fmt: skip
# What each part may import of the project's own packages.
ALLOWED = {
    "churn": {"churn"},
    "registry": {"registry", "churn"},
    "cli": {"cli", "churn"},
    "history": {"history", "churn", "cli"},
    "monitoring": {"monitoring", "churn", "history", "cli"},
    "console": {"console", "serving", "churn", "history", "monitoring", "scoring"},
    "scoring": {"scoring", "churn", "registry", "cli", "history"},
    "serving": {"serving", "churn", "registry", "cli", "history", "monitoring"},
    "service.py": {"serving", "churn", "registry", "cli", "history", "monitoring", "console"},
    "webhook": {"webhook", "registry", "cli", "churn"},
}


def _project_imports(path: Path) -> set[str]:
    """Top-level project packages a file imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
    return found & PROJECT_PACKAGES


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_each_part_imports_only_what_it_may(part: str) -> None:
    files = [ROOT / part] if part.endswith(".py") else sorted((ROOT / part).glob("*.py"))
    assert files
    for path in files:
        unexpected = _project_imports(path) - ALLOWED[part]
        assert not unexpected, f"{path.relative_to(ROOT)} imports {sorted(unexpected)}"
