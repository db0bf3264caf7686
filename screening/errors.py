"""The one error base of the package.

Every error that ``screening`` or ``pipelines`` raises on purpose derives from :class:`ScreeningError`,
so a caller (the command line, a notebook) can catch the whole family in one clause and show its message,
which is written to be read by a scientist: what is wrong and, where there is one, what to do about it.
Each subclass keeps its historical built-in base (``ValueError``, ``RuntimeError``) as well, so existing
``except ValueError`` clauses still hold.
"""

from __future__ import annotations


class ScreeningError(Exception):
    """Base of every error raised on purpose by ``screening`` and ``pipelines``."""


class InputError(ScreeningError, ValueError):
    """Bad input or settings from the user (the command line exits with status 2)."""


class MissingInputError(InputError, FileNotFoundError):
    """A file or dataset the work needs is not there (the message says what writes it)."""


class InputTypeError(InputError, TypeError):
    """An argument of the wrong type (a DataFrame where a Structure was expected, ...)."""


class InternalError(ScreeningError, RuntimeError):
    """A broken invariant of the package itself: a bug to report, not a problem of the input."""
