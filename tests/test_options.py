"""Option objects (Neuropil, Baseline, Execution) and the one vocabulary of keywords."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import roitrace as rt
from roitrace.options import (
    AGGREGATION_METHODS,
    PROJECTION_METHODS,
    THRESHOLD_METHODS,
    parse_size,
)


@pytest.fixture(scope="module")
def sim():
    return rt.simulate(shape=(40, 40), n_frames=120, n_cells=3, seed=2)


# -- option objects ---------------------------------------------------------------------------
def test_neuropil_from_dict_equals_object_and_pickles():
    npil = rt.Neuropil.coerce({"gap": 2, "width": 3, "min_pixels": 50})
    assert npil == rt.Neuropil(gap=2, width=3, min_pixels=50)
    assert pickle.loads(pickle.dumps(npil)) == npil
    assert rt.Neuropil(np.int64(2), 3.0).gap == 2 and type(rt.Neuropil(2.0, 3).gap) is int


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"gap": 1}, r"lacks 'width': give 'gap' and 'width'"),
        ({"gap": 1, "width": 2, "widht": 3}, r"unknown key 'widht'; the keys are gap, width"),
        ({"gap": -1, "width": 2}, r"neuropil gap=-1: use a whole number of pixels, 0 or more"),
        ({"gap": 1, "width": 0}, r"neuropil width=0: use a whole number of pixels, 1 or more"),
        ({"gap": 1.5, "width": 2}, r"gap=1.5"),
        ([1, 2], r"give a roitrace.Neuropil or a dict"),
    ],
)
def test_neuropil_mistakes(value, match):
    with pytest.raises(rt.ParameterError, match=match):
        rt.Neuropil.coerce(value)


def test_baseline_checks_and_describes():
    assert rt.Baseline(q=10, window=300).describe() == (
        "10th percentile in a sliding window of 300 frames"
    )
    with pytest.raises(rt.ParameterError, match="q must be >= 0 and <= 100"):
        rt.Baseline(q=120)
    with pytest.raises(rt.ParameterError, match="method='rolling' is unknown"):
        rt.Baseline(method="rolling")


def test_execution_sizes_and_clashes():
    assert parse_size("m", "64 MiB") == 64 * 2**20
    assert parse_size("m", "1.5GB") == 1_500_000_000
    assert parse_size("m", 4096) == 4096
    with pytest.raises(rt.ParameterError, match="is not a size"):
        parse_size("chunk_memory", "lots")
    with pytest.raises(rt.ParameterError, match="not both"):
        rt.Execution(chunk_frames=10, chunk_memory="1MB")
    with pytest.raises(rt.ParameterError, match="chunk_frames must be >= 1"):
        rt.Execution(chunk_frames=0)
    merged = rt.Execution.of(rt.Execution(chunk_frames=5), frames=(0, 10), progress=False)
    assert (merged.chunk_frames, merged.frames, merged.progress) == (5, (0, 10), False)
    with pytest.raises(rt.ParameterError, match="chunk_frames given both"):
        rt.Execution.of(rt.Execution(chunk_frames=5), chunk_frames=6)
    with pytest.raises(rt.ParameterError, match=r"give a roitrace\.Execution or a dict"):
        rt.Execution.of("fast")


def test_execution_gives_the_same_numbers_every_way(sim):
    labels = sim.labels
    plain = rt.extract(sim.movie, labels, frames=(10, 90), chunk_frames=7)
    via = rt.extract(
        sim.movie, labels, execution=rt.Execution(frames=(10, 90), chunk_memory=7 * 40 * 40 * 2)
    )
    from_dict = rt.extract(sim.movie, labels, execution={"frames": (10, 90), "threads": 1})
    for ds in (via, from_dict):
        assert_array_equal(ds["F"].values, plain["F"].values)
    proj = rt.projection(sim.movie, "std", execution=rt.Execution(frames=(10, 90), threads=1))
    # numpy sums around the mean, roitrace around the first frame: equal to rounding
    np.testing.assert_allclose(
        proj, np.std(sim.movie[10:90].astype(np.float64), axis=0), rtol=1e-13
    )


def test_too_many_threads_is_an_error(sim):
    from roitrace import _kernels as kernels

    if not kernels.available():
        pytest.skip("threads only apply to the compiled kernels")
    with pytest.raises(rt.ParameterError, match=r"at most \d+ threads"):
        rt.extract(sim.movie, sim.labels, execution={"threads": 100_000})


# -- one vocabulary: method= everywhere, old names deprecated --------------------------------
def _same(a, b):
    if hasattr(a, "equals"):
        return a.equals(b)
    return np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize(
    ("call", "old", "new"),
    [
        (lambda s, **k: rt.projection(s.movie, **k), {"kind": "max"}, {"method": "max"}),
        (
            lambda s, **k: rt.projections(s.movie, **k),
            {"kinds": ("mean",)},
            {"methods": ("mean",)},
        ),
        (
            lambda s, **k: rt.pixel_weights(None, s.labels == 1, **k),
            {"by": "proximity"},
            {"method": "proximity"},
        ),
        (
            lambda s, **k: rt.aggregate(s.movie[:, s.labels == 1], **k),
            {"how": "median"},
            {"method": "median"},
        ),
        (
            lambda s, **k: rt.extract(s.movie, s.labels, **k)["F"],
            {"how": "median"},
            {"method": "median"},
        ),
        (
            lambda s, **k: rt.extract(s.movie, s.labels, neuropil={"gap": 1, "width": 2}, **k)[
                "Fneu"
            ],
            {"neuropil_how": "median"},
            {"neuropil_method": "median"},
        ),
        (
            lambda s, **k: rt.extract(s.movie, s.labels, **k)["dff"],
            {"dff_q": 20},
            {"baseline": {"q": 20}},
        ),
        (
            lambda s, **k: rt.dff(s.traces[0] + 1, **k),
            {"baseline": "percentile"},
            {"method": "percentile"},
        ),
    ],
)
def test_old_keywords_still_work_with_a_deprecation_warning(sim, call, old, new):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expected = call(sim, **new)
    (name,) = old
    with pytest.warns(DeprecationWarning, match=rf"\({name}=\.\.\.\) is deprecated; use") as rec:
        got = call(sim, **old)
    assert rec[0].filename == __file__  # attributed to the caller's line
    if isinstance(expected, dict):
        assert all(_same(expected[k], got[k]) for k in expected)
    else:
        assert _same(expected, got)


def test_old_and_new_name_together_is_an_error(sim):
    with pytest.raises(rt.ParameterError, match=r"give method= only \(how= is its old name\)"):
        rt.extract(sim.movie, sim.labels, how="mean", method="median")


def test_the_command_line_offers_the_library_choices():
    from roitrace import cli

    assert tuple(cli.Kind) == PROJECTION_METHODS
    assert tuple(cli.Method) == THRESHOLD_METHODS
    assert tuple(cli.How) == AGGREGATION_METHODS


def test_command_line_names_its_own_options_for_method(sim):
    """method= is --method for a threshold, --how for the extraction, --kind for the
    project command: the stage running says which."""
    from roitrace import cli

    with pytest.raises(rt.ParameterError) as info, cli._speaking(method="--how"):
        rt.plan_extraction(sim.labels, (40, 40), proportion=0.2)
    assert "only with --how trimmed_mean (--how mean)" in str(info.value)
    with pytest.raises(rt.ParameterError) as info, cli._speaking(method="--kind"):
        rt.projection(sim.movie, "percentile")
    assert cli.cli_words(str(info.value)).startswith("--kind percentile needs q between")
