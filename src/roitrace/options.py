"""Options shared by the pipeline's functions: each list of choices and each option
object is defined, checked and documented here, once.

* The choices of every ``method=`` (projections, thresholds, aggregations, pixel
  weights, baselines) and of ``overlap=``; the command line's choices derive from
  these tuples.
* :class:`Neuropil`: the ring around each cell (``extract(neuropil=...)``).
* :class:`Baseline`: how F0 is found for dF/F (``extract(baseline=...)``; the same
  keywords as :func:`roitrace.baseline`).
* :class:`Execution`: which frames are read, in chunks of what size, on how many
  threads, with or without a progress bar. Every function that streams a movie
  takes ``execution=`` or the same names as keywords (``frames=``...).
* :class:`NWBSession`, :class:`NWBImagingPlane`: what an NWB file records about the
  session and the imaging plane (``save(..., session=, plane=)``).

A plain dict with the same keys is accepted wherever an option object is.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from ._validate import choice, integer, number, pixels
from .errors import ParameterError

__all__ = [
    "AGGREGATION_METHODS",
    "BASELINE_METHODS",
    "DECONVOLUTION_MODELS",
    "DECONVOLUTION_PENALTIES",
    "OVERLAP_MODES",
    "PROJECTION_METHODS",
    "THRESHOLD_METHODS",
    "WEIGHT_METHODS",
    "Baseline",
    "Deconvolve",
    "Execution",
    "NWBImagingPlane",
    "NWBSession",
    "Neuropil",
]

#: ``projection(method=)``: a statistic of each pixel over time.
PROJECTION_METHODS = ("mean", "max", "min", "std", "median", "percentile", "correlation")
#: ``threshold(method=)``.
THRESHOLD_METHODS = ("absolute", "percentile", "sigma", "otsu", "li", "triangle", "local")
#: ``aggregate(method=)`` / ``extract(method=)``: how a cell's pixels are combined.
AGGREGATION_METHODS = ("mean", "median", "weighted", "trimmed_mean")
#: ``pixel_weights(method=)`` / ``extract(weights=)``.
WEIGHT_METHODS = ("brightness", "proximity", "roi")
#: ``baseline(method=)`` / ``dff(method=)``.
BASELINE_METHODS = ("percentile", "rolling_percentile", "maximin", "inactive_median")
#: ``extract(overlap=)``: pixels shared by several ROIs.
OVERLAP_MODES = ("keep", "drop")

Opt = TypeVar("Opt", bound="_Option")


class _Option:
    """Shared by the option objects: built from a dict, checked once, shown as a dict."""

    #: The keyword under which functions take this object (for messages).
    keyword: ClassVar[str] = ""

    @classmethod
    def coerce(cls: type[Opt], value: Any) -> Opt | None:
        """``value`` as this option object: None stays None; a dict gives its keys."""
        if value is None or isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
            unknown = sorted(set(value) - set(names))
            if unknown:
                raise ParameterError(
                    f"{cls.keyword}: unknown key{'s' if len(unknown) > 1 else ''} "
                    f"{', '.join(map(repr, unknown))}; the keys are {', '.join(names)}"
                )
            need = [f.name for f in dataclasses.fields(cls) if _required(f)]  # type: ignore[arg-type]
            missing = [n for n in need if n not in value]
            if missing:
                raise ParameterError(
                    f"{cls.keyword}={dict(value)!r} lacks {' and '.join(map(repr, missing))}: "
                    f"give {' and '.join(map(repr, need))}, e.g. {cls.keyword}={cls._example()}"
                )
            return cls(**value)
        raise ParameterError(
            f"{cls.keyword}={value!r}: give a roitrace.{cls.__name__} or a dict, "
            f"e.g. {cls.keyword}={cls._example()}"
        )

    @classmethod
    def _example(cls) -> str:
        return "{...}"

    def as_dict(self) -> dict[str, Any]:
        """The options as a plain dict (what result files record)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


