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


def publish(title: str, section: str, write: bool) -> None:
    """Print a benchmark's section, and write it into BENCHMARKS.md when ``write``."""
    print(section)
    if write:
        replace_section(title, section)


def code_revision() -> str:
    """The short hash of the checked-out commit (what the figures were measured on)."""
    import subprocess

    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=BENCHMARKS_MD.parent, capture_output=True, text=True
    ).stdout.strip()
