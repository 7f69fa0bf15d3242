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

from custval.reports import _figures as figures  # noqa: F401 (in __all__ below)
from custval.reports import _story as story  # noqa: F401
from custval.reports import _tables as tables  # noqa: F401
from custval.reports._data import *  # noqa: F403
from custval.reports._data import __all__ as _data_all
from custval.reports._runner import *  # noqa: F403
from custval.reports._runner import __all__ as _runner_all

__all__ = sorted([*_data_all, *_runner_all, "figures", "story", "tables"])
