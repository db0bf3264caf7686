"""Writing a benchmark's section into BENCHMARKS.md (shared by the benchmark scripts)."""

from __future__ import annotations

from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def replace_section(title: str, section: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace the section headed ``title`` (a ``## `` line) in ``path`` by ``section``, or append it."""
    text = path.read_text()
    start = text.find("\n" + title + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(title) + 2)
        text = text[: start + 1] + section + (text[end:] if end >= 0 else "")
    path.write_text(text)
