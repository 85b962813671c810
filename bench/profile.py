"""Summarise a py-spy profile (``--format raw``: one collapsed stack and its count a line).

``top_functions`` gives each function's share of all samples on its own (the leaf frame:
where the CPU was) and including what it called (anywhere in the stack, once per sample).
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


@dataclass(frozen=True, slots=True)
class Profile:
    samples: int
    self_share: list[tuple[str, float]]
    """Functions by the share of samples in which they were the leaf frame."""
    total_share: list[tuple[str, float]]
    """Functions by the share of samples in which they were anywhere on the stack."""
    hot_lines: list[tuple[str, float]]
    """Source lines (file:line of the leaf frame) by their share of samples."""
    project_share: list[tuple[str, float]]
    """The project's own functions (``crawler/``, ``pipelines/``), including callees."""


def py_spy() -> str | None:
    """The py-spy binary next to this interpreter, or on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    if local.exists():
        return str(local)
    return shutil.which("py-spy")


def _name(frame: str, *, line: bool = False) -> str:
    frame = frame.strip()
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    if line:
        path = frame[frame.rindex("(") + 1 : -1]
    for marker in ("site-packages/", f"{ROOT}/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def _is_project(name: str) -> bool:
    return "(crawler/" in name or "(pipelines/" in name


def summarise(path: Path, top: int = 15) -> Profile:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        raw = [f for f in stack.split(";") if f.strip().endswith(")")]
        frames = [_name(f) for f in raw]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        lines[_name(raw[-1], line=True)] += count
        for name in set(frames):
            total[name] += count
    if not samples:
        return Profile(0, [], [], [], [])
    return Profile(
        samples,
        [(name, n / samples) for name, n in own.most_common(top)],
        [(name, n / samples) for name, n in total.most_common(top * 3)],
        [(name, n / samples) for name, n in lines.most_common(top)],
        [(name, n / samples) for name, n in total.most_common() if _is_project(name)][:top],
    )


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Summarise a py-spy raw profile.")
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    prof = summarise(args.profile, args.top)
    print(f"{prof.samples} samples")
    for title, rows in (
        ("self", prof.self_share),
        ("hot lines", prof.hot_lines),
        ("project, including callees", prof.project_share),
        ("including callees", prof.total_share),
    ):
        print(f"\n{title}:")
        for name, share in rows:
            print(f"  {share:6.1%}  {name}")


if __name__ == "__main__":
    main()
