"""The report notebooks: committed clean and thin, and each one runs on the sample data.

Structure (rule 14 of the style guide): first cell imports, second cell tagged ``parameters``
with the shared parameter names, no ``def`` or ``class`` in any cell, no outputs or execution
counts committed. Execution: papermill runs every notebook on the bundled sample with small
size parameters, and the executed notebook has no errors or stderr output and records 3-5
summary sentences.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from custval.reports import NOTEBOOKS, notebook_dir, read_findings

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

#: Small size parameters so the notebooks run in seconds (unknown names are ignored by
#: papermill's injection only when the notebook does not use them, so keep this in sync).
SMALL = {
    "n_draws": 20,
    "backtest_cutoffs": 2,
    "n_bootstrap": 50,
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


def _parameters(path: Path) -> set[str]:
    second = _load(path)["cells"][1]
    return {
        target.id
        for node in ast.parse(_source(second)).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_notebook_runs_on_the_sample(path, tmp_path):
    papermill = pytest.importorskip("papermill")
    findings = tmp_path / "findings.json"
    known = _parameters(path)
    parameters = {k: v for k, v in SMALL.items() if k in known}
    parameters["findings_path"] = str(findings)
    executed = tmp_path / path.name
    papermill.execute_notebook(
        str(path),
        str(executed),
        parameters=parameters,
        kernel_name="python3",
        progress_bar=False,
        cwd=str(tmp_path),
    )
    for index, cell in enumerate(_load(executed)["cells"]):
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"cell {index}: {output.get('evalue')}"
            if output["output_type"] == "stream":
                assert output["name"] != "stderr", f"cell {index} wrote to stderr: {output}"
            text = json.dumps(output.get("data", {}).get("text/plain", ""))
            assert "<Axes" not in text and "<Figure" not in text, f"cell {index}: {text}"
    summary = read_findings(findings)["summary"]
    assert 3 <= len(summary) <= 5
    assert all(isinstance(s, str) and s.endswith(".") for s in summary)