@dataclass(frozen=True)
class Neuropil(_Option):
    """A neuropil ring around each cell, subtracted from its trace.

    Parameters
    ----------
    gap : int
        The ring starts this many pixels away from the cell.
    width : int
        Ring width in pixels.
    exclude_gap : int
        Every ring leaves out the pixels of every cell, dilated by this many
        pixels (default 0: just the cells).
    min_pixels : int, optional
        Grow each ring outward, one pixel of width at a time, until it holds this
        many pixels (suite2p uses 350).

    Examples
    --------
    >>> Neuropil(gap=2, width=3)
    Neuropil(gap=2, width=3, exclude_gap=0, min_pixels=None)
    >>> Neuropil.coerce({"gap": 2, "width": 3}) == Neuropil(2, 3)
    True
    """

    keyword: ClassVar[str] = "neuropil"

    gap: int
    width: int
    exclude_gap: int = 0
    min_pixels: int | None = None

    def __post_init__(self) -> None:
        # numpy integers or 2.0 in, plain ints out: the object prints, pickles and saves plainly
        for f, low in (("gap", 0), ("width", 1), ("exclude_gap", 0), ("min_pixels", 0)):
            v = getattr(self, f)
            if v is not None:
                object.__setattr__(self, f, pixels(f"neuropil {f}", v, low=low))

    @classmethod
    def _example(cls) -> str:
        return "{'gap': 2, 'width': 1}"


