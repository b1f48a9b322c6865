"""Shared checks of option values: one message per mistake, in the caller's words.

Messages name the Python keyword (``k``, ``frame_rate``...); the command line
rewrites those names into its own options (see ``roitrace.cli``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ParameterError

__all__ = ["check_subject", "choice", "frame_rate", "integer", "number", "pixels", "size_range"]


def number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    hint: str = "",
) -> float:
    """Return ``value`` as a finite float within the bounds or raise ParameterError.

    Examples
    --------
    >>> number("k", 2)
    2.0
    >>> number("k", float("nan"))
    Traceback (most recent call last):
    ...
    roitrace.errors.ParameterError: k must be finite, got nan
    """
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None
    bad = not math.isfinite(x)
    if low is not None:
        bad |= x <= low if low_open else x < low
    if high is not None:
        bad |= x >= high if high_open else x > high
    if bad:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        rule = " and ".join(s for s in (lo, hi) if s) or "finite"
        raise ParameterError(f"{name} must be {rule}, got {value!r}{hint}")
    return x


def integer(name: str, value: Any, *, low: int) -> int:
    """Return ``value`` as an int of at least ``low`` or raise ParameterError."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ParameterError(f"{name} must be >= {low}, got {value}")
    return int(value)


def frame_rate(value: Any) -> float | None:
    """A frame rate given by the user: None, or a finite number of frames per second > 0."""
    if value is None:
        return None
    return number("frame_rate", value, low=0.0, low_open=True, hint=" (frames per second)")


def size_range(min_size: Any, max_size: Any) -> tuple[int | None, int | None]:
    """Check a component-size range in pixels: each >= 1 and ``min_size <= max_size``."""
    lo = None if min_size is None else integer("min_size", min_size, low=1)
    hi = None if max_size is None else integer("max_size", max_size, low=1)
    if lo is not None and hi is not None and lo > hi:
        raise ParameterError(
            f"min_size={lo} is larger than max_size={hi}: no ROI could be kept; "
            "give a min_size no larger than max_size"
        )
    return lo, hi


# -- NWB subject metadata, checked as nwbinspector checks it ------------------------------
_SEXES = {"M": "male", "F": "female", "U": "unknown", "O": "other"}
# nwbinspector's own patterns (checks/_nwbfile_metadata.py): ISO 8601 durations such as
# P90D, P12W, P2Y, PT12H, and ranges of them (P90D/P120D, P90D/).
_DURATION = (
    r"P(?!$)(\d+(?:\.\d+)?Y)?(\d+(?:\.\d+)?M)?(\d+(?:\.\d+)?W)?(\d+(?:\.\d+)?D)?"
    r"(T(?=\d)(\d+(?:\.\d+)?H)?(\d+(?:\.\d+)?M)?(\d+(?:\.\d+)?S)?)?"
)
_AGE = re.compile(rf"({_DURATION})|({_DURATION})?/({_DURATION})?")
_SPECIES = re.compile(r"([A-Z][a-z]* [a-z]+)|(http://purl.obolibrary.org/obo/NCBITaxon_\d+)")


def check_subject(subject: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Check NWB subject fields the way nwbinspector does; return them as a dict.

    ``sex`` is one of M, F, U, O; ``age`` an ISO 8601 duration such as ``P90D``
    (or a range ``P90D/P120D``); ``species`` a Latin binomial such as ``Mus
    musculus`` or an NCBI taxonomy link (``http://purl.obolibrary.org/obo/NCBITaxon_10090``).

    Examples
    --------
    >>> check_subject({"sex": "M", "age": "P90D", "species": "Mus musculus"})["age"]
    'P90D'
    >>> check_subject({"sex": "male"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    roitrace.errors.ParameterError: sex='male': NWB uses M, F, U (unknown) or O ...
    """
    if subject is None:
        return None
    out = dict(subject)
    sex = out.get("sex")
    if sex is not None and sex not in _SEXES:
        hint = {v: k for k, v in _SEXES.items()}.get(str(sex).strip().lower())
        raise ParameterError(
            f"sex={sex!r}: NWB uses M, F, U (unknown) or O (other)"
            + (f"; for {str(sex).strip().lower()} write {hint}" if hint else "")
        )
    age = out.get("age")
    if age is not None and not _AGE.fullmatch(str(age)):
        raise ParameterError(
            f"age={age!r}: NWB wants an ISO 8601 duration, e.g. P90D (90 days), P12W "
            "(12 weeks), P2Y (2 years), or a range such as P90D/P120D"
        )
    species = out.get("species")
    if species is not None and not _SPECIES.fullmatch(str(species)):
        common = {"mouse": "Mus musculus", "rat": "Rattus norvegicus", "human": "Homo sapiens"}
        hint = common.get(str(species).strip().lower())
        raise ParameterError(
            f"species={species!r}: NWB wants the Latin binomial, e.g. 'Mus musculus', or an "
            "NCBI taxonomy link (http://purl.obolibrary.org/obo/NCBITaxon_10090)"
            + (f"; for {species} write {hint!r}" if hint else "")
        )
    return out


def choice(name: str, value: Any, choices: tuple[str, ...], *, hint: str = "") -> str:
    """Return ``value`` if it is one of ``choices``, else raise ParameterError listing them.

    Examples
    --------
    >>> choice("method", "mean", ("mean", "median"))
    'mean'
    >>> choice("method", "mena", ("mean", "median"))
    Traceback (most recent call last):
    ...
    roitrace.errors.ParameterError: method='mena' is unknown; use one of mean, median
    """
    if not isinstance(value, str) or value not in choices:
        raise ParameterError(f"{name}={value!r} is unknown; use one of {', '.join(choices)}{hint}")
    return value


def pixels(name: str, value: Any, *, low: int = 0) -> int:
    """A distance or size in whole pixels (``2`` or ``2.0``), at least ``low``.

    Examples
    --------
    >>> pixels("gap", 2.0)
    2
    """
    try:
        ok = not isinstance(value, bool) and int(value) == value and value >= low
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ParameterError(f"{name}={value!r}: use a whole number of pixels, {low} or more")
    return int(value)
