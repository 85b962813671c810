"""How a run ended: ``ok``, ``degraded`` or ``failed``, with the reasons, and the exit codes.

Scrapy-free: ``decide(report, config)`` is a pure function of the run report
(``crawler.frontier.report.build_report``: the run's counters, added up by every worker) and of
the reasons a worker already knows (Redis state lost, the run abandoned). The worker that ends
a run decides its outcome, publishes it in Redis for the other workers (they exit with it) and
stores it in the run's ``runs`` document as ``outcome`` and ``reasons``.

Each reason is ``"<code>: <explanation>"``. In order:

``failed``
    - ``site_unreachable``: every seed of the run failed, and only with network errors, 5xx,
      429 or 401/403/451 answers (the site could not be reached, or refused us);
    - ``site_not_serving``: every seed failed and some answered without the structure a seed
      has (hubs that are no hubs, feeds that are no feeds: a bot challenge, a parked domain);
      or at least ``BLOCKED_MIN_PAGES`` article URLs answered and at least
      ``TASS_RUN_FAILED_SHARE`` of them held no article;
    - ``site_failures``: at least ``TASS_RUN_FAILED_SHARE`` of the run's URLs (articles stored
      plus failures recorded, at least ``BLOCKED_MIN_PAGES`` of them) failed with network
      errors, 5xx, 429 or 401/403/451;
    - any reason handed in by the caller (``redis_state_lost``, ``abandoned``, ...).

``degraded`` (only when not failed)
    - ``drift``: one per alarm of the extraction drift check. The contract with whatever adds
      it: ``report["drift"]["alarms"]`` is a list of dicts with at least ``field`` and
      ``message``; a non-empty list makes the run degraded, one reason per alarm;
    - ``failures``: at least ``TASS_RUN_DEGRADED_SHARE`` of the run's URLs (at least
      ``BLOCKED_MIN_PAGES`` of them) failed (any reason).

Otherwise ``ok``: a quiet night with nothing new is ``ok`` (its seeds answered as seeds do).

Exit codes of ``scrapy crawl tass`` in one-shot mode (``exit_code``) and of the commands:
``EXIT_OK`` 0, ``EXIT_FAILED`` 3, ``EXIT_DEGRADED`` 4, ``EXIT_UNAVAILABLE`` 69 (Redis or MongoDB
unreachable before the run began), ``EXIT_CONFIG`` 78 (a malformed setting or argument, refused
credentials, arguments that differ from the open run's), ``EXIT_INTERRUPTED`` 130 (stopped by a
signal before its run ended); 1 is an unexpected error, 2 a bad command line (Scrapy's own).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from crawler import defaults

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

OK, DEGRADED, FAILED = "ok", "degraded", "failed"
OUTCOMES = (OK, DEGRADED, FAILED)

EXIT_OK = 0
EXIT_FAILED = 3
EXIT_DEGRADED = 4
EXIT_UNAVAILABLE = 69
EXIT_CONFIG = 78
EXIT_INTERRUPTED = 130

# Failure classes (``failure_class``): what a failed URL says about the site.
UNREACHABLE = "unreachable"
"""Network errors, truncated answers, 5xx and 429: the site did not answer properly."""
REFUSED = "refused"
"""401, 403, 451: the site answered, and refused us."""
HTTP = "http"
"""Other HTTP errors (404, 410...): about the URL, not the site."""
CONTENT = "content"
"""The site answered, but not with what the URL should hold (no article, no hub, bad XML)."""

_SERVER_ERROR = re.compile(r"^http_(5\d\d|429)$")
_REFUSED = frozenset({"http_401", "http_403", "http_451"})


def failure_class(reason: str) -> str:
    """The class of a failure reason (``network:TimeoutError``, ``http_503``, ``bad_xml``...)."""
    if reason.startswith("network:") or reason == "truncated" or _SERVER_ERROR.match(reason):
        return UNREACHABLE
    if reason in _REFUSED:
        return REFUSED
    if reason.startswith("http_"):
        return HTTP
    return CONTENT


def failure_counters(reason: str, kind: str, seed: bool) -> list[str]:
    """The run counters (``tass/run/...``) a recorded failure adds one to: its class, its
    class by page kind, and for a seed the seed's."""
    cls = failure_class(reason)
    keys = ["tass/run/failures", f"tass/run/failures/{cls}", f"tass/run/failures/{kind}/{cls}"]
    if seed:
        keys += ["tass/run/seed_failures", f"tass/run/seed_failures/{cls}"]
    return keys


