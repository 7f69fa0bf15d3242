"""The report runner: run the notebooks on a data set and render them as HTML.

:func:`render` executes each notebook in ``notebooks/`` with papermill, passing the data paths,
column mapping and business assumptions as parameters, then writes two HTML versions of each
with nbconvert — one with the code hidden for marketers, one with the code for data scientists —
and an ``index.html`` that links them under a one-screen executive summary. Each notebook
records its headline findings with :func:`record_findings`; the index is built from those, so
every number on it was computed by a notebook.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from custval._format import escape_html
from custval.errors import DataError

__all__ = [
    "NOTEBOOKS",
    "NotebookFailed",
    "ReportResult",
    "notebook_dir",
    "read_findings",
    "record_findings",
    "render",
    "setup_notebook",
]

_TEMPLATE_DIR = Path(__file__).resolve().parent / "_template"

#: The report notebooks, in reading order: file stem -> title shown to readers.
NOTEBOOKS: dict[str, str] = {
    "01-customer-base": "Our customer base",
    "02-customer-value": "Who our most valuable customers are",
    "03-churn-risk": "Who is slipping away",
    "04-relationship-investment": "Where relationship investment pays back",
}


class NotebookFailed(RuntimeError):
    """A report notebook raised an error; the message names the notebook and the failing cell."""


@dataclass(frozen=True)
class ReportResult:
    """What :func:`render` wrote."""

    out_dir: Path
    index: Path
    reports: dict[str, Path] = field(default_factory=dict)
    full_reports: dict[str, Path] = field(default_factory=dict)
    findings: dict[str, dict[str, Any]] = field(default_factory=dict)


def notebook_dir() -> Path:
    """The folder holding the report notebooks (the repository's ``notebooks/``)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "_notebooks", package.parents[1] / "notebooks"):
        if (candidate / f"{next(iter(NOTEBOOKS))}.ipynb").exists():
            return candidate
    raise DataError(
        "cannot find the report notebooks (looked in the package's _notebooks/ and "
        "the repository's notebooks/); install custval from its repository "
        "(pip install -e .) to render reports"
    )


def setup_notebook(*, dpi: int = 110) -> None:
    """Set up a report notebook: PNG figures at a readable size, plain text in charts.

    Called in the first cell of every report notebook.

    Examples
    --------
    >>> setup_notebook()  # doctest: +SKIP
    """
    import matplotlib as mpl
    import pandas as pd

    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
    except ImportError:  # pragma: no cover - outside Jupyter
        pass
    mpl.rcParams.update(
        {
            "figure.dpi": dpi,
            "figure.figsize": (8.0, 4.2),
            "figure.facecolor": "white",
            "savefig.facecolor": "white",
            "savefig.bbox": "tight",
            "font.size": 10.5,
            "axes.titlesize": 12,
            "axes.titleweight": "bold",
            "axes.titlelocation": "left",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": False,
            "legend.frameon": False,
            # Chart text comes partly from the data (segment and channel names, the
            # currency): show it as it is, never as mathtext.
            "text.parse_math": False,
        }
    )
    pd.set_option("display.max_rows", 30)
    pd.set_option("display.max_columns", 12)


def record_findings(path: str | os.PathLike[str] | None, findings: Mapping[str, Any]) -> None:
    """Write a notebook's headline findings (plain numbers and sentences) for the index page.

    Notebooks call this last, with the ``findings_path`` parameter they were given; when it is
    None (a notebook opened by hand) nothing is written.

    Examples
    --------
    >>> record_findings(None, {"headline": "Top 10% hold 58% of value"})
    """
    if path is None:
        return
    Path(path).write_text(
        json.dumps(dict(findings), indent=2, default=_jsonable) + "\n", encoding="utf-8"
    )


def read_findings(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read findings written by :func:`record_findings` (empty when the file is absent)."""
    path = Path(path)
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def render(
    out_dir: str | os.PathLike[str] = "reports",
    *,
    transactions: str | os.PathLike[str] | None = None,
    customers: str | os.PathLike[str] | None = None,
    campaign: str | os.PathLike[str] | None = None,
    columns: Mapping[str, str] | None = None,
    freq: str = "W",
    horizon: str = "12M",
    margin: float = 1.0,
    annual_discount_rate: float = 0.10,
    currency: str = "$",
    cleaning: Mapping[str, Any] | None = None,
    parameters: Mapping[str, Any] | None = None,
    notebooks: Sequence[str] | None = None,
    progress: bool = True,
    kernel_name: str = "python3",
    timeout: int = 1800,
) -> ReportResult:
    """Run the report notebooks on a data set and write HTML reports.

    Parameters
    ----------
    out_dir : path, default "reports"
        Folder for ``index.html``, one ``<notebook>.html`` per notebook (code hidden) and
        ``full/<notebook>.html`` (with code), and the executed notebooks in ``notebooks/``.
    transactions, customers, campaign : path, optional
        CSV or Parquet files. Without ``transactions`` the bundled simulated sample
        (``data/sample``) is used, with its customers and campaign tables.
    columns : mapping, optional
        Column mapping for the transactions file, as keyword arguments of
        :func:`custval.read_transactions` (``customer_id``, ``timestamp``, ``amount`` or
        ``quantity`` + ``unit_price``, ``order_id``, ``product_code``).
    freq, horizon, margin, annual_discount_rate, currency
        The analysis unit and the business assumptions shown in every report.
    cleaning : mapping, optional
        Options of :func:`custval.clean_transactions` for the transactions file (e.g.
        ``{"exclude_codes": "online-retail"}``; see :func:`load_report_data`).
    parameters : mapping, optional
        Further notebook parameters (e.g. smaller settings for tests).
    notebooks : sequence of str, optional
        Stems of the notebooks to run (default all four, in order).
    progress : bool, default True
        Show a progress bar over notebooks.

    Returns
    -------
    ReportResult

    Raises
    ------
    NotebookFailed
        When a notebook raises; the message names the notebook, the cell and the error.

    Examples
    --------
    >>> from custval.reports import render
    >>> result = render("reports")  # doctest: +SKIP
    """
    import papermill
    from tqdm.auto import tqdm

    stems = list(notebooks) if notebooks is not None else list(NOTEBOOKS)
    unknown = [s for s in stems if s not in NOTEBOOKS]
    if unknown:
        raise DataError(f"unknown report notebook(s) {unknown}; choose from {list(NOTEBOOKS)}")
    source_dir = notebook_dir()
    out = Path(out_dir)
    for sub in ("notebooks", "full", "findings"):
        (out / sub).mkdir(parents=True, exist_ok=True)

    base_parameters: dict[str, Any] = {
        "transactions_path": _absolute(transactions),
        "customers_path": _absolute(customers),
        "campaign_path": _absolute(campaign),
        "columns": dict(columns or {}),
        "freq": freq,
        "horizon": horizon,
        "margin": float(margin),
        "annual_discount_rate": float(annual_discount_rate),
        "currency": currency,
        "cleaning": dict(cleaning or {}),
    }
    base_parameters.update(parameters or {})

    result = ReportResult(out_dir=out, index=out / "index.html")
    bar = tqdm(stems, desc="custval report", unit="notebook", disable=not progress)
    with tempfile.TemporaryDirectory(prefix="custval-report-") as workdir:
        for stem in bar:
            bar.set_postfix_str(stem)
            findings_path = out / "findings" / f"{stem}.json"
            executed = out / "notebooks" / f"{stem}.ipynb"
            source = source_dir / f"{stem}.ipynb"
            known = set(papermill.inspect_notebook(str(source)))
            params = {
                **base_parameters,
                "findings_path": str(findings_path.resolve()),
                "downloads_dir": str((out / "downloads").resolve()),
            }
            params = {k: v for k, v in params.items() if k in known}
            kernel_log = out / "notebooks" / f"{stem}.kernel.log"
            try:
                with kernel_log.open("w", encoding="utf-8") as log:
                    papermill.execute_notebook(
                        str(source),
                        str(executed),
                        parameters=params,
                        kernel_name=kernel_name,
                        progress_bar=False,
                        cwd=workdir,
                        execution_timeout=timeout,
                        kernel_manager_class=_kernel_manager_class(log),
                    )
            except papermill.PapermillExecutionError as error:
                raise NotebookFailed(
                    f"notebook {stem} failed in cell {error.exec_count}: {error.ename}: "
                    f"{error.evalue}\nThe executed notebook with the traceback is at "
                    f"{executed}"
                ) from None
            except RuntimeError as error:  # a dead kernel, a timeout
                raise NotebookFailed(
                    f"notebook {stem} did not finish: {type(error).__name__}: {error}\n"
                    f"The kernel's own messages are in {kernel_log}"
                ) from None
            result.reports[stem] = _export_html(executed, out / f"{stem}.html", code=False)
            result.full_reports[stem] = _export_html(
                executed, out / "full" / f"{stem}.html", code=True
            )
            result.findings[stem] = read_findings(findings_path)
    _write_index(result, base_parameters)
    return result


def _kernel_manager_class(log: Any) -> type:
    """A kernel manager whose kernel writes its own messages (start-up notices, crashes) to
    ``log`` instead of the terminal of whoever runs ``custval report``."""
    from jupyter_client.manager import AsyncKernelManager

    class _LoggedKernelManager(AsyncKernelManager):
        async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
            command, kw = await super()._async_pre_start_kernel(**kw)
            kw.setdefault("stderr", log)
            kw.setdefault("stdout", log)
            return command, kw

    return _LoggedKernelManager


def _absolute(path: str | os.PathLike[str] | None) -> str | None:
    return None if path is None else str(Path(path).resolve())


def _export_html(notebook_path: Path, target: Path, *, code: bool) -> Path:
    """Write one HTML version of an executed notebook (no scripts from the internet)."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(notebook_path, as_version=4)
    stem = notebook_path.stem
    notebook.metadata["title"] = NOTEBOOKS.get(stem, stem)
    exporter = HTMLExporter(template_name="custval", extra_template_basedirs=[str(_TEMPLATE_DIR)])
    if not code:
        exporter.exclude_input = True
        exporter.exclude_input_prompt = True
        exporter.exclude_output_prompt = True
        # Readers of the marketing version see results only: no stderr streams (progress bars).
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs = [
                    o
                    for o in cell.outputs
                    if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
                ]
        resources = {
            "custval_index": "index.html",
            "custval_other": f"full/{stem}.html",
            "custval_other_label": "The same report with its code",
        }
    else:
        resources = {
            "custval_index": "../index.html",
            "custval_other": f"../{stem}.html",
            "custval_other_label": "The same report without code",
        }
    body, _ = exporter.from_notebook_node(notebook, resources=resources)
    if code:  # the full version sits in full/: its links to the CSV files go up one level
        body = body.replace('href="downloads/', 'href="../downloads/')
    target.write_text(body, encoding="utf-8")
    return target


_INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Customer value report</title>
<link rel="icon" href="data:,">
<style>
  body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
         margin: 2rem auto; max-width: 64rem; padding: 0 1.5rem; color: #1f2933;
         line-height: 1.55; font-size: 15px; }}
  h1 {{ margin-bottom: 0.2rem; }}
  .assumptions {{ color: #52606d; margin-top: 0.2rem; }}
  .cards {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(26rem, 1fr));
           gap: 1rem; margin-top: 1.2rem; }}
  .card {{ border: 1px solid #d9e2ec; border-radius: 8px; padding: 0.8rem 1.2rem 1rem; }}
  .card h2 {{ font-size: 1.15rem; margin: 0.2rem 0 0.5rem; }}
  .card h2 a {{ color: #1f2933; }}
  .card ul {{ margin: 0; padding-left: 1.1rem; }}
  .card li {{ margin-bottom: 0.35rem; }}
  .links {{ font-size: 0.9rem; margin-top: 0.7rem; }}
  a {{ color: #1d4ed8; }}
</style>
</head>
<body>
<h1>Customer value report</h1>
<p class="assumptions">{assumptions}</p>
<div class="cards">
{cards}
</div>
</body>
</html>
"""


def _write_index(result: ReportResult, parameters: Mapping[str, Any]) -> None:
    from custval._format import percent
    from custval.reports._story import horizon_words

    path = parameters["transactions_path"]
    data = Path(path).name if path else "the simulated sample retailer (data/sample)"
    assumptions = (
        f"Data: {escape_html(str(data))}. Customer value over "
        f"{escape_html(horizon_words(parameters['horizon']))}, "
        f"discounted at {percent(parameters['annual_discount_rate'])} a year, "
        + (
            f"as profit at a margin of {percent(parameters['margin'])} of revenue."
            if parameters["margin"] < 1
            else "as revenue (no margin was given, so values are not profit)."
        )
    )
    cards = []
    for stem, report_path in result.reports.items():
        findings = result.findings.get(stem, {})
        bullets = findings.get("summary", [])
        items = "\n".join(f"    <li>{escape_html(str(b))}</li>" for b in bullets)
        full = result.full_reports[stem].relative_to(result.out_dir).as_posix()
        downloads = "".join(
            f'<br><a href="{escape_html(quote(str(d["path"]), safe="/"))}">'
            f"{escape_html(str(d['label']))}</a>"
            for d in findings.get("downloads", [])
            if _inside(result.out_dir, str(d.get("path", "")))
        )
        cards.append(
            f'  <section class="card">\n    <h2><a href="{report_path.name}">'
            f"{escape_html(NOTEBOOKS[stem])}</a></h2>\n    <ul>\n{items}\n    </ul>\n"
            f'    <div class="links"><a href="{report_path.name}">Read the report</a> · '
            f'<a href="{full}">with code</a>{downloads}</div>\n  </section>'
        )
    result.index.write_text(
        _INDEX_TEMPLATE.format(assumptions=assumptions, cards="\n".join(cards)), encoding="utf-8"
    )


def _inside(folder: Path, relative: str) -> bool:
    """Whether ``relative`` names an existing file inside ``folder`` (links on the index only
    point at files the reports wrote)."""
    if not relative or relative.startswith(("/", "\\")) or ":" in relative:
        return False
    base = folder.resolve()
    target = (base / relative).resolve()
    return target.is_file() and base in target.parents
