"""The command line speaks in its own options: library messages name Python keywords
(``frame_rate=``), the user typed ``--frame-rate``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import RoitraceError

# -- the command line speaks in its own options ---------------------------------------------
#: Python keywords that library messages name, and the option a command-line user types.
_OPTION_OF = {
    "value": "--threshold",
    "q": "--q",
    "k": "--k",
    "method": "--method",
    "block_size": "--block-size",
    "offset": "--offset",
    "kind": "--kind",
    "how": "--how",
    "proportion": "--proportion",
    "overlap": "--overlap",
    "min_size": "--min-size",
    "max_size": "--max-size",
    "neuropil_factor": "--neuropil-factor",
    "frame_rate": "--frame-rate",
    "dataset": "--dataset",
    "axes": "--axes",
    "channel": "--channel",
    "chunk_frames": "--chunk-frames",
    "plane_segmentation": "--plane-segmentation",
    "subtract_global": "--subtract-global",
    "sex": "--sex",
    "age": "--age",
    "species": "--species",
    "window": "--baseline-window",
    "sigma": "--baseline-sigma",
    "noise_window": "--baseline-noise-window",
    "model": "--deconvolve-model",
    "penalty": "--deconvolve-penalty",
    "tau": "--deconvolve-tau",
    "max_mb": "--max-mb",
    "min_snr": "--min-snr",
    "max_negative": "--max-negative",
    "min_ring_fraction": "--min-ring-fraction",
    "min_f0_noise": "--min-f0-noise",
}
_PHRASES = (
    (re.compile(r"truncated='keep'"), "--keep-truncated"),
    (re.compile(r"allow_pickle=True"), "--trust-pickle"),
    (re.compile(r"neuropil=\{[^}]*\}"), "--neuropil-gap and --neuropil-width"),
    (re.compile(r"without neuropil="), "without --neuropil-gap and --neuropil-width"),
    (re.compile(r"frames=\((\d+), (\d+)\)"), r"--frames \1:\2"),
    (re.compile(r"; for a single frame use image\[np\.newaxis\]"), ""),
    (re.compile(r"roitrace\.zscore"), "z-scores (roitrace.zscore in Python)"),
    (re.compile(r"a movie is read with roitrace\.open_movie"), "give a result, not a movie"),
    (re.compile(r"written by roitrace\.save\?"), "written by roitrace?"),
    # ROI files are always read for the movie's frames: say so instead of shape=
    (
        re.compile(
            r"check that shape= is (?:the frame shape of the movie (?:they were|it was) drawn "
            r"on|the movie's frame shape)"
        ),
        "check that they were drawn on this movie",
    ),
    (
        re.compile(
            r"shape=(\(\d+, \d+\)) was given; leave shape out or pass the ROIs' own frame size"
        ),
        r"the movie's frames are \1: use the ROIs made for this movie",
    ),
    (re.compile(r"shape=(\(\d+, \d+\)) but"), r"the movie's frames are \1 but"),
    (re.compile(r"Leave shape= out to use suite2p's size"), "Use the movie they were made for"),
    # thresholds are applied to the projection the command made
    (re.compile(r"\bthe image holds"), "the projection holds"),
    (re.compile(r"(\d+ x \d+) image is NaN"), r"\1 projection is NaN"),
    (
        re.compile(r"pass the right shape=\(Y, X\), or the file's masks belong to another movie"),
        "the file's masks belong to another movie: use the movie they were made for",
    ),
)
_KEYWORD = re.compile(
    r"(?<![\w.\-'\"])(" + "|".join(sorted(_OPTION_OF, key=len, reverse=True)) + r")"
    r"(=('[^']*'|\"[^\"]*\"|[^\s,;:)]+)?)?(?![\w])"
)


def cli_words(message: str, flags: dict[str, str] | None = None) -> str:
    """Rewrite a library message's Python keywords into command-line options.

    ``name=value`` becomes ``--name value``; a bare keyword is rewritten when it
    cannot be an ordinary word (it has an underscore, or starts "... must be").
    ``flags`` overrides the options of some keywords: ``method`` is ``--method``
    for a threshold, but ``--how`` for the extraction and ``--kind`` for a projection.

    Examples
    --------
    >>> cli_words("q=120 is outside; use method='percentile'")
    '--q 120 is outside; use --method percentile'
    >>> cli_words("neuropil_factor must be >= 0, got nan")
    '--neuropil-factor must be >= 0, got nan'
    >>> cli_words("proportion=0.2 is only for method='trimmed_mean'", {"method": "--how"})
    '--proportion 0.2 is only for --how trimmed_mean'
    """
    for pattern, text in _PHRASES:
        message = pattern.sub(text, message)
    names = {**_OPTION_OF, **(flags or {})}

    def option(m: re.Match) -> str:
        name, eq, value = m.group(1), m.group(2), m.group(3)
        flag = names[name]
        if eq:
            return f"{flag} {value.strip(chr(39) + chr(34))}" if value else flag
        if "_" in name or m.string.startswith(" must be", m.end()):
            return flag
        return m.group(0)

    return _KEYWORD.sub(option, message)


#: Keyword -> option overrides of the stage running now (see _speaking).
_stage_flags: dict[str, str] = {}


def stage_flags() -> dict[str, str]:
    """The keyword -> option overrides of the stage running now."""
    return _stage_flags


@contextmanager
def _speaking(**flags: str) -> Iterator[None]:
    """Inside the block, errors and warnings name these options for some keywords
    (``_speaking(method="--how")`` around the extraction)."""
    global _stage_flags
    before, _stage_flags = _stage_flags, flags
    try:
        yield
    except RoitraceError as exc:
        exc.args = (cli_words(str(exc), flags), *exc.args[1:])
        raise
    finally:
        _stage_flags = before
