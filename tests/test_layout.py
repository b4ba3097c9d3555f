"""The package's two halves: the library the chapters import, and the engine that builds the book.
Imports go one way (the engine may use the library, never the reverse), and chapters never
import the engine."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dlbook"
ENGINE = PACKAGE / "engine"


def imported_modules(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def test_the_library_never_imports_the_engine():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if ENGINE in path.parents or path.name == "__main__.py":
            continue
        engine = [m for m in imported_modules(path.read_text()) if m.startswith("dlbook.engine")]
        if engine:
            offenders.append(f"{path.relative_to(ROOT)} imports {engine}")
    assert offenders == []


def test_chapters_never_import_the_engine():
    for path in (ROOT / "chapters").glob("*.md"):
        assert "dlbook.engine" not in path.read_text(), path.name


def test_the_engine_lives_in_engine_and_the_data_in_data():
    top_level = {p.stem for p in PACKAGE.glob("*.py")}
    for engine_module in ("chapters", "sync", "runner", "cli", "reports", "rules"):
        assert (ENGINE / f"{engine_module}.py").is_file()
        assert engine_module not in top_level, f"dlbook/{engine_module}.py belongs in dlbook/engine/"
    assert (PACKAGE / "data" / "registry.py").is_file() and "data" not in top_level
    assert (PACKAGE / "data" / "files" / "SOURCES.md").is_file()


def test_tests_mirror_the_layout():
    assert (ROOT / "tests" / "engine" / "test_runner.py").is_file()
    assert (ROOT / "tests" / "data" / "test_registry.py").is_file()
    tested_in = {"rules": "test_cli.py", "reports": "test_runner.py", "assign": "test_grade.py"}
    for module in (PACKAGE / "engine").glob("*.py"):
        if module.stem != "__init__":
            test = tested_in.get(module.stem, f"test_{module.stem}.py")
            assert (ROOT / "tests" / "engine" / test).is_file(), module.name


def test_the_console_script_and_python_m_both_reach_the_engine():
    import subprocess
    import sys
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"dlbook": "dlbook.engine:main"}
    result = subprocess.run([sys.executable, "-m", "dlbook", "--help"], capture_output=True,
                            text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0 and "sync" in result.stdout and "sweep" in result.stdout
