"""Content fingerprints: the exact ``content_hash`` and a 64-bit SimHash with its bands.

The SimHash is computed over word 3-shingles of the casefolded text, each hashed with an
8-byte BLAKE2b (stable across processes, unlike ``hash()``), weighted by its count. It is stored
as a signed int64 so BSON keeps it as a long. ``bands`` cuts the unsigned value into four 16-bit
bands tagged with their position (``position << 16 | value``): two fingerprints within Hamming
distance 3 share at least one band (pigeonhole), so one indexed ``$in`` query finds them all.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter

BITS = 64
MASK = (1 << BITS) - 1
BAND_COUNT = 4
BAND_BITS = BITS // BAND_COUNT
SHINGLE = 3
GUARANTEED_DISTANCE = BAND_COUNT - 1
"""Every pair within this many differing bits shares a band, so the band lookup finds it."""

_WORD = re.compile(r"\w+")


def content_hash(title: str, lead: str | None, body: str) -> str:
    """SHA-256 hex of ``title + "\\n" + (lead or "") + "\\n" + body``."""
    text = f"{title}\n{lead or ''}\n{body}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _feature_hash(feature: str) -> int:
    return int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "big")


def simhash(text: str) -> int:
    """The signed 64-bit SimHash of ``text`` over word 3-shingles (0 for a text without words)."""
    words = _WORD.findall(text.casefold())
    if len(words) >= SHINGLE:
        features = Counter(" ".join(words[i : i + SHINGLE]) for i in range(len(words) - 2))
    else:
        features = Counter([" ".join(words)] if words else [])
    weights = [0] * BITS
    for feature, count in features.items():
        h = _feature_hash(feature)
        for bit in range(BITS):
            weights[bit] += count if (h >> bit) & 1 else -count
    value = 0
    for bit, weight in enumerate(weights):
        if weight > 0:
            value |= 1 << bit
    return to_signed(value)


def to_signed(value: int) -> int:
    """An unsigned 64-bit value as the signed int64 BSON stores."""
    value &= MASK
    return value - (1 << BITS) if value >> (BITS - 1) else value


def distance(a: int, b: int) -> int:
    """Hamming distance of two fingerprints (signed or unsigned)."""
    return ((a ^ b) & MASK).bit_count()


def bands(value: int) -> list[int]:
    """The four position-tagged 16-bit bands of a fingerprint, for the indexed lookup."""
    unsigned = value & MASK
    mask = (1 << BAND_BITS) - 1
    return [(i << BAND_BITS) | ((unsigned >> (i * BAND_BITS)) & mask) for i in range(BAND_COUNT)]