@dataclass(frozen=True)
class Baseline(_Option):
    """How F0, the resting fluorescence of dF/F, is found (see :func:`roitrace.baseline`).

    Parameters
    ----------
    method : {"percentile", "rolling_percentile", "maximin", "inactive_median"}
        ``"percentile"``: the ``q``-th percentile of the whole trace, or of a
        sliding ``window``. ``"rolling_percentile"``: the ``q``-th percentile in a
        sliding ``window`` (the same numbers as ``"percentile"`` with a window).
        ``"maximin"``: suite2p's, a Gaussian smoothing (``sigma`` frames), then a
        running minimum and a running maximum over ``window``. ``"inactive_median"``:
        the Allen Institute's, the running median over ``window`` of the frames
        that are not active. See :func:`roitrace.baseline` for each definition.
    q : float, optional
        The percentile, 0 to 100: 8 by default for the percentile methods; for
        ``"inactive_median"`` the running low percentile that marks active frames
        (10 by default, as published). Not for ``"maximin"``.
    window : int or str, optional
        The sliding window: a number of frames, or a text in seconds such as
        ``"60s"`` (converted with the recording's frame rate). Default: the whole
        trace for ``"percentile"``; 60 s for ``"rolling_percentile"`` and
        ``"maximin"``; 600 s for ``"inactive_median"`` (a running method without a
        frame rate needs a window in frames).
    sigma : float, optional
        ``"maximin"`` only: the Gaussian's standard deviation in frames (10 by
        default, suite2p's ``sig_baseline``).
    noise_window : int or str, optional
        ``"inactive_median"`` only: the short median filter whose residual gives the
        noise, in (odd) frames or seconds (default 3.333 s, or 31 frames without a
        frame rate, as published).

    Examples
    --------
    >>> Baseline(q=10)
    Baseline(method='percentile', q=10.0, window=None, sigma=None, noise_window=None)
    >>> Baseline(method="maximin", window="60s").describe()
    'maximin (Gaussian sigma 10 frames, running min then max over 60 s)'
    """

    keyword: ClassVar[str] = "baseline"

    method: str = "percentile"
    q: float | None = None
    window: int | str | None = None
    sigma: float | None = None
    noise_window: int | str | None = None

    #: Defaults in seconds where ``window`` is not given (None: the whole trace).
    DEFAULT_WINDOW_S: ClassVar[dict[str, float | None]] = {
        "percentile": None,
        "rolling_percentile": 60.0,
        "maximin": 60.0,
        "inactive_median": 600.0,
    }

    def __post_init__(self) -> None:
        method = choice("baseline method", self.method, BASELINE_METHODS)
        given = {
            name for name in ("q", "sigma", "noise_window") if getattr(self, name) is not None
        }
        allowed = {
            "percentile": {"q"},
            "rolling_percentile": {"q"},
            "maximin": {"sigma"},
            "inactive_median": {"q", "noise_window"},
        }[method]
        extra = sorted(given - allowed)
        if extra:
            uses = ", ".join(f"{n}=" for n in ["window", *sorted(allowed)])
            named = " and ".join(f"{n}={getattr(self, n)!r}" for n in extra)
            raise ParameterError(
                f"{named} {'does' if len(extra) == 1 else 'do'} not apply to "
                f"method={method!r}, which takes {uses}; leave "
                f"{' and '.join(n + '=' for n in extra)} out or choose another method"
            )
        if "q" in allowed:
            q = 10.0 if method == "inactive_median" else 8.0
            q = q if self.q is None else number("q", self.q, low=0.0, high=100.0)
            object.__setattr__(self, "q", q)
        if method == "maximin":
            sigma = 10.0 if self.sigma is None else self.sigma
            object.__setattr__(self, "sigma", number("sigma", sigma, low=0.0))
        for name in ("window", "noise_window"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, frames_or_seconds(name, value))

    @classmethod
    def _example(cls) -> str:
        return "{'q': 8}"

    def in_frames(self, frame_rate: float | None, n_frames: int) -> Baseline:
        """These options for one recording: every window in frames, defaults filled.

        Seconds become frames as each method's reference does: suite2p truncates
        (``int(s * fs)``, maximin); the Allen Institute rounds and makes the window
        odd (inactive_median); rolling_percentile rounds.

        Raises
        ------
        ParameterError
            A window is needed in seconds without ``frame_rate``, or does not fit
            the ``n_frames`` of the trace.

        Examples
        --------
        >>> Baseline(method="inactive_median").in_frames(30.0, 36000)
        Baseline(method='inactive_median', q=10.0, window=18001, sigma=None, noise_window=101)
        """
        method = self.method
        window = self.window
        if window is None and self.DEFAULT_WINDOW_S[method] is not None:
            if frame_rate is None:
                raise ParameterError(
                    f"method={method!r} needs a window: give window= in frames, or "
                    f"frame_rate= (frames per second) for the default of "
                    f"{self.DEFAULT_WINDOW_S[method]:g} s"
                )
            window = f"{self.DEFAULT_WINDOW_S[method]:g}s"
        window = _to_frames("window", window, frame_rate, method)
        noise_window = self.noise_window
        if method == "inactive_median" and noise_window is None:
            noise_window = 31 if frame_rate is None else "3.333s"
        noise_window = _to_frames("noise_window", noise_window, frame_rate, method)
        defaults = {
            "window": self.window is None and self.DEFAULT_WINDOW_S[method] is not None,
            "noise_window": self.noise_window is None,
        }
        for name, value in (("window", window), ("noise_window", noise_window)):
            if value is None:
                continue
            if defaults[name] and value >= n_frames:
                raise ParameterError(
                    f"method={method!r}: the default {name} ({value} frames) is not shorter "
                    f"than the trace ({n_frames} frames); give a shorter {name}= in frames "
                    "or seconds"
                )
            if method == "inactive_median":
                # the Allen Institute's rule (_check_kernel): odd and shorter than the trace
                if value % 2 == 0:
                    raise ParameterError(
                        f"{name}={value} frames: method='inactive_median' needs an odd "
                        f"window (a centred median); give {name}={value + 1}"
                    )
                if value >= n_frames:
                    raise ParameterError(
                        f"{name}={value} frames is not shorter than the trace ({n_frames} "
                        f"frames): give a {name} below {n_frames} frames, or another method"
                    )
            elif value > n_frames:
                raise ParameterError(
                    f"window={value} frames is longer than the trace ({n_frames} frames): "
                    f"give a window from 1 to {n_frames} frames"
                )
        return dataclasses.replace(self, window=window, noise_window=noise_window)

    def describe(self) -> str:
        """In words, for the result's attributes."""
        w = self.window
        span = f"{w} frames" if isinstance(w, int) else f"{str(w)[:-1]} s" if w else None
        if self.method == "percentile":
            where = "" if span is None else f" in a sliding window of {span}"
            return f"{self.q:g}th percentile{where}"
        if self.method == "rolling_percentile":
            return (
                f"rolling {self.q:g}th percentile in a sliding window of "
                f"{span or 'the default 60 s'}"
            )
        if self.method == "maximin":
            return (
                f"maximin (Gaussian sigma {self.sigma:g} frames, running min then max over "
                f"{span or 'the default 60 s'})"
            )
        nw = self.noise_window
        noise = f"{nw}-frame" if isinstance(nw, int) else f"{str(nw)[:-1]} s" if nw else None
        return (
            f"median of the inactive frames over {span or 'the default 600 s'} (active: above "
            f"the running {self.q:g}th percentile + 3 noise SD; noise from a "
            f"{noise or 'default (3.333 s, or 31-frame)'} median filter)"
        )


