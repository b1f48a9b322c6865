"""Simulated calcium-imaging movies whose ground truth is known.

:func:`simulate` draws a (time, y, x) two-photon-like movie of GCaMP-labelled
somata together with everything that produced it: each cell's footprint and
label, its true calcium trace and event times, and the neuropil (background)
fluorescence that contaminates it. The effects that make trace extraction hard
in real data are all present and measurable: out-of-cell neuropil that changes
over time and also lies under the cells, nuclear exclusion, per-cell brightness
differences, photobleaching, shot noise and read noise. Tests and the demo use
it to tell good extraction methods from bad ones.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_path
from .._validate import integer as _integer
from .._validate import number as _number
from ..errors import ParameterError

log = logging.getLogger(__name__)

__all__ = ["LABEL_THRESHOLD", "Simulation", "simulate"]

#: A pixel belongs to a cell's label when the cell's footprint there is at least
#: this fraction of its peak; where several cells qualify, the one contributing
#: the most resting fluorescence (footprint x resting brightness) wins.
LABEL_THRESHOLD = 0.25

# Soma shape. GCaMP is cytosolic, so the nucleus (about half the soma's radius)
# is dimmer than the ring of cytoplasm around it.
_NUCLEUS_FRACTION = 0.5
_NUCLEUS_DIMMING = 0.6  # fraction of the brightness missing at the nucleus' centre
_EDGE_WIDTH = 0.6  # pixels; logistic edge, roughly a two-photon PSF's blur
_ASPECT_RANGE = (0.7, 1.0)  # minor/major semi-axis ratio
_FOOTPRINT_FLOOR = 0.005  # below this the soft edge is cut off (keeps footprints local)
_BRIGHTNESS_SIGMA = 0.3  # lognormal spread of resting brightness between cells
# Centres at least this fraction of the two major semi-axes apart: neighbours may
# touch and overlap a little at their edges, but no cell hides another.
_MIN_CENTRE_DISTANCE = 0.75
_PLACEMENT_TRIES = 500

# Neuropil: a few smooth spatial components, each with its own time course, so
# that neuropil is correlated over ~neuropil_scale pixels but not identical
# everywhere (a ring around a cell estimates the neuropil under it only roughly).
_NEUROPIL_COMPONENTS = 4
_NEUROPIL_CONTRAST = 0.5  # sigma of log spatial field: brighter and dimmer patches
_NEUROPIL_DRIFT_SD = 0.1  # slow fluctuation, fraction of the resting neuropil
_NEUROPIL_DRIFT_TIMESCALE = 2.0  # seconds (Gaussian sigma)
# Neuropil transients come from many out-of-focus axons and dendrites: they are
# smaller and slower than a soma's.
_NEUROPIL_AMPLITUDE_FACTOR = 0.5
_NEUROPIL_DECAY_FACTOR = 2.0
# Neuropil also carries part of the local population's activity, so it is
# correlated with the cells without being a copy of any one of them.
_NEUROPIL_POPULATION_SHARE = 0.3

# Noise.
_EXACT_POISSON_BELOW = 10.0  # photons; above, a skew-corrected normal is as good and much faster
_RANGE_SIGMAS = 7.0  # noise margin when checking that the dtype can hold the movie
_CHUNK_PIXELS = 1 << 21  # pixels per chunk of frames generated at once (8 MiB float32)
_MAX_WORKERS = 4

_INTEGER_KINDS = "iu"


@dataclass(frozen=True, eq=False, repr=False)
class Simulation:
    """A simulated movie and the ground truth that produced it.

    All arrays are read-only (copy them to modify). Fluorescence is given in
    the movie's units (counts) unless stated otherwise.

    Attributes
    ----------
    movie : numpy.ndarray, shape (T, Y, X)
        The simulated movie, of the requested dtype.
    labels : numpy.ndarray of int32, shape (Y, X)
        0 for background, ``k`` for pixels of cell ``k`` (1..n_cells); see
        :data:`LABEL_THRESHOLD` for the rule.
    footprints : numpy.ndarray of float32, shape (n_cells, Y, X)
        Spatial weight of each cell, peak 1, dimmer nucleus ("donut").
        Cell ``k`` (label ``k + 1``) is ``footprints[k]``.
    traces : numpy.ndarray of float32, shape (n_cells, T)
        True calcium signal (dF/F-like: 0 at rest, 1 doubles the resting
        fluorescence). This is what a good extraction recovers up to scale and
        offset.
    spikes : numpy.ndarray of int32, shape (n_cells, T)
        Number of events (action-potential bursts) starting during each frame
        period; each one's transient first shows in the next frame.
    neuropil : numpy.ndarray of float32, shape (n_cells, T)
        True neuropil fluorescence (counts above the baseline, bleaching included)
        actually inside each cell's label, averaged over the label: it includes
        the cell's ``contamination`` factor, so it is the contamination a
        neuropil correction should remove (``contamination[k]`` times the
        neuropil a ring around the cell would see there).
    contamination : numpy.ndarray of float64, shape (n_cells,)
        Factor multiplying the neuropil in each cell's label (the true neuropil
        coefficient r of ``F - r * Fneu``); 1.0 everywhere by default.
    resting : numpy.ndarray of float32, shape (n_cells,)
        Each cell's resting fluorescence at its footprint's peak, in counts above
        the baseline at the first frame.
    centers : numpy.ndarray of float64, shape (n_cells, 2)
        Each cell's centre, ``(y, x)`` in pixels.
    radii : numpy.ndarray of float64, shape (n_cells, 2)
        Major and minor semi-axes of each cell, in pixels.
    bleaching : numpy.ndarray of float32, shape (T,)
        Factor multiplying all fluorescence (1 at the first frame,
        ``1 - bleach_fraction`` at the last).
    frame_rate : float
        Frames per second.
    seed : int
        The seed that reproduces this simulation (drawn from the OS when
        ``simulate`` was called with ``seed=None``).
    params : dict
        Every parameter :func:`simulate` used, ``seed`` resolved; passing them
        back (``simulate(**sim.params)``) reproduces the simulation.
    """

    movie: np.ndarray
    labels: np.ndarray
    footprints: np.ndarray
    traces: np.ndarray
    spikes: np.ndarray
    neuropil: np.ndarray
    contamination: np.ndarray
    resting: np.ndarray
    centers: np.ndarray
    radii: np.ndarray
    bleaching: np.ndarray
    frame_rate: float
    seed: int
    params: dict[str, Any]

    def __post_init__(self) -> None:
        # Ground truth should not drift away from the movie by accident.
        for value in self.__dict__.values():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return self.movie.shape[0]

    @property
    def n_cells(self) -> int:
        """Number of simulated cells."""
        return self.footprints.shape[0]

    @property
    def shape(self) -> tuple[int, int, int]:
        """The movie's shape ``(T, Y, X)``."""
        return tuple(self.movie.shape)  # type: ignore[return-value]

    @property
    def time(self) -> np.ndarray:
        """Time of each frame in seconds, starting at 0."""
        return np.arange(self.n_frames) / self.frame_rate

    def to_tiff(self, path: str | os.PathLike) -> Path:
        """Write the movie as an ImageJ-compatible TIFF recording the frame interval.

        The file appears under ``path`` only once complete.

        Parameters
        ----------
        path : str or os.PathLike
            Destination file (``.tif``); its folder is created if needed.

        Returns
        -------
        pathlib.Path
            ``path``.

        Raises
        ------
        ParameterError
            If the movie's dtype is not one ImageJ can store (uint8, uint16,
            int16, float32).
        """
        import tifffile

        if self.movie.dtype.char not in "BHhf":
            raise ParameterError(
                f"an ImageJ TIFF cannot hold {self.movie.dtype} pixels; simulate with "
                "dtype='uint16' (or uint8, int16, float32) to write a TIFF"
            )
        final = Path(path)
        with atomic_path(final) as tmp:
            tifffile.imwrite(
                tmp,
                self.movie,
                imagej=True,
                metadata={"axes": "TYX", "finterval": 1.0 / self.frame_rate},
            )
        return final

    def __repr__(self) -> str:
        t, y, x = self.shape
        return (
            f"Simulation(movie={t}x{y}x{x} {self.movie.dtype}, n_cells={self.n_cells}, "
            f"frame_rate={self.frame_rate:g}, seed={self.seed})"
        )


