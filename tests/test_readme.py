"""The README's Python example runs as written (documentation that cannot rot)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


@pytest.mark.slow
def test_readme_python_example_runs_and_gives_sensible_results():
    blocks = _python_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "README.md has no ```python block"
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    assert namespace["cleaning"].reconciles
    comparison = namespace["models"]
    assert set(comparison) == {"BG/NBD", "Pareto/NBD", "MBG/NBD"}
    values = namespace["values"]
    assert isinstance(values, pd.DataFrame)
    assert values["value_rank"].min() == 1
    assert (values["clv_lower"] <= values["clv"] + 1e-9).all()
    assert values.attrs["value_basis"] == "contribution"
    assert namespace["risk"].between(0, 1).all()
    assert namespace["plan"].best["n_targeted"] >= 0