_SECONDS = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|frames?)?\s*$", re.IGNORECASE)


def frames_or_seconds(name: str, value: Any) -> int | str:
    """A window as given: a whole number of frames (int), or seconds as text ``"60s"``.

    Examples
    --------
    >>> frames_or_seconds("window", 300), frames_or_seconds("window", "1.5 s")
    (300, '1.5s')
    >>> frames_or_seconds("window", "300")
    300
    """
    if isinstance(value, str):
        m = _SECONDS.match(value)
        if not m:
            raise ParameterError(f"{name}={value!r}: give frames (300) or seconds as text ('60s')")
        unit = (m.group(2) or "frames").lower()
        if unit.startswith("frame"):
            value = float(m.group(1))
            if value != int(value):
                raise ParameterError(f"{name}={m.group(1)} frames: give a whole number")
            return integer(name, int(value), low=1)
        seconds = number(name, m.group(1), low=0.0, low_open=True, hint=" (seconds)")
        return f"{seconds:g}s"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return integer(name, value, low=1)


def _to_frames(name: str, value: int | str | None, frame_rate: float | None, method: str):
    if value is None or isinstance(value, int):
        return value
    if frame_rate is None:
        raise ParameterError(
            f"{name}={value!r} is in seconds: give frame_rate= (frames per second), or "
            f"{name}= in frames"
        )
    seconds = float(value[:-1])
    if method == "maximin":  # suite2p: win = int(win_baseline * fs)
        n = int(seconds * frame_rate)
    elif method == "inactive_median":  # the Allen Institute: round, then make it odd
        n = int(np.round(seconds * frame_rate))
        n = n if n % 2 else n + 1
    else:
        n = int(np.round(seconds * frame_rate))
    if n < 1:
        raise ParameterError(
            f"{name}={value!r} at {frame_rate:g} frames per second is no frame: give a "
            "longer window"
        )
    return n


_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(?:([kmgt])(i)?)?b?\s*$", re.IGNORECASE)


def parse_size(name: str, value: Any) -> int:
    """Bytes from an int or a text such as ``"256MB"``, ``"1 GiB"`` or ``"500k"``.

    Examples
    --------
    >>> parse_size("chunk_memory", "64 MiB"), parse_size("chunk_memory", "1.5GB")
    (67108864, 1500000000)
    """
    if isinstance(value, bool):
        raise ParameterError(f"{name}={value!r} is not a size; give bytes or a text like '256MB'")
    if isinstance(value, str):
        m = _SIZE.match(value)
        if not m:
            raise ParameterError(
                f"{name}={value!r} is not a size; give bytes or a text like '256MB' or '1GiB'"
            )
        prefix, binary = m.group(2), m.group(3)
        scale = (1024 if binary else 1000) ** ("kmgt".index(prefix.lower()) + 1) if prefix else 1
        value = float(m.group(1)) * scale
    return integer(name, int(number(name, value, low=1)), low=1)