def simulate(
    *,
    shape: tuple[int, int] = (64, 64),
    n_frames: int = 1000,
    n_cells: int = 5,
    frame_rate: float = 30.0,
    cell_radius: float | tuple[float, float] = (4.0, 7.0),
    event_rate: float = 0.3,
    tau_decay: float = 0.6,
    tau_rise: float = 0.05,
    event_amplitude: float | tuple[float, float] = (0.5, 2.0),
    cell_brightness: float = 1.0,
    neuropil_strength: float = 0.5,
    neuropil_scale: float = 8.0,
    neuropil_event_rate: float = 0.5,
    baseline: float = 100.0,
    bleach_fraction: float = 0.2,
    contamination: float | tuple[float, float] = 1.0,
    photons_per_unit: float = 40.0,
    gain: float = 15.0,
    read_noise: float = 10.0,
    dtype: str | np.dtype | type = "uint16",
    seed: int | None = None,
) -> Simulation:
    r"""Simulate a two-photon calcium-imaging movie with known ground truth.

    Parameters
    ----------
    shape : tuple of int
        Frame size ``(Y, X)`` in pixels.
    n_frames : int
        Number of frames T (at least 1).
    n_cells : int
        Number of somata (0 gives a neuropil-only movie).
    frame_rate : float
        Frames per second (Hz), > 0.
    cell_radius : float or (float, float)
        Range of the cells' major semi-axis in pixels; each cell draws one
        uniformly from it (a single number fixes it). The minor semi-axis is 0.7
        to 1 times the major one. Must leave the cell inside the frame.
    event_rate : float
        Mean rate of each cell's calcium events, in Hz (> 0); events are Poisson.
    tau_decay : float
        Decay time constant of a transient, in seconds (> tau_rise).
    tau_rise : float
        Rise time constant of a transient, in seconds (>= 0; 0 is an
        instantaneous rise).
    event_amplitude : float or (float, float)
        Range of a transient's peak amplitude in dF/F (1 doubles the cell's
        resting fluorescence), drawn uniformly per event.
    cell_brightness : float
        Median resting fluorescence of a cell's brightest pixel, in fluorescence
        units (the unit that ``photons_per_unit`` converts); individual cells
        vary lognormally (sigma 0.3) around it.
    neuropil_strength : float
        Mean resting neuropil fluorescence per pixel, as a fraction of
        ``cell_brightness`` (>= 0; 0 removes neuropil entirely).
    neuropil_scale : float
        Spatial correlation length of the neuropil, in pixels (sigma of the
        Gaussian filter smoothing it), > 0.
    neuropil_event_rate : float
        Rate of neuropil transients, in Hz (>= 0), for each neuropil component.
    baseline : float
        Dark offset added to every pixel, in counts.
    bleach_fraction : float
        Fraction of all fluorescence lost by the last frame to photobleaching,
        in [0, 1).
    contamination : float or (float, float)
        Factor multiplying the neuropil inside each cell's label (>= 0): the
        true neuropil coefficient, recorded in ``Simulation.contamination``. A
        pair draws one value per cell uniformly from it, from a random stream of
        its own (the rest of the movie does not change); a single number
        applies to every cell. 1.0 (the default) leaves the neuropil under the
        cells as it is around them; 0 takes it out of the cells entirely. It
        applies to the label's pixels only (labels do not overlap, so a pixel
        that two cells' footprints share takes the factor of the cell whose
        label it is); the dim edge of a footprint outside its label keeps the
        full neuropil, like the background around it.
    photons_per_unit : float
        Detected photons per pixel per frame for one fluorescence unit (> 0);
        sets the shot noise (fewer photons, noisier movie).
    gain : float
        Counts per detected photon (> 0).
    read_noise : float
        Standard deviation of the Gaussian detector noise, in counts (>= 0).
    dtype : str or numpy.dtype
        Pixel type of the movie: an integer type (values are rounded) or a
        floating-point type.
    seed : int or None
        Seed for :func:`numpy.random.default_rng`; None draws one from the OS
        (it is recorded in the result's ``seed``).

    Returns
    -------
    Simulation
        The movie and its ground truth (labels, footprints, traces, event
        counts, neuropil...).

    Raises
    ------
    ParameterError
        If a parameter is out of range, the cells cannot be placed without
        heavy overlap, or the movie's values would not fit in ``dtype``.

    Notes
    -----
    With :math:`a_k(x)` the footprint of cell :math:`k` (peak 1, nucleus dimmed
    to 40 %), :math:`r_k` its resting brightness, :math:`c_k(t)` its calcium
    trace, :math:`n(x, t)` the neuropil and :math:`b(t)` the bleaching factor,
    the expected number of photons at pixel :math:`x` in frame :math:`t` is

    .. math::

        \lambda(x, t) = p\, b(t) \Big[ \sum_k a_k(x)\, r_k\, (1 + c_k(t))
                        + n(x, t) \Big]

    with :math:`p` = ``photons_per_unit``, and the movie is

    .. math::

        F(x, t) = \text{baseline} + g\, N(x, t) + \sigma\, \varepsilon(x, t),
        \quad N \sim \text{Poisson}(\lambda), \ \varepsilon \sim \mathcal{N}(0, 1)

    with :math:`g` = ``gain`` and :math:`\sigma` = ``read_noise``, rounded for
    integer dtypes. Hence the temporal variance of a static region is
    ``gain * (mean - baseline) + read_noise**2``.

    * Calcium: :math:`c_k(t) = \sum_i A_i\, h(t - t_i)` with Poisson event
      times :math:`t_i`, amplitudes :math:`A_i` and the double exponential
      :math:`h(s) \propto e^{-s/\tau_d} - e^{-s/\tau_r}` scaled to peak 1.
    * Neuropil: :math:`n(x, t) = \sum_j w_j(x)\, m_j(t)` over 4 components.
      Each :math:`w_j` is lognormal, Gaussian-filtered noise at
      ``neuropil_scale`` pixels; together they average ``neuropil_strength *
      cell_brightness``. Each activity :math:`m_j(t) = 1 +` slow drift
      (low-pass noise, 10 % SD, 2 s) + its own transients (half the amplitude,
      twice the decay of a cell's) + 0.3 x the cells' mean trace.
    * Contamination: inside cell :math:`k`'s label :math:`n(x, t)` is
      multiplied by ``contamination[k]``.
    * Bleaching: :math:`b(t) = (1 - f)^{t / (T - 1)}` with f = ``bleach_fraction``.
    * Shot noise is drawn exactly below 10 expected photons and above that from
      a normal distribution with the Cornish-Fisher skewness correction,
      rounded: same mean, variance and skewness as Poisson, within 0.25 % of it
      in total variation, and several times faster.

    The movie is generated in chunks of frames in float32, in parallel threads;
    each chunk has its own random stream, so the result depends only on the
    parameters and the seed, not on the number of threads.

    Examples
    --------
    >>> sim = simulate(shape=(32, 32), n_frames=50, n_cells=2, seed=0)
    >>> sim.movie.shape
    (50, 32, 32)
    >>> sorted(set(sim.labels.ravel().tolist()))
    [0, 1, 2]
    >>> sim.traces.shape
    (2, 50)
    """
    # First statement: locals() holds exactly the parameters.
    params = _check_params(**locals())
    p = params
    out_dtype = np.dtype(p["dtype"])
    ny, nx = p["shape"]
    n_t, n_k = p["n_frames"], p["n_cells"]
    # Independent streams: the cells' layout does not change with n_frames,
    # nor the activity with the frame size.
    # A fifth stream, spawned after the other four, leaves those four as they were.
    layout_seq, activity_seq, neuropil_seq, noise_seq, contamination_seq = np.random.SeedSequence(
        p["seed"]
    ).spawn(5)
    layout_rng = np.random.default_rng(layout_seq)
    activity_rng = np.random.default_rng(activity_seq)
    neuropil_rng = np.random.default_rng(neuropil_seq)

    centers, radii, angles = _place_cells(layout_rng, (ny, nx), n_k, p["cell_radius"])
    resting_units = p["cell_brightness"] * layout_rng.lognormal(0.0, _BRIGHTNESS_SIGMA, n_k)
    patches = [
        _footprint_patch((ny, nx), c, r, a) for c, r, a in zip(centers, radii, angles, strict=True)
    ]
    footprints = np.zeros((n_k, ny, nx), dtype=np.float32)
    for k, (box, patch) in enumerate(patches):
        footprints[k][box] = patch
    labels = _label_image((ny, nx), patches, resting_units)

    spikes, traces = _calcium_events(
        activity_rng,
        n_series=n_k,
        n_frames=n_t,
        frame_rate=p["frame_rate"],
        rate=p["event_rate"],
        amplitude=p["event_amplitude"],
        tau_rise=p["tau_rise"],
        tau_decay=p["tau_decay"],
    )
    weights, activity = _neuropil(neuropil_rng, p, traces)
    lo, hi = p["contamination"]
    if lo == hi:
        contamination = np.full(n_k, lo)
    else:
        contamination = np.random.default_rng(contamination_seq).uniform(lo, hi, n_k)
    if np.any(contamination != 1.0):
        # Scaling the spatial weights per pixel scales every component alike.
        factor = np.ones((ny, nx), dtype=np.float32)
        for k in range(n_k):
            factor[labels == k + 1] = contamination[k]
        weights = weights * factor
    bleaching = _bleaching(n_t, p["bleach_fraction"])

    photon_scale = p["photons_per_unit"]
    cell_photons = [
        (box, patch * np.float32(r * photon_scale))
        for (box, patch), r in zip(patches, resting_units, strict=True)
    ]
    _check_range(out_dtype, p, cell_photons, traces, weights * photon_scale, activity)

    counts_scale = photon_scale * p["gain"]
    neuropil = np.empty((n_k, n_t), dtype=np.float32)
    for k, (box, patch) in enumerate(patches):
        local = weights[(slice(None), *box)]
        inside = labels[box] == k + 1
        # A cell always keeps pixels (centres are apart), but weight by the
        # footprint rather than fail if a neighbour ever covers it entirely.
        w = (
            local[:, inside].mean(axis=1)
            if inside.any()
            else ((local * patch).sum(axis=(1, 2)) / patch.sum())
        )
        neuropil[k] = activity @ w * bleaching * counts_scale

    movie = _render(
        out_dtype,
        p,
        cell_photons=cell_photons,
        traces=traces,
        neuropil_photons=(weights * photon_scale).reshape(weights.shape[0], -1),
        activity=activity,
        bleaching=bleaching,
        noise_seq=noise_seq,
    )
    log.debug("simulated %s movie with %d cells (seed %d)", movie.shape, n_k, p["seed"])
    return Simulation(
        movie=movie,
        labels=labels,
        footprints=footprints,
        traces=traces,
        spikes=spikes,
        neuropil=neuropil,
        contamination=contamination,
        resting=(resting_units * counts_scale).astype(np.float32),
        centers=centers,
        radii=radii,
        bleaching=bleaching,
        frame_rate=p["frame_rate"],
        seed=p["seed"],
        params=params,
    )