@dataclass(frozen=True, slots=True)
class Verdict:
    """A run's outcome and why."""

    outcome: str
    reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"not an outcome: {self.outcome!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(str(data["outcome"]), tuple(str(r) for r in data.get("reasons") or ()))

    @property
    def exit_code(self) -> int:
        return {OK: EXIT_OK, DEGRADED: EXIT_DEGRADED, FAILED: EXIT_FAILED}[self.outcome]

    def summary(self) -> str:
        return self.outcome + (f" ({'; '.join(self.reasons)})" if self.reasons else "")


@dataclass(frozen=True, slots=True)
class OutcomeConfig:
    """The failure shares from which a run is failed or degraded."""

    failed_share: float = defaults.TASS_RUN_FAILED_SHARE
    degraded_share: float = defaults.TASS_RUN_DEGRADED_SHARE
    blocked_min_pages: int = defaults.BLOCKED_MIN_PAGES

    def __post_init__(self) -> None:
        for name, value in (
            ("TASS_RUN_FAILED_SHARE", self.failed_share),
            ("TASS_RUN_DEGRADED_SHARE", self.degraded_share),
        ):
            if not 0 < value <= 1:
                raise ValueError(f"{name}={value!r}: must be a share in (0, 1]")
        if self.degraded_share > self.failed_share:
            raise ValueError(
                f"TASS_RUN_DEGRADED_SHARE={self.degraded_share!r} is above "
                f"TASS_RUN_FAILED_SHARE={self.failed_share!r}: it must not be"
            )

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        return cls(
            failed_share=settings.getfloat("TASS_RUN_FAILED_SHARE", defaults.TASS_RUN_FAILED_SHARE),
            degraded_share=settings.getfloat(
                "TASS_RUN_DEGRADED_SHARE", defaults.TASS_RUN_DEGRADED_SHARE
            ),
        )


def _share(part: int, whole: int) -> str:
    return f"{part} of {whole} ({100 * part / whole:.0f}%)"


def _classes(counters: Mapping[str, int], prefix: str) -> str:
    found = [
        f"{cls} {counters[f'{prefix}/{cls}']}"
        for cls in (UNREACHABLE, REFUSED, HTTP, CONTENT)
        if counters.get(f"{prefix}/{cls}")
    ]
    return ", ".join(found)


def _site_failed(c: Mapping[str, int], config: OutcomeConfig) -> list[str]:
    reasons: list[str] = []
    seeds, seed_failures = c.get("run/seeds", 0), c.get("run/seed_failures", 0)
    if seeds and seed_failures >= seeds:
        site = c.get(f"run/seed_failures/{UNREACHABLE}", 0) + c.get(
            f"run/seed_failures/{REFUSED}", 0
        )
        code = "site_unreachable" if site >= seed_failures else "site_not_serving"
        what = _classes(c, "run/seed_failures")
        reasons.append(f"{code}: every seed of the run failed ({seed_failures} of {seeds}: {what})")
    articles, failures = c.get("run/articles", 0), c.get("run/failures", 0)
    urls = articles + failures
    site = c.get(f"run/failures/{UNREACHABLE}", 0) + c.get(f"run/failures/{REFUSED}", 0)
    if urls >= config.blocked_min_pages and site / urls >= config.failed_share:
        reasons.append(
            f"site_failures: {_share(site, urls)} URLs failed with network errors, 5xx, 429 "
            f"or a refusal (TASS_RUN_FAILED_SHARE={config.failed_share})"
        )
    empty = c.get(f"run/failures/article/{CONTENT}", 0)
    answered = articles + empty
    if empty >= config.blocked_min_pages and empty / answered >= config.failed_share:
        reasons.append(
            f"site_not_serving: {_share(empty, answered)} article pages that answered held "
            "no article"
        )
    return reasons


def decide(report: Mapping[str, Any], config: OutcomeConfig, known: Iterable[str] = ()) -> Verdict:
    """The outcome of the run ``report`` describes (module docstring); ``known``: reasons the
    caller already has for a failed run."""
    counters: Mapping[str, int] = report.get("counters") or {}
    failed = [*known, *_site_failed(counters, config)]
    if failed:
        return Verdict(FAILED, tuple(failed))
    degraded = [
        f"drift: {alarm.get('field')}: {alarm.get('message')}"
        for alarm in (report.get("drift") or {}).get("alarms") or ()
    ]
    articles, failures = counters.get("run/articles", 0), counters.get("run/failures", 0)
    urls = articles + failures
    if urls >= config.blocked_min_pages and failures / urls >= config.degraded_share:
        degraded.append(
            f"failures: {_share(failures, urls)} URLs failed "
            f"(TASS_RUN_DEGRADED_SHARE={config.degraded_share})"
        )
    return Verdict(DEGRADED, tuple(degraded)) if degraded else Verdict(OK)