@dataclass(frozen=True, eq=False)
class Execution(_Option):
    """How a movie is read: which frames, in chunks of what size, on how many threads.

    Every function that reads a movie (``extract``, ``projection``, ``projections``,
    ``pixel_traces``, ``pixel_weights``, ``find_rois``) takes ``execution=`` or
    the same names as keywords (``frames=...``), not both for one option.

    Parameters
    ----------
    frames : slice, range, (start, stop) or sequence of int, optional
        Only these frames of the movie (default: all).
    chunk_frames : int, optional
        Frames read at once. Default: as many as fit ``chunk_memory``.
    chunk_memory : int or str, optional
        Memory for one chunk, in bytes or as text (``"256MB"``); default 64 MiB or
        the ``ROITRACE_CHUNK_MB`` environment variable, at most 1/8 of the memory
        available. One chunk is read ahead while the previous one is used.
    threads : int, optional
        Threads of the compiled kernels (default: numba's, i.e. every core, or
        ``NUMBA_NUM_THREADS``).
    progress : bool
        Show a progress bar (frames and frames/s).
    client : distributed.Client, optional
        Run on this Dask cluster (see :mod:`roitrace.cluster`): the frames are cut
        into ranges, one task each; every task opens the movie on its worker. The
        numbers are the same as without a client. ``threads`` then means threads
        per task (default: the worker's own thread count).
    task_frames : int, optional
        With ``client``: frames per task (default: about four tasks per worker
        thread, a multiple of the file's chunk length in time).

    Examples
    --------
    >>> Execution(frames=(0, 100), chunk_memory="16MB").chunk_memory
    16000000
    """

    keyword: ClassVar[str] = "execution"

    frames: Any = None
    chunk_frames: int | None = None
    chunk_memory: int | str | None = None
    threads: int | None = None
    progress: bool = False
    client: Any = None
    task_frames: int | None = None

    def __post_init__(self) -> None:
        if self.chunk_frames is not None:
            object.__setattr__(
                self, "chunk_frames", integer("chunk_frames", self.chunk_frames, low=1)
            )
        if self.chunk_memory is not None:
            if self.chunk_frames is not None:
                raise ParameterError(
                    "give chunk_frames or chunk_memory, not both: they set the same chunk size"
                )
            object.__setattr__(self, "chunk_memory", parse_size("chunk_memory", self.chunk_memory))
        if self.threads is not None:
            object.__setattr__(self, "threads", integer("threads", self.threads, low=1))
        if not isinstance(self.progress, bool):
            raise ParameterError(f"progress must be True or False, got {self.progress!r}")
        if self.client is not None and not callable(getattr(self.client, "submit", None)):
            raise ParameterError(
                f"client={self.client!r} is not a Dask client: give a distributed.Client, "
                "e.g. Client('tcp://scheduler:8786') or Client(LocalCluster())"
            )
        if self.task_frames is not None:
            if self.client is None:
                raise ParameterError(
                    "task_frames is for a cluster (client=); without one the movie is "
                    "read in chunks of chunk_frames"
                )
            object.__setattr__(
                self, "task_frames", integer("task_frames", self.task_frames, low=1)
            )

    @classmethod
    def of(cls, execution: Any = None, /, **given: Any) -> Execution:
        """The options of a call: ``execution=`` merged with the same options given
        as keywords (None and ``progress=False`` mean "not given"); one option given
        both ways, with different values, is an error."""
        base = cls.coerce(execution) or cls()
        given = {k: v for k, v in given.items() if v is not None and v is not False}
        clash = [
            k
            for k, v in given.items()
            if getattr(base, k) not in (None, False) and not _same(getattr(base, k), v)
        ]
        if clash:
            raise ParameterError(
                f"{', '.join(clash)} given both as keyword and in execution=; give it once"
            )
        return dataclasses.replace(base, **given) if given else base

    def as_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if d["frames"] is not None and not isinstance(d["frames"], slice | tuple | range):
            d["frames"] = f"{len(d['frames'])} selected frames"
        if d["client"] is not None:
            d["client"] = _client_label(d["client"])
        return d


def _client_label(client: Any) -> str:
    """A Dask client as text: its scheduler's address."""
    try:
        return f"dask scheduler {client.scheduler.address}"
    except AttributeError:
        return type(client).__name__


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except ValueError:  # arrays
        return a is b