# --- parameters -------------------------------------------------------------


def _range(name: str, value: Any, *, low: float, low_open: bool) -> tuple[float, float]:
    """Accept a number or a (min, max) pair; return (min, max)."""
    pair = value if isinstance(value, Sequence | np.ndarray) else (value, value)
    if len(pair) != 2:
        raise ParameterError(f"{name} must be a number or a (min, max) pair, got {value!r}")
    lo, hi = (_number(name, v, low=low, low_open=low_open) for v in pair)
    if lo > hi:
        raise ParameterError(f"{name} must be (min, max) with min <= max, got {value!r}")
    return lo, hi


def _check_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.kind not in "iuf":
        raise ParameterError(
            f"dtype must be an integer or floating-point type such as 'uint16' or "
            f"'float32', got {dtype!r}"
        )
    return dt


def _check_params(**kw: Any) -> dict[str, Any]:
    """Validate and normalise simulate()'s parameters; resolve the seed."""
    shape = kw["shape"]
    if not isinstance(shape, Sequence | np.ndarray) or len(shape) != 2:
        raise ParameterError(f"shape must be (Y, X), two frame dimensions, got {shape!r}")
    shape = (
        _integer("shape[0]", shape[0], low=1),
        _integer("shape[1]", shape[1], low=1),
    )
    n_cells = _integer("n_cells", kw["n_cells"], low=0)
    radius = _range("cell_radius", kw["cell_radius"], low=0.0, low_open=True)
    if n_cells and 2 * radius[1] + 1 > min(shape):
        raise ParameterError(
            f"cell_radius {kw['cell_radius']!r} does not fit a {shape[0]}x{shape[1]} frame: "
            f"the largest radius must be at most {(min(shape) - 1) / 2:g} pixels; "
            "use a smaller cell_radius or a larger shape"
        )
    tau_decay = _number("tau_decay", kw["tau_decay"], low=0.0, low_open=True)
    tau_rise = _number(
        "tau_rise",
        kw["tau_rise"],
        low=0.0,
        high=tau_decay,
        high_open=True,
        hint=" (it must be shorter than tau_decay)",
    )
    seed = kw["seed"]
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)
    else:
        seed = _integer("seed", seed, low=0)
    return {
        "shape": shape,
        "n_frames": _integer("n_frames", kw["n_frames"], low=1),
        "n_cells": n_cells,
        "frame_rate": _number("frame_rate", kw["frame_rate"], low=0.0, low_open=True),
        "cell_radius": radius,
        "event_rate": _number("event_rate", kw["event_rate"], low=0.0, low_open=True),
        "tau_decay": tau_decay,
        "tau_rise": tau_rise,
        "event_amplitude": _range(
            "event_amplitude", kw["event_amplitude"], low=0.0, low_open=False
        ),
        "cell_brightness": _number(
            "cell_brightness", kw["cell_brightness"], low=0.0, low_open=True
        ),
        "neuropil_strength": _number("neuropil_strength", kw["neuropil_strength"], low=0.0),
        "neuropil_scale": _number("neuropil_scale", kw["neuropil_scale"], low=0.0, low_open=True),
        "neuropil_event_rate": _number("neuropil_event_rate", kw["neuropil_event_rate"], low=0.0),
        "baseline": _number("baseline", kw["baseline"]),
        "bleach_fraction": _number(
            "bleach_fraction", kw["bleach_fraction"], low=0.0, high=1.0, high_open=True
        ),
        "contamination": _range("contamination", kw["contamination"], low=0.0, low_open=False),
        "photons_per_unit": _number(
            "photons_per_unit", kw["photons_per_unit"], low=0.0, low_open=True
        ),
        "gain": _number("gain", kw["gain"], low=0.0, low_open=True),
        "read_noise": _number("read_noise", kw["read_noise"], low=0.0),
        "dtype": _check_dtype(kw["dtype"]).name,
        "seed": seed,
    }


