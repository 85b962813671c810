"""Request policy: which User-Agents get 403, and the deterministic fault switches.

A path (with its query) is picked for a fault when a seeded hash of it falls under the
configured fraction, so the same paths misbehave in every run. 503 and 429 hit only the first
request(s) of a picked path; slow paths are slow every time, and so are challenged paths: they
answer 200 with a bot-challenge page (no article, no feed, no link: what a site that is not
serving a crawler sends instead; ``--fault-challenge 1`` challenges every URL). ``/robots.txt``
is exempt.
"""

from __future__ import annotations

import re

from replica.config import ReplicaConfig
from replica.corpus import fraction

_LIBRARY_UA = re.compile(
    r"python-requests|python-urllib|^curl/|wget/|aiohttp/|go-http-client|python-httpx|"
    r"^httpx/|okhttp|^java/|libwww-perl|^axios/|node-fetch|^undici",
    re.IGNORECASE,
)
_SCRAPY_DEFAULT = re.compile(r"^Scrapy/[\w.]+ \(\+https?://(www\.)?scrapy\.org\)$")
_IDENTIFIED = re.compile(r"mozilla/|https?://|@|bot|crawler|spider", re.IGNORECASE)


def ua_allowed(ua: str) -> bool:
    """False for an empty User-Agent or a library default (spec §9)."""
    ua = ua.strip()
    if not ua:
        return False
    return not (_LIBRARY_UA.search(ua) or _SCRAPY_DEFAULT.match(ua))


def ua_allowed_rss(ua: str) -> bool:
    """The feed also wants a browser-like or bot-identifying agent."""
    return ua_allowed(ua) and bool(_IDENTIFIED.search(ua))


CHALLENGE = 200
"""The status ``Faults.check`` gives for a challenged path (answered with ``CHALLENGE_PAGE``)."""

CHALLENGE_PAGE = b"""<!DOCTYPE html>
<html><head><title>Just a moment...</title>
<meta name="robots" content="noindex,nofollow"></head>
<body><h1>Checking your browser before accessing the site</h1>
<p>This process is automatic. Your browser will redirect to your requested content shortly.</p>
<noscript>Please enable JavaScript and cookies to continue.</noscript>
<script>setTimeout(function () { document.forms[0].submit(); }, 5000);</script>
<form method="POST" action="/cdn-cgi/challenge"><input type="hidden" name="r" value="0"></form>
</body></html>
"""


class Faults:
    """Decides, per request, whether to answer 503, 429, a challenge (``CHALLENGE``) or
    slowly."""

    def __init__(self, config: ReplicaConfig) -> None:
        self.seed = config.seed
        self.p503 = config.fault_503
        self.p429 = config.fault_429
        self.pslow = config.fault_slow
        self.pchallenge = config.fault_challenge
        self.slow_s = config.slow_ms / 1000.0
        self.enabled = bool(self.p503 or self.p429 or self.pslow or self.pchallenge)
        self._seen: dict[str, int] = {}

    def picked(self, name: str, key: str) -> bool:
        share = {
            "503": self.p503,
            "429": self.p429,
            "slow": self.pslow,
            "challenge": self.pchallenge,
        }[name]
        return share > 0 and fraction(self.seed, "fault", name, key) < share

    def check(self, key: str) -> tuple[int | None, float]:
        """(status to answer instead, or None; delay in seconds) for this request."""
        if not self.enabled or key == "/robots.txt":
            return None, 0.0
        count = self._seen.get(key, 0)
        self._seen[key] = count + 1
        delay = self.slow_s if self.picked("slow", key) else 0.0
        if self.picked("challenge", key):
            return CHALLENGE, delay
        first = 0
        if self.picked("503", key):
            if count == 0:
                return 503, delay
            first = 1
        if self.picked("429", key) and count == first:
            return 429, delay
        return None, delay