# -- NWB metadata (used by roitrace.io.nwb) ----------------------------------------------
@dataclass(frozen=True)
class NWBSession:
    """What an NWB file records about the session: the NWBFile's metadata.

    Every field is optional; give the ones you know (nwbinspector asks for the
    subject). Pass it as ``session=`` to :func:`roitrace.nwb.write_nwb`,
    :func:`roitrace.nwb.write_nwb_rois`, :func:`roitrace.save` (``.nwb``) or
    :func:`roitrace.write_rois` (``.nwb``).

    Parameters
    ----------
    session_description : str, optional
        What the session was (default: a generic description of what roitrace wrote).
    identifier : str, optional
        A unique identifier for the file (default: a random UUID).
    session_start_time : datetime.datetime, optional
        When the recording started (default: now). A naive datetime is taken as
        local time.
    subject : dict or pynwb.file.Subject, optional
        E.g. ``{"subject_id": "m1", "species": "Mus musculus", "sex": "F",
        "age": "P90D"}``; the keys of :class:`pynwb.file.Subject`.
    experimenter : str or sequence of str, optional
        Who recorded it, e.g. ``"Doe, Jane"``.
    lab, institution : str, optional
        Where.
    nwbfile_kwargs : dict, optional
        Any other :class:`pynwb.NWBFile` metadata: ``keywords``,
        ``experiment_description``, ``session_id``...

    Examples
    --------
    >>> session = NWBSession(subject={"subject_id": "m1", "species": "Mus musculus"},
    ...                      lab="Vision lab")
    >>> session.lab, session.identifier
    ('Vision lab', None)
    """

    session_description: str | None = None
    identifier: str | None = None
    session_start_time: _dt.datetime | None = None
    subject: Mapping[str, Any] | Any | None = None
    experimenter: str | Sequence[str] | None = None
    lab: str | None = None
    institution: str | None = None
    nwbfile_kwargs: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class NWBImagingPlane:
    """What an NWB file records about the imaging plane and the microscope.

    Pass it as ``plane=`` to the same functions as :class:`NWBSession`.

    Parameters
    ----------
    indicator : str, optional
        The calcium indicator, e.g. ``"GCaMP6f"`` (``"unknown"`` when not given).
    location : str, optional
        The brain area; for mice an Allen CCF term such as ``"VISp"`` (``"unknown"``
        when not given).
    device : str or pynwb.device.Device, optional
        The microscope: a name, or a Device (default ``"Microscope"``).
    excitation_lambda, emission_lambda : float, optional
        Wavelengths in nm (NaN, unknown, when not given).

    Examples
    --------
    >>> plane = NWBImagingPlane(indicator="GCaMP6f", location="VISp", excitation_lambda=920.0)
    >>> plane.indicator, plane.device
    ('GCaMP6f', None)
    """

    indicator: str | None = None
    location: str | None = None
    device: str | Any | None = None
    excitation_lambda: float | None = None
    emission_lambda: float | None = None

    def __post_init__(self) -> None:
        for name in ("excitation_lambda", "emission_lambda"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(
                    self, name, number(name, value, low=0.0, low_open=True, hint=" (nm)")
                )


#: ``deconvolve(model=)``: the autoregressive model of the calcium's decay.
DECONVOLUTION_MODELS = ("ar1", "ar2")
#: ``deconvolve(penalty=)``: sparsity of the inferred spikes.
DECONVOLUTION_PENALTIES = ("l1", "l0")


@dataclass(frozen=True)
class Deconvolve(_Option):
    """How :func:`roitrace.extract` infers spikes from dF/F (``extract(deconvolve=...)``;
    the same keywords as :func:`roitrace.deconvolve`).

    Parameters
    ----------
    model : {"ar1", "ar2"}
        AR(1): instantaneous rise, exponential decay; AR(2): a rise time too.
    penalty : {"l1", "l0"}
        ``"l1"``: OASIS with the noise constraint; ``"l0"``: thresholded OASIS
        (sparser spikes, each at least a minimum size).
    tau : float or (float, float), optional
        The decay time constant in seconds (AR(2): ``(rise, decay)``); default:
        estimated from each trace's autocovariance. Needs the frame rate.

    Examples
    --------
    >>> Deconvolve(model="ar2")
    Deconvolve(model='ar2', penalty='l1', tau=None)
    """

    keyword: ClassVar[str] = "deconvolve"

    model: str = "ar1"
    penalty: str = "l1"
    tau: float | tuple[float, float] | None = None

    def __post_init__(self) -> None:
        choice("deconvolve model", self.model, DECONVOLUTION_MODELS)
        choice("deconvolve penalty", self.penalty, DECONVOLUTION_PENALTIES)
        if self.tau is None:
            return
        want = 2 if self.model == "ar2" else 1
        values = tuple(self.tau) if isinstance(self.tau, Sequence) else (self.tau,)
        if len(values) != want:
            form = "(rise, decay) in seconds" if want == 2 else "one decay time in seconds"
            raise ParameterError(f"tau={self.tau!r}: model={self.model!r} takes {form}")
        taus = tuple(number("tau", v, low=0.0, low_open=True, hint=" (seconds)") for v in values)
        object.__setattr__(self, "tau", taus if want == 2 else taus[0])

    @classmethod
    def _example(cls) -> str:
        return "{'model': 'ar1'}"
