"""The report notebooks are committed clean and thin.

Structure (rule 14 of the style guide): first cell imports, second cell tagged ``parameters``
with the shared parameter names, no ``def`` or ``class`` in any cell, no outputs or execution
counts committed, the last cell records the findings.

Execution is tested in ``tests/test_reports.py``: ``custval report`` runs every notebook with
papermill on the bundled sample with small size parameters (once per test session), and
``test_every_notebook_executes_cleanly`` checks each executed notebook (no errors, nothing on
stderr, no object reprs, 3-5 summary sentences).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from custval.reports import NOTEBOOKS, notebook_dir

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
COMMITTED = sorted(NOTEBOOK_DIR.glob("*.ipynb"))

#: Parameters every notebook takes (custval report passes them all).
SHARED_PARAMETERS = {
    "transactions_path",
    "customers_path",
    "campaign_path",
    "columns",
    "cleaning",
    "freq",
    "horizon",
    "margin",
    "annual_discount_rate",
    "currency",
    "findings_path",
}


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else source


def test_every_report_notebook_is_committed():
    assert notebook_dir() == NOTEBOOK_DIR
    assert sorted(p.stem for p in COMMITTED) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    for index, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {index} has outputs"
            assert cell.get("execution_count") is None, (
                f"{path.name} cell {index} has an execution count"
            )


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_notebook_has_no_def_or_class(path):
    for index, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] != "code":
            continue
        tree = ast.parse(_source(cell))
        defined = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        ]
        assert not defined, f"{path.name} cell {index} defines {defined[0].name!r}"


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_notebook_starts_with_imports_then_parameters(path):
    cells = _load(path)["cells"]
    first, second = cells[0], cells[1]
    assert first["cell_type"] == "code"
    statements = ast.parse(_source(first)).body
    assert any(isinstance(s, ast.Import | ast.ImportFrom) for s in statements)
    assert second["cell_type"] == "code"
    assert "parameters" in second.get("metadata", {}).get("tags", [])
    assigned = {
        target.id
        for node in ast.parse(_source(second)).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert SHARED_PARAMETERS <= assigned, f"missing {SHARED_PARAMETERS - assigned}"
    assert all(isinstance(node, ast.Assign) for node in ast.parse(_source(second)).body), (
        "the parameters cell only assigns values"
    )


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_notebook_ends_by_recording_findings(path):
    code = [c for c in _load(path)["cells"] if c["cell_type"] == "code"]
    assert "reports.record_findings(findings_path" in _source(code[-1])
