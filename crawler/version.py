"""The extractor version: which code turned a page into the stored fields.

Every article document records it (``extractor``): the store writes it with each new version,
``scrapy reparse`` with each document it changes. It is the package version and a digest of
the source of everything between the fetched page and the stored fields: the page objects
(the ``crawler.pages`` package), the site rules (``crawler.text``, ``crawler.urls``), the item
(``crawler.items``), the spider, and the packages of the configured item pipelines (loaded
from ``ITEM_PIPELINES`` by name, as Scrapy does, so ``crawler`` imports none of them). A
change anywhere in that code gives a new version, without anyone remembering to bump it; a
change elsewhere (the frontier, a command) does not.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.utils.misc import load_object

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

EXTRACTION_MODULES = ("crawler.pages", "crawler.text", "crawler.urls", "crawler.items")
"""Modules (a package stands for all its files) whose source the version covers, beside the
spider's module and the packages of the configured pipelines."""


def extractor_version(settings: BaseSettings) -> str:
    """``<package version>+<12 hex digits>`` for the code these settings extract with."""
    pipelines = settings.getdict("ITEM_PIPELINES") or {}
    modules = [*EXTRACTION_MODULES, "crawler.spiders"]
    for path, order in pipelines.items():
        if order is None:
            continue
        stage = load_object(path)  # as Scrapy loads it (and failing as loudly)
        modules.append(stage.__module__.split(".", 1)[0])  # its whole package
    return _version(tuple(sorted(set(modules))))


@functools.cache
def _version(modules: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    files = {relative: path for name in modules for relative, path in _sources(name)}
    for relative in sorted(files):
        digest.update(f"{relative}\0".encode())
        digest.update(files[relative].read_bytes())
    try:
        release = package_version("tass-crawler")
    except PackageNotFoundError:  # run from a source tree that is not installed (the image)
        release = "0"
    return f"{release}+{digest.hexdigest()[:12]}"


def _sources(name: str) -> list[tuple[str, Path]]:
    """The ``.py`` files of module ``name`` (all of them for a package), each with its path
    relative to the folder holding its top-level package."""
    module = importlib.import_module(name)
    file = getattr(module, "__file__", None)
    top = getattr(importlib.import_module(name.split(".", 1)[0]), "__file__", None)
    if file is None or top is None:
        raise RuntimeError(f"the extractor version cannot read the source of {name}")
    path, root = Path(file), Path(top).parent.parent
    paths = sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]
    return [(p.relative_to(root).as_posix(), p) for p in paths]
