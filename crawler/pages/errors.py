"""The one error page objects raise: a page that cannot become what was asked of it."""

from __future__ import annotations


class ExtractionError(Exception):
    """A required part of a page is missing or the page is not what it should be.

    ``reason`` is short and machine-readable (``not_an_article``, ``truncated``,
    ``missing_field:title``, ``bad_json``, ``bad_xml``); it becomes ``PageFailure.reason``.
    ``detail`` says what exactly was wrong, for people.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
