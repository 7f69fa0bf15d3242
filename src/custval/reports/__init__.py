"""Reports for people: the notebook runner, the data loader, and the narrative, tables and
figures the report notebooks show.

- :func:`render` runs the notebooks in ``notebooks/`` with papermill and writes HTML (code
  hidden for marketers, with code for data scientists) and an ``index.html`` built from the
  findings each notebook records with :func:`record_findings`.
- :func:`load_report_data` loads the bundled sample or the user's files and cleans them.
- :mod:`story <custval.reports._story>` returns Markdown sentences computed from results,
  :mod:`tables <custval.reports._tables>` small tables with plain headers and numbers
  formatted for people, :mod:`figures <custval.reports._figures>` the report charts that
  :mod:`custval.plotting` does not draw.
"""

from __future__ import annotations

from custval.reports import _figures as figures
from custval.reports import _story as story
from custval.reports import _tables as tables
from custval.reports._data import (
    CANDIDATES,
    ReportData,
    ValueModels,
    activity_by_period,
    best_covariate_model,
    best_scoring_model,
    campaign_effects,
    cohort_retention,
    contact_targets,
    customer_attributes,
    customer_values,
    default_calibration_end,
    load_report_data,
    margin_to_apply,
    programme_effect,
    refit,
    retention_assumptions,
    segment_summary,
    spend_model,
    targets_by_segment,
    value_models,
    value_table_with_ranges,
    write_downloads,
)
from custval.reports._runner import (
    NOTEBOOKS,
    NotebookFailed,
    ReportResult,
    notebook_dir,
    read_findings,
    record_findings,
    render,
    setup_notebook,
)

__all__ = [
    "CANDIDATES",
    "NOTEBOOKS",
    "NotebookFailed",
    "ReportData",
    "ReportResult",
    "ValueModels",
    "activity_by_period",
    "best_covariate_model",
    "best_scoring_model",
    "campaign_effects",
    "cohort_retention",
    "contact_targets",
    "customer_attributes",
    "customer_values",
    "default_calibration_end",
    "figures",
    "load_report_data",
    "margin_to_apply",
    "notebook_dir",
    "programme_effect",
    "read_findings",
    "record_findings",
    "refit",
    "render",
    "retention_assumptions",
    "segment_summary",
    "setup_notebook",
    "spend_model",
    "story",
    "tables",
    "targets_by_segment",
    "value_models",
    "value_table_with_ranges",
    "write_downloads",
]
