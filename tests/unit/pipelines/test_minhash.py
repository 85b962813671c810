"""Fingerprints: the content hash formula, MinHash stability, similarity and bands."""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

import pytest

from crawler import defaults
from pipelines.minhash import (
    BAND_COUNT,
    BINS,
    EMPTY_SIGNATURE,
    bands,
    candidate_probability,
    content_hash,
    shingles,
    signature,
    similarity,
)
from replica.launch import ReplicaProcess

from .helpers import body_text


def test_content_hash_formula() -> None:
    expected = hashlib.sha256(b"T\n\nB").hexdigest()
    assert content_hash("T", None, "B") == expected
    assert content_hash("T", "", "B") == expected
    assert content_hash("T", "L", "B") != expected


def test_signature_is_stable_and_fits_int64() -> None:
    text = body_text(1)
    sig = signature(text)
    assert sig == signature(text)
    assert len(sig) == BINS
    assert all(isinstance(v, int) and 0 <= v < 2**58 for v in sig)
    assert signature("Word") == signature("word")  # casefolded
    assert signature("Moscow hosts the grain summit today") == signature(
        "moscow  hosts the GRAIN summit today!"
    )
    assert shingles("a b c d") == {"a b c", "b c d"}
    assert shingles("two words") == {"two words"}


def test_signature_values_are_fixed() -> None:
    """Stored signatures are compared with new ones: the formula must never drift."""
    one = signature("one")  # one shingle: one real bin, the others filled by rotation
    h = int.from_bytes(hashlib.blake2b(b"one", digest_size=8).digest(), "big")
    slot, value = h >> 58, h & (2**58 - 1)
    assert one[slot] == value
    for step in range(1, BINS):
        assert one[(slot - step) % BINS] == (value + step) % 2**58


def _reference_signature(text: str) -> list[int]:
    """The signature as first written (one shingle at a time), which stored signatures were made
    with: the faster ``signature`` must give exactly the same values."""
    words = re.findall(r"\w+", text.casefold())
    if len(words) < 3:
        features = {" ".join(words)} if words else set()
    else:
        features = {" ".join(words[i : i + 3]) for i in range(len(words) - 2)}
    if not features:
        return []
    unset = 1 << 58
    mins = [unset] * BINS
    for feature in features:
        h = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "big")
        mins[h >> 58] = min(mins[h >> 58], h & (unset - 1))
    filled = list(mins)
    for slot in range(BINS):
        if mins[slot] == unset:
            step = 1
            while mins[(slot + step) % BINS] == unset:
                step += 1
            filled[slot] = (mins[(slot + step) % BINS] + step) & (unset - 1)
    return filled


def test_signature_equals_the_reference_formula() -> None:
    rng = random.Random(16)
    alphabet = "abcdeéжщ文字 \n\t.,-'0123456789"
    texts = ["", "one", "two words", "a b c", "a a a a a", "Ёлка ёлка ЁЛКА"]
    texts += [body_text(seed, paragraphs=rng.randint(1, 12)) for seed in range(40)]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 400))) for _ in range(200)]
    for text in texts:
        assert signature(text) == _reference_signature(text), text


def test_empty_text_matches_nothing() -> None:
    assert signature("") == list(EMPTY_SIGNATURE) == signature(" .,!? — ")
    assert bands(signature("")) == []
    assert similarity(signature(""), signature("")) == 0.0
    assert similarity(signature(""), signature(body_text(1))) == 0.0


def test_a_copy_is_similar_and_other_texts_are_not() -> None:
    text = body_text(1, paragraphs=10)
    assert similarity(signature(text), signature(text.upper().replace(".", "!"))) == 1.0
    rng = random.Random(5)
    words = text.split(" ")
    for index in rng.sample(range(len(words)), 6):
        words[index] = "zeppelin"
    edited = " ".join(words)
    assert similarity(signature(text), signature(edited)) >= 0.8
    for seed in range(2, 12):
        assert similarity(signature(text), signature(body_text(seed, paragraphs=10))) < 0.3


def test_bands_shape_and_collisions() -> None:
    sig = signature(body_text(3))
    keys = bands(sig)
    assert len(keys) == BAND_COUNT == len(set(keys))
    assert all(-(2**63) <= k < 2**63 for k in keys)
    # Equal rows in different bands still give different keys: the band index is in the key.
    flat = [7] * BINS
    assert len(set(bands(flat))) == BAND_COUNT
    # A change in one band's rows changes that band's key only.
    other = list(sig)
    other[0] ^= 1
    assert [a == b for a, b in zip(bands(sig), bands(other), strict=True)] == [False] + [True] * (
        BAND_COUNT - 1
    )
    assert candidate_probability(0.88) > 0.99 and candidate_probability(0.5) < 0.2


@pytest.fixture(scope="module")
def replica_truth() -> dict[str, Any]:
    with ReplicaProcess(articles=2000, seed=11) as process:
        return process.truth()


def test_replica_copies_are_found_and_unrelated_articles_are_not(
    replica_truth: dict[str, Any],
) -> None:
    """On the replica's ground truth: every republished copy is a candidate and a match; no
    two unrelated articles reach the threshold (they share the replica's sentence templates)."""
    articles = replica_truth["articles"]
    sigs = {a["id"]: signature("\n\n".join(a["body"])) for a in articles}
    keys = {aid: set(bands(sig)) for aid, sig in sigs.items()}
    root = {a["id"]: a["duplicate_of"] or a["id"] for a in articles}
    threshold = defaults.TASS_DEDUPE_MIN_SIMILARITY

    copies = [(a["id"], a["duplicate_of"]) for a in articles if a["duplicate_of"]]
    assert len(copies) >= 10
    for copy, original in copies:
        assert keys[copy] & keys[original], f"{copy} shares no band with {original}"
        assert similarity(sigs[copy], sigs[original]) >= threshold, (copy, original)

    # Every unrelated pair (about two million; a few seconds).
    ids = sorted(sigs)
    worst, pair, count = 0.0, (0, 0), 0
    for i, a in enumerate(ids):
        sig_a, root_a = sigs[a], root[a]
        for b in ids[i + 1 :]:
            if root[b] != root_a:
                count += 1
                value = similarity(sig_a, sigs[b])
                if value > worst:
                    worst, pair = value, (a, b)
    assert count >= 20_000
    assert worst < threshold, f"unrelated {pair} reach {worst}"
