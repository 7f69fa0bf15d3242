"""Shared fixtures. Real public data sets are read from ../shared/data (never copied here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get("CUSTVAL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def shared_file(*parts: str) -> Path:
    """Path to a file of the shared public data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"public data set not available: {path} is absent (the shared data folder "
            "sits beside the project in development and CI; set CUSTVAL_SHARED_DATA to "
            "point elsewhere)"
        )
    return path


@pytest.fixture(scope="session")
def cdnow_sample_path() -> Path:
    return shared_file("cdnow", "CDNOW_sample.txt")


@pytest.fixture(scope="session")
def cdnow_master_path() -> Path:
    return shared_file("cdnow", "CDNOW_master.txt")


@pytest.fixture(scope="session")
def online_retail_path() -> Path:
    return shared_file("online_retail", "online_retail.csv.gz")
