"""roitrace: turn calcium-imaging movies into one fluorescence trace per cell.

The pipeline, one module per stage::

    open_movie -> projection -> threshold (mask) -> find_rois
               -> plan_extraction (cells, neuropil rings, weights)
               -> extract (one pass: aggregate) -> measure -> dff

Every stage that reads pixels streams the movie through :mod:`roitrace.engine`.
"""

import sys as _sys

from ._version import __version__
from .aggregate import aggregate
from .batch import batch
from .contamination import NeuropilCoefficient, neuropil_coefficient
from .datasets import Simulation, fetch, simulate
from .deconvolution import Deconvolution, deconvolve, detect_events
from .errors import (
    BaselineError,
    ClusterError,
    DiskFullError,
    EmptyMaskError,
    FetchError,
    FrameRangeError,
    InputFormatError,
    InputNotFoundError,
    MissingDependencyError,
    MovieError,
    MovieFormatError,
    MovieNotFoundError,
    NonFiniteError,
    NotAMovieError,
    OutputError,
    ParameterError,
    ResultError,
    ResultFormatError,
    ResultNotFoundError,
    RoiFormatError,
    RoiNotFoundError,
    RoitraceError,
    ShapeMismatchError,
    ShortTraceError,
    WeightsError,
)
from .extract import extract
from .io import read_rois, write_rois
from .movie import Movie, as_movie, open_movie
from .neuropil import neuropil_ring
from .normalize import Dff, baseline, dff, minmax, noise_level, zscore
from .options import Baseline, Deconvolve, Execution, Neuropil, NWBImagingPlane, NWBSession
from .plan import ExtractionPlan, plan_extraction
from .projection import projection, projections
from .quality import quality_control
from .report import report
from .rois import Roi, RoiSet, label
from .save import load, save
from .segment import find_rois
from .threshold import pixels, threshold
from .traces import pixel_traces, pixel_weights, weights_image

__all__ = [
    "Baseline",
    "BaselineError",
    "ClusterError",
    "Deconvolution",
    "Deconvolve",
    "Dff",
    "DiskFullError",
    "EmptyMaskError",
    "Execution",
    "ExtractionPlan",
    "FetchError",
    "FrameRangeError",
    "InputFormatError",
    "InputNotFoundError",
    "MissingDependencyError",
    "Movie",
    "MovieError",
    "MovieFormatError",
    "MovieNotFoundError",
    "NWBImagingPlane",
    "NWBSession",
    "Neuropil",
    "NeuropilCoefficient",
    "NonFiniteError",
    "NotAMovieError",
    "OutputError",
    "ParameterError",
    "ResultError",
    "ResultFormatError",
    "ResultNotFoundError",
    "Roi",
    "RoiFormatError",
    "RoiNotFoundError",
    "RoiSet",
    "RoitraceError",
    "ShapeMismatchError",
    "ShortTraceError",
    "Simulation",
    "WeightsError",
    "__version__",
    "aggregate",
    "as_movie",
    "baseline",
    "batch",
    "deconvolve",
    "detect_events",
    "dff",
    "extract",
    "fetch",
    "find_rois",
    "label",
    "load",
    "minmax",
    "neuropil_coefficient",
    "neuropil_ring",
    "noise_level",
    "open_movie",
    "pixel_traces",
    "pixel_weights",
    "pixels",
    "plan_extraction",
    "projection",
    "projections",
    "quality_control",
    "read_rois",
    "report",
    "save",
    "simulate",
    "threshold",
    "weights_image",
    "write_rois",
    "zscore",
]


#: Modules that moved, by their old names (relative to roitrace).
_MOVED = {
    "masks": "threshold",
    "kernels": "_kernels",
    "simulate": "datasets.simulate",
    "fetch": "datasets.fetch",
    "demo": "datasets.demo",
    "imagej": "io.imagej",
    "nwb": "io.nwb",
    "suite2p": "io.suite2p",
}


def _keep_old_module_paths() -> None:
    """``import roitrace.masks``, ``from roitrace.nwb import ...``: the old dotted names
    are the moved modules themselves (patching one patches the other). Attributes that
    are functions of the same name (``roitrace.simulate``, ``roitrace.fetch``) stay so."""
    import importlib

    for old, new in _MOVED.items():
        module = importlib.import_module(f"{__name__}.{new}")
        _sys.modules.setdefault(f"{__name__}.{old}", module)
        globals().setdefault(old, module)


_keep_old_module_paths()


def __getattr__(name: str):
    # matplotlib loads on first use of roitrace.plot, so `import roitrace` stays fast.
    if name == "plot":
        import importlib

        return importlib.import_module(".plot", __name__)
    raise AttributeError(f"module 'roitrace' has no attribute {name!r}")