# --- cells ------------------------------------------------------------------


def _place_cells(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n_cells: int,
    radius: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw centres (y, x), semi-axes (major, minor) and orientations of the cells."""
    centers = np.empty((n_cells, 2))
    radii = np.empty((n_cells, 2))
    angles = rng.uniform(0.0, np.pi, n_cells)
    for k in range(n_cells):
        for _ in range(_PLACEMENT_TRIES):
            major = rng.uniform(*radius)
            # Keeping the whole major axis inside keeps the ellipse inside.
            centre = rng.uniform([major, major], [shape[0] - 1 - major, shape[1] - 1 - major])
            distance = np.hypot(*(centers[:k] - centre).T)
            if np.all(distance >= _MIN_CENTRE_DISTANCE * (radii[:k, 0] + major)):
                break
        else:
            raise ParameterError(
                f"could not place {n_cells} cells of radius {radius[0]:g}-{radius[1]:g} px "
                f"in a {shape[0]}x{shape[1]} frame without heavy overlap (placed {k}); "
                "use fewer cells, a smaller cell_radius or a larger shape"
            )
        centers[k] = centre
        radii[k] = major, major * rng.uniform(*_ASPECT_RANGE)
    return centers, radii, angles


def _footprint_patch(
    shape: tuple[int, int], centre: np.ndarray, radii: np.ndarray, angle: float
) -> tuple[tuple[slice, slice], np.ndarray]:
    """Return the bounding box and float32 footprint (peak 1) of one soma."""
    major, minor = radii
    half = math.ceil(major + 10 * _EDGE_WIDTH)
    y0, x0 = (max(0, math.floor(c) - half) for c in centre)
    y1, x1 = (min(n, math.ceil(c) + half + 1) for c, n in zip(centre, shape, strict=True))
    dy = np.arange(y0, y1)[:, None] - centre[0]
    dx = np.arange(x0, x1)[None, :] - centre[1]
    u = dx * math.cos(angle) + dy * math.sin(angle)
    v = -dx * math.sin(angle) + dy * math.cos(angle)
    rho = np.hypot(u / major, v / minor)  # 1 on the membrane
    size = math.sqrt(major * minor)  # turns rho into an approximate distance in pixels
    soma = _logistic((1.0 - rho) * size / _EDGE_WIDTH)
    nucleus = _logistic((_NUCLEUS_FRACTION - rho) * size / _EDGE_WIDTH)
    patch = soma * (1.0 - _NUCLEUS_DIMMING * nucleus)
    patch /= patch.max()
    patch[patch < _FOOTPRINT_FLOOR] = 0.0
    return (slice(y0, y1), slice(x0, x1)), patch.astype(np.float32)


def _label_image(
    shape: tuple[int, int],
    patches: list[tuple[tuple[slice, slice], np.ndarray]],
    resting: np.ndarray,
) -> np.ndarray:
    labels = np.zeros(shape, dtype=np.int32)
    best = np.zeros(shape, dtype=np.float64)
    for k, ((box, patch), r) in enumerate(zip(patches, resting, strict=True)):
        brightness = np.where(patch >= LABEL_THRESHOLD, patch * r, 0.0)
        wins = brightness > best[box]
        best[box][wins] = brightness[wins]
        labels[box][wins] = k + 1
    return labels


# --- activity ---------------------------------------------------------------


def _transient_peak(tau_rise: float, tau_decay: float) -> float:
    """Peak of exp(-s/tau_decay) - exp(-s/tau_rise) over s >= 0."""
    if tau_rise == 0.0:
        return 1.0
    s = tau_decay * tau_rise / (tau_decay - tau_rise) * math.log(tau_decay / tau_rise)
    return math.exp(-s / tau_decay) - math.exp(-s / tau_rise)


def _calcium_events(
    rng: np.random.Generator,
    *,
    n_series: int,
    n_frames: int,
    frame_rate: float,
    rate: float,
    amplitude: tuple[float, float],
    tau_rise: float,
    tau_decay: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson events and their summed double-exponential transients.

    Returns event counts per frame (int32) and the calcium traces (float32),
    both (n_series, n_frames).
    """
    counts = rng.poisson(rate / frame_rate, size=(n_series, n_frames)).astype(np.int32)
    series, frames = np.nonzero(counts)
    repeats = counts[series, frames]
    series, frames = np.repeat(series, repeats), np.repeat(frames, repeats)
    n_events = series.size
    amps = rng.uniform(*amplitude, n_events) / _transient_peak(tau_rise, tau_decay)
    # An event falls at a random time within its frame period; its transient is
    # first sampled at the next frame, (1 - offset) frame periods later.
    delay = (1.0 - rng.uniform(0.0, 1.0, n_events)) / frame_rate
    calcium = np.zeros((n_series, n_frames))
    for tau, sign in ((tau_decay, 1.0), (tau_rise, -1.0)):
        if tau == 0.0:
            continue
        drive = np.zeros((n_series, n_frames + 1))
        np.add.at(drive, (series, frames + 1), sign * amps * np.exp(-delay / tau))
        # Sampled exponentials obey an exact first-order recursion.
        decay = math.exp(-1.0 / (frame_rate * tau))
        calcium += _exponential_filter(drive[:, :n_frames], decay)
    # The rise term cancels the decay term at the event; clear rounding residue.
    np.maximum(calcium, 0.0, out=calcium)
    return counts, calcium.astype(np.float32)


def _neuropil(
    rng: np.random.Generator, p: dict[str, Any], traces: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Spatial weights (components, Y, X) in fluorescence units and activity (T, components)."""
    ny, nx = p["shape"]
    n_t, fr = p["n_frames"], p["frame_rate"]
    k = _NEUROPIL_COMPONENTS
    field = _smooth_noise(rng, (k, ny, nx), p["neuropil_scale"], axes=2)
    weights = np.exp(_NEUROPIL_CONTRAST * field)
    weights *= p["neuropil_strength"] * p["cell_brightness"] / weights.sum(axis=0).mean()

    drift = _smooth_noise(rng, (k, n_t), _NEUROPIL_DRIFT_TIMESCALE * fr, axes=1)
    activity = 1.0 + _NEUROPIL_DRIFT_SD * drift
    if p["neuropil_event_rate"] > 0:
        lo, hi = p["event_amplitude"]
        _, transients = _calcium_events(
            rng,
            n_series=k,
            n_frames=n_t,
            frame_rate=fr,
            rate=p["neuropil_event_rate"],
            amplitude=(lo * _NEUROPIL_AMPLITUDE_FACTOR, hi * _NEUROPIL_AMPLITUDE_FACTOR),
            tau_rise=p["tau_rise"],
            tau_decay=p["tau_decay"] * _NEUROPIL_DECAY_FACTOR,
        )
        activity += transients
    if traces.shape[0]:
        activity += _NEUROPIL_POPULATION_SHARE * traces.mean(axis=0)
    # Fluorescence cannot be negative, however deep a drift goes.
    np.maximum(activity, 0.0, out=activity)
    return weights.astype(np.float32), np.ascontiguousarray(activity.T, dtype=np.float32)


def _logistic(x: np.ndarray) -> np.ndarray:
    # scipy.special.expit without importing scipy (``import roitrace`` stays fast).
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _exponential_filter(x: np.ndarray, decay: float) -> np.ndarray:
    """``y[..., t] = decay * y[..., t - 1] + x[..., t]`` along the last axis.

    What scipy.signal.lfilter([1], [1, -decay]) computes, vectorised with
    NumPy alone (scipy.signal takes a second to import).
    """
    if decay == 0.0:
        return x.copy()
    rate = -math.log(decay)  # memory is 1 / rate samples
    n = x.shape[-1]
    if rate * 8 > 30:
        # Short memory: a direct sum over the few samples that still matter.
        y = x.copy()
        for lag in range(1, min(n, math.ceil(40.0 / rate))):
            y[..., lag:] += decay**lag * x[..., :-lag]
        return y
    # Long memory: within blocks short enough that decay**-block stays below
    # e**30, the recursion is a scaled cumulative sum (rounding error stays
    # ~1e-16 of the input); the state carries over from block to block.
    block = int(30.0 / rate)
    powers = decay ** np.arange(block)
    y = np.empty(x.shape, dtype=np.float64)
    carry = np.zeros(x.shape[:-1])
    for start in range(0, n, block):
        seg = x[..., start : start + block]
        p = powers[: seg.shape[-1]]
        y[..., start : start + seg.shape[-1]] = p * (
            np.cumsum(seg / p, axis=-1) + decay * carry[..., None]
        )
        carry = y[..., start + seg.shape[-1] - 1]
    return y


def _smooth_noise(
    rng: np.random.Generator, shape: tuple[int, ...], sigma: float, *, axes: int
) -> np.ndarray:
    """White noise Gaussian-filtered (sigma in samples) over the last ``axes`` axes.

    Unit variance in expectation. Filtering is done by FFT on a grid padded by
    4 sigma, so that the far edges are not correlated through wrap-around.
    """
    lead, tail = shape[: len(shape) - axes], shape[len(shape) - axes :]
    padded = tuple(n + math.ceil(4 * sigma) for n in tail)
    noise = rng.standard_normal(lead + padded)
    gains = []  # transfer function of a Gaussian, one factor per axis
    for i, n in enumerate(padded):
        freq = np.fft.rfftfreq(n) if i == axes - 1 else np.fft.fftfreq(n)
        gain = np.exp(-2.0 * (math.pi * sigma * freq) ** 2)
        gains.append(gain.reshape((-1,) + (1,) * (axes - 1 - i)))
        full = np.exp(-2.0 * (math.pi * sigma * np.fft.fftfreq(n)) ** 2)
        # White noise of unit variance comes out with variance mean(|H|^2).
        noise /= math.sqrt(np.mean(full**2))
    spectrum = np.fft.rfftn(noise, axes=range(-axes, 0))
    for gain in gains:
        spectrum *= gain
    smooth = np.fft.irfftn(spectrum, s=padded, axes=range(-axes, 0))
    return smooth[(..., *(slice(0, n) for n in tail))]


def _bleaching(n_frames: int, fraction: float) -> np.ndarray:
    if n_frames == 1:
        return np.ones(1, dtype=np.float32)
    return ((1.0 - fraction) ** (np.arange(n_frames) / (n_frames - 1))).astype(np.float32)


# --- rendering --------------------------------------------------------------


def _check_range(
    dtype: np.dtype,
    p: dict[str, Any],
    cell_photons: list,
    traces: np.ndarray,
    neuropil_photons: np.ndarray,
    activity: np.ndarray,
) -> None:
    """Raise ParameterError if the movie could overflow ``dtype``.

    Uses an upper bound of the expected photons (bleaching only lowers it) plus
    a generous noise margin, so that the check happens before any rendering.
    """
    info = np.iinfo(dtype) if dtype.kind in _INTEGER_KINDS else np.finfo(dtype)
    peak = np.zeros(p["shape"])
    for k, (box, patch) in enumerate(cell_photons):
        peak[box] += patch * (1.0 + float(traces[k].max(initial=0.0)))
    peak += np.tensordot(activity.max(axis=0), neuropil_photons, axes=1)
    photons = float(peak.max())
    gain, sigma, baseline = p["gain"], p["read_noise"], p["baseline"]
    high = baseline + gain * (photons + _RANGE_SIGMAS * math.sqrt(photons)) + _RANGE_SIGMAS * sigma
    low = baseline - _RANGE_SIGMAS * sigma
    if high > info.max:
        raise ParameterError(
            f"the simulated movie would reach about {high:.4g}, more than {dtype} holds "
            f"({info.max:.4g}); lower photons_per_unit, gain, cell_brightness or baseline, "
            "or use a wider dtype such as 'uint32' or 'float32'"
        )
    if low < info.min:
        raise ParameterError(
            f"the simulated movie would go down to about {low:.4g}, below what {dtype} holds "
            f"({info.min:.4g}); raise baseline above {_RANGE_SIGMAS:g} x read_noise "
            "or use a signed dtype such as 'float32'"
        )


def _render(
    dtype: np.dtype,
    p: dict[str, Any],
    *,
    cell_photons: list,
    traces: np.ndarray,
    neuropil_photons: np.ndarray,
    activity: np.ndarray,
    bleaching: np.ndarray,
    noise_seq: np.random.SeedSequence,
) -> np.ndarray:
    """Draw the noisy movie chunk by chunk (threads, one random stream per chunk)."""
    ny, nx = p["shape"]
    n_t = p["n_frames"]
    movie = np.empty((n_t, ny, nx), dtype=dtype)
    step = max(1, _CHUNK_PIXELS // (ny * nx))
    starts = range(0, n_t, step)
    seqs = noise_seq.spawn(len(starts))

    def render(i: int) -> None:
        t0 = starts[i]
        t1 = min(t0 + step, n_t)
        lam = (activity[t0:t1] @ neuropil_photons).reshape(t1 - t0, ny, nx)
        for k, (box, patch) in enumerate(cell_photons):
            lam[(slice(None), *box)] += (1.0 + traces[k, t0:t1])[:, None, None] * patch
        lam *= bleaching[t0:t1, None, None]
        rng = np.random.default_rng(seqs[i])
        frames = _shot_noise(rng, lam)
        frames *= np.float32(p["gain"])
        frames += np.float32(p["baseline"])
        if p["read_noise"] > 0:
            frames += np.float32(p["read_noise"]) * rng.standard_normal(
                frames.shape, dtype=np.float32
            )
        movie[t0:t1] = _cast(frames, dtype)

    workers = min(_MAX_WORKERS, os.cpu_count() or 1, len(starts))
    if workers <= 1:
        for i in range(len(starts)):
            render(i)
    else:
        with ThreadPoolExecutor(workers) as pool:
            for _ in pool.map(render, range(len(starts))):
                pass
    return movie


def _shot_noise(rng: np.random.Generator, lam: np.ndarray) -> np.ndarray:
    """Photon counts (float32, whole numbers) for expected counts ``lam`` (float32).

    Exact Poisson draws are slow; from ``_EXACT_POISSON_BELOW`` photons up, a
    normal draw with the Cornish-Fisher skewness term, rounded, matches Poisson's
    mean, variance and skewness and is within 0.25 % of it in total variation.
    """
    z = rng.standard_normal(lam.shape, dtype=np.float32)
    # counts = lam + sqrt(lam - 5/36) z + (z^2 - 1) / 6, in place: chunks are large.
    # The skew term adds 1/18 to the variance and rounding 1/12; 5/36 takes them off.
    counts = np.square(z)
    counts -= 1.0
    counts *= np.float32(1.0 / 6.0)
    spread = np.maximum(lam - np.float32(5.0 / 36.0), 0.0)
    np.sqrt(spread, out=spread)
    spread *= z
    counts += spread
    counts += lam
    np.rint(counts, out=counts)
    few = lam < _EXACT_POISSON_BELOW
    if few.any():
        counts[few] = rng.poisson(lam[few])
    return counts


def _cast(frames: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind not in _INTEGER_KINDS:
        return frames.astype(dtype)
    np.rint(frames, out=frames)
    info = np.iinfo(dtype)
    # The range check leaves a 7-sigma margin, so this is only a safety net:
    # never clip silently.
    if frames.size and (frames.min() < info.min or frames.max() > info.max):
        raise ParameterError(
            f"simulated values {frames.min():.4g}..{frames.max():.4g} do not fit {dtype}; "
            "lower photons_per_unit or gain, or use a wider dtype such as 'float32'"
        )
    return frames.astype(dtype)
