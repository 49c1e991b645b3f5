"""The layout's promises, read off the imports: logic/ is pure, and the pipeline never imports the embedded server."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "curation_assets"
# What the pipeline is made of; the quickstart (the demo's command) starts the embedded server, so it may import it.
# server_identity.py sits between the two on purpose: the pipeline's client asks it whether a key is the embedded
# owner's before sending it anywhere, and only that module reads the embedded server's credentials file.
PIPELINE = ("logic", "defs", "argilla_adapter")
# Input/output and frameworks stay out of logic/: its functions take and return values (a plotly figure is a value).
NOT_IN_LOGIC = {"dagster", "argilla", "httpx", "requests", "datasets", "huggingface_hub", "subprocess", "shutil"}
FILE_CALLS = {"open", "write_text", "write_bytes", "read_text", "read_bytes", "to_csv", "to_parquet", "mkdir", "unlink"}


def imported_modules(path: Path) -> set[str]:
    """Absolute names of what a module imports (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names.add(f"{base}.{node.module}" if node.module else base)
            else:
                names.add(node.module)
    return names


def modules_of(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", PIPELINE)
def test_the_pipeline_never_imports_the_embedded_server(folder):
    offending = {
        str(path.relative_to(PACKAGE)): sorted(name for name in imported_modules(path) if "local_argilla" in name)
        for path in modules_of(folder)
    }
    assert modules_of(folder) and not {path: names for path, names in offending.items() if names}


def file_calls(path: Path) -> set[str]:
    """open(...) and the usual file methods (Path.write_text, DataFrame.to_parquet, ...) a module calls."""
    called = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in FILE_CALLS:
                called.add(name)
    return called


def test_logic_does_no_input_output_and_uses_no_framework():
    offending = {
        str(path.relative_to(PACKAGE)): sorted(
            {name for name in imported_modules(path) if name.split(".")[0] in NOT_IN_LOGIC} | file_calls(path)
        )
        for path in modules_of("logic")
    }
    assert len(offending) > 10 and not {path: names for path, names in offending.items() if names}
