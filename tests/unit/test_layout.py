"""The project's own packages are the ones imported, not same-named installed distributions."""

from __future__ import annotations

from pathlib import Path

import crawler
import pipelines

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_pipelines_package_is_ours() -> None:
    assert Path(pipelines.__file__).resolve().is_relative_to(REPO_ROOT)


def test_crawler_package_is_ours() -> None:
    assert Path(crawler.__file__).resolve().is_relative_to(REPO_ROOT)
