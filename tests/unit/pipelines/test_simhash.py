"""Fingerprints: the content hash formula, SimHash stability, distance and bands."""

from __future__ import annotations

import hashlib
import itertools

from pipelines.simhash import bands, content_hash, distance, simhash, to_signed

from .helpers import body_text


def test_content_hash_formula() -> None:
    expected = hashlib.sha256(b"T\n\nB").hexdigest()
    assert content_hash("T", None, "B") == expected
    assert content_hash("T", "", "B") == expected
    assert content_hash("T", "L", "B") != expected


def test_simhash_is_stable_and_signed() -> None:
    text = body_text(1)
    value = simhash(text)
    assert value == simhash(text)
    assert -(2**63) <= value < 2**63
    assert simhash("") == 0
    assert simhash("Word") == simhash("word")  # casefolded
    # A fixed value: the fingerprint must not change across processes or releases.
    assert simhash("Moscow hosts the grain summit today") == simhash(
        "moscow  hosts the GRAIN summit today!"
    )
    assert to_signed(2**64 - 1) == -1


def test_near_texts_are_near_and_others_far() -> None:
    text = body_text(1, paragraphs=10)
    assert distance(simhash(text), simhash(text.upper().replace(".", "!"))) == 0
    words = text.split(" ")
    words[30] = "zeppelin"
    edited = " ".join(words)
    # One word of 400 changed: a few bits at most; an unrelated text: about half of 64.
    assert distance(simhash(text), simhash(edited)) <= 3
    for seed in range(2, 12):
        assert distance(simhash(text), simhash(body_text(seed, paragraphs=10))) > 12


def test_fingerprints_within_three_bits_share_a_band() -> None:
    value = simhash(body_text(3))
    for flips in itertools.combinations(range(0, 64, 5), 3):
        other = value
        for bit in flips:
            other ^= 1 << bit
        other = to_signed(other)
        assert distance(value, other) == 3
        assert set(bands(value)) & set(bands(other))
    assert len(set(bands(value))) == 4
