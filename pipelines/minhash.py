"""Content fingerprints: the exact ``content_hash`` and a MinHash signature with its LSH bands.

The signature is a one-permutation MinHash (OPH) of the set of word 3-shingles of the
casefolded text (words are ``\\w+`` runs; a text of one or two words is one shingle). Each
shingle is hashed once with an 8-byte BLAKE2b (stable across processes, unlike ``hash()``): the
top 6 bits pick one of 64 bins, the other 58 bits are the value, and each bin keeps its minimum.
Empty bins are filled by rotation densification: an empty bin takes the value of the next
non-empty bin to its right (circularly) plus the number of steps taken, so two texts fill a bin
alike only when they agree on where the values come from. Values stay below ``2**58``, so a
signature is a list of 64 BSON int64s.

The fraction of equal bins estimates the Jaccard similarity of the shingle sets. ``bands`` cuts
the first 60 bins into 10 bands of 6 rows and hashes each band, with its index, to a signed
int64 key whose top 4 bits are the band index, so keys of different bands never collide. Two
texts are candidates when they share a key, which happens with probability
``1 - (1 - s**6)**10`` at similarity ``s`` (0.998 at 0.88, 0.15 at 0.5). One indexed ``$in``
query on the stored keys finds the candidates; ``similarity`` then decides.

A text without words gets ``EMPTY_SIGNATURE`` (no bins, no bands): it matches nothing.
"""

from __future__ import annotations

import hashlib
import operator
import re
import struct

BINS = 64
BIN_BITS = 6
VALUE_BITS = 64 - BIN_BITS
VALUE_MASK = (1 << VALUE_BITS) - 1
SHINGLE = 3
BAND_COUNT = 10
BAND_ROWS = 6

EMPTY_SIGNATURE: tuple[int, ...] = ()
"""The signature of a text without words: no bins, so no bands and similarity 0 to anything."""

_WORD = re.compile(r"\w+")
_BAND = struct.Struct(f">B{BAND_ROWS}Q")
_KEY_BITS = 60  # the top 4 bits of a band key hold its band index
_KEY_MASK = (1 << _KEY_BITS) - 1


def content_hash(title: str, lead: str | None, body: str) -> str:
    """SHA-256 hex of ``title + "\\n" + (lead or "") + "\\n" + body``."""
    text = f"{title}\n{lead or ''}\n{body}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _hash64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _shingle_list(text: str) -> list[str]:
    """The word 3-shingles of the casefolded text in text order, repeats included."""
    words = _WORD.findall(text.casefold())
    if len(words) < SHINGLE:
        return [" ".join(words)] if words else []
    return [f"{a} {b} {c}" for a, b, c in zip(words, words[1:], words[2:], strict=False)]


def shingles(text: str) -> set[str]:
    """The word 3-shingles of the casefolded text (one shingle for one or two words)."""
    return set(_shingle_list(text))


def signature(text: str) -> list[int]:
    """The 64-bin one-permutation MinHash of ``text`` (``EMPTY_SIGNATURE`` without words).

    The per-shingle work is what C does: one BLAKE2b digest each (the formula stored
    signatures were made with), the digests unpacked at once, and sorted so that each bin's
    minimum is the last value a dict comprehension writes to it. A repeated shingle changes no
    minimum, so the shingles need not be made a set first. (numpy did no better: the digests
    are the cost, and they must stay BLAKE2b.)"""
    features = _shingle_list(text)
    if not features:
        return list(EMPTY_SIGNATURE)
    blake2b = hashlib.blake2b
    digests = b"".join([blake2b(f.encode("utf-8"), digest_size=8).digest() for f in features])
    hashes = sorted(struct.unpack(f">{len(features)}Q", digests), reverse=True)
    mins = {h >> VALUE_BITS: h & VALUE_MASK for h in hashes}  # the smallest is written last
    if len(mins) == BINS:
        return [mins[slot] for slot in range(BINS)]
    filled = []
    for slot in range(BINS):
        step = 0
        while (slot + step) % BINS not in mins:
            step += 1  # ends: at least one bin holds a value
        filled.append((mins[(slot + step) % BINS] + step) & VALUE_MASK)
    return filled


def similarity(a: list[int], b: list[int]) -> float:
    """The fraction of equal bins (estimated Jaccard similarity); 0.0 if either is empty."""
    if len(a) != BINS or len(b) != BINS:
        return 0.0
    equal: int = sum(map(operator.eq, a, b))
    return equal / BINS


def bands(sig: list[int]) -> list[int]:
    """The LSH band keys of a signature: 10 signed int64s, distinct per band index."""
    if len(sig) != BINS:
        return []
    keys = []
    for band in range(BAND_COUNT):
        rows = sig[band * BAND_ROWS : (band + 1) * BAND_ROWS]
        key = (band << _KEY_BITS) | (_hash64(_BAND.pack(band, *rows)) & _KEY_MASK)
        keys.append(key - (1 << 64) if key >> 63 else key)
    return keys


def candidate_probability(s: float) -> float:
    """The chance that two signatures of similarity ``s`` share at least one band."""
    return 1.0 - (1.0 - s**BAND_ROWS) ** BAND_COUNT
