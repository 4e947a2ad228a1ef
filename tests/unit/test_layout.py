"""The package layout: the model's runtime stands alone, and nothing serves from the trainer."""

from __future__ import annotations

import ast
from pathlib import Path, PurePosixPath

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = {
    "churn", "scoring", "registry", "cli", "training", "serving", "webhook", "history",
    "monitoring", "console", "streaming",
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
    "streaming": {"streaming", "serving", "churn", "registry", "cli", "history"},
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
    files = [ROOT / part] if part.endswith(".py") else sorted((ROOT / part).rglob("*.py"))
    assert files
    for path in files:
        unexpected = _project_imports(path) - ALLOWED[part]
        assert not unexpected, f"{path.relative_to(ROOT)} imports {sorted(unexpected)}"


SKIPPED_FOLDERS = {".venv", ".tools", "bentoml_home", "mlruns", "node_modules", ".git"}


def _project_python_files() -> list[Path]:
    return [
        path
        for path in sorted(ROOT.rglob("*.py"))
        if not SKIPPED_FOLDERS & set(path.relative_to(ROOT).parts)
    ]


def _private_imports(path: Path) -> list[str]:
    """Imports of another library's private modules or names (a part that starts with `_`)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] in PROJECT_PACKAGES | {"tests", "service", "__future__"}:
                continue
            if any(part.startswith("_") for part in parts):
                found.append(module)
    return found


def test_nothing_imports_a_private_module_of_a_library() -> None:
    files = _project_python_files()
    assert ROOT / "service.py" in files and ROOT / "serving" / "http" / "fast_lane.py" in files
    private = {
        str(path.relative_to(ROOT)): imports
        for path in files
        if (imports := _private_imports(path))
    }
    assert not private, (
        f"private modules of libraries, which break on their next release: {private}"
    )


@pytest.mark.parametrize(
    ("source", "private"),
    [
        ("from bentoml.io._sealed import spec", True),
        ("import _catboost", True),
        ("from mlflow.utils import _get_fully_qualified_class_name", True),
        ("from bentoml import server_context", False),
        ("from serving._hidden import thing", False),
    ],
)
def test_the_private_import_check_tells_them_apart(
    source: str, private: bool, tmp_path: Path
) -> None:
    path = tmp_path / "example.py"
    path.write_text(source + "\n")
    assert bool(_private_imports(path)) is private


ENDPOINTS = {"serving.http.fast_predict", "serving.http.fast_lane", "serving.http.batcher"}


@pytest.mark.parametrize(
    "path", sorted((ROOT / "serving" / "access").glob("*.py")), ids=lambda path: path.name
)
def test_access_control_never_imports_an_endpoint(path: Path) -> None:
    """Middleware sits in front of the endpoints; what they share lives with the middleware."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
    assert not imported & ENDPOINTS, f"{path.name} imports {sorted(imported & ENDPOINTS)}"


def test_spark_stays_out_of_the_service_and_its_image() -> None:
    """PySpark is for `python -m scoring spark`; the service, the console and the stream
    consumer never import it, and neither the bento nor its requirements carry it."""
    served = [ROOT / "service.py"]
    for part in ("serving", "console", "streaming", "monitoring", "history", "churn"):
        served += sorted((ROOT / part).rglob("*.py"))
    importing = [
        str(path.relative_to(ROOT))
        for path in served
        if "pyspark" in {name.split(".")[0] for name in _imported_modules(path)}
    ]
    assert not importing
    assert "\npyspark==" not in (ROOT / "requirements" / "serving.txt").read_text()
    assert "\npyspark==" in (ROOT / "requirements" / "spark.txt").read_text()
    includes = yaml.safe_load((ROOT / "bentofile.yaml").read_text())["include"]
    spark_job = PurePosixPath("scoring/spark/job.py")
    assert not [pattern for pattern in includes if spark_job.match(pattern)]


def _imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found
