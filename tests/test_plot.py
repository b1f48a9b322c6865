"""Tests of roitrace.plot: the notebook's figures as functions."""

from __future__ import annotations

import json
import re
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_hex, to_rgba
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure
from matplotlib.path import Path as MplPath
from skimage.morphology import dilation, disk

import roitrace.plot as plot
from roitrace.errors import ParameterError, RoitraceError, ShapeMismatchError


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def cell():
    """A projection with one round cell, its mask and a neuropil ring around it."""
    yy, xx = np.mgrid[:40, :48]
    projection = 100 + 900 * np.exp(-((yy - 18) ** 2 + (xx - 22) ** 2) / 40.0)
    mask = projection > 500
    ring = dilation(mask, disk(3)) & ~dilation(mask, disk(2))
    return projection, mask, ring


def legend_texts(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def contour_sets(ax: Axes) -> list[ContourSet]:
    return [c for c in ax.collections if isinstance(c, ContourSet)]


# --------------------------------------------------------------------- projection_contour


def test_projection_contour_outlines_the_mask(cell):
    projection, mask, _ = cell
    ax = plot.projection_contour(projection, mask)
    assert isinstance(ax, Axes)
    np.testing.assert_array_equal(ax.images[0].get_array(), projection)
    (cs,) = contour_sets(ax)
    assert list(cs.levels) == [0.5]
    # The outline encloses exactly the mask's pixel centres.
    polygons = [p for path in cs.get_paths() for p in path.to_polygons()]
    assert len(polygons) == 1
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    centres = np.column_stack([xx.ravel(), yy.ravel()])
    inside = MplPath(polygons[0]).contains_points(centres).reshape(mask.shape)
    np.testing.assert_array_equal(inside, mask)
    assert ax.get_legend() is None
    assert ax.get_title() == "projection with mask outline"
    # The view is the image, not the padded contour grid; rows go down.
    assert ax.get_xlim() == (-0.5, mask.shape[1] - 0.5)
    assert ax.get_ylim() == (mask.shape[0] - 0.5, -0.5)


def test_projection_contour_colour_and_title(cell):
    projection, mask, _ = cell
    ax = plot.projection_contour(projection, mask, color="yellow", title="my cell")
    (cs,) = contour_sets(ax)
    np.testing.assert_allclose(cs.get_edgecolor()[0], to_rgba("yellow"))
    assert ax.get_title() == "my cell"
    ax = plot.projection_contour(projection, mask, title="")
    assert ax.get_title() == ""


def test_projection_contour_several_masks_get_cycle_colours_and_a_legend(cell):
    projection, mask, _ = cell
    masks = [projection > 300, mask, projection > 800]
    ax = plot.projection_contour(projection, masks)
    sets = contour_sets(ax)
    assert len(sets) == 3
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for cs, colour in zip(sets, cycle, strict=False):
        np.testing.assert_allclose(cs.get_edgecolor()[0], to_rgba(colour))
    assert legend_texts(ax) == ["mask 1", "mask 2", "mask 3"]
    handles = ax.get_legend().legend_handles
    assert [to_hex(h.get_color()) for h in handles] == [to_hex(c) for c in cycle[:3]]


def test_projection_contour_dict_stack_and_explicit_colours(cell):
    projection, mask, _ = cell
    ax = plot.projection_contour(projection, {"std > 500": mask, "std > 300": projection > 300})
    assert legend_texts(ax) == ["std > 500", "std > 300"]
    ax = plot.projection_contour(projection, np.stack([mask, mask]), color=["red", "cyan"])
    sets = contour_sets(ax)
    np.testing.assert_allclose(sets[1].get_edgecolor()[0], to_rgba("cyan"))
    with pytest.raises(ParameterError, match="2 masks"):
        plot.projection_contour(projection, [mask, mask], color=["red"])


def test_projection_contour_empty_and_full_masks_do_not_warn(cell):
    projection, mask, _ = cell
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = plot.projection_contour(projection, np.zeros_like(mask))
        assert contour_sets(ax) == []
        ax = plot.projection_contour(projection, [np.zeros_like(mask), mask])
        assert len(contour_sets(ax)) == 1
        assert legend_texts(ax) == ["mask 1 (empty)", "mask 2"]
        # A mask filling the image is outlined along the image border.
        ax = plot.projection_contour(projection, np.ones_like(mask))
        (cs,) = contour_sets(ax)
        vertices = cs.get_paths()[0].vertices
        assert vertices[:, 0].min() == pytest.approx(-0.5)
        assert vertices[:, 0].max() == pytest.approx(mask.shape[1] - 0.5)


def test_projection_contour_shape_mismatch(cell):
    projection, mask, _ = cell
    with pytest.raises(ShapeMismatchError, match=r"\(40, 47\).*\(40, 48\)"):
        plot.projection_contour(projection, mask[:, :-1])
    with pytest.raises(ShapeMismatchError, match="mask 2"):
        plot.projection_contour(projection, [mask, mask[:-1]])
    with pytest.raises(ShapeMismatchError, match=r"2-D.*np\.std"):
        plot.projection_contour(np.stack([projection] * 3), mask)


def test_projection_contour_draws_into_given_axes(cell):
    projection, mask, _ = cell
    fig, (a, b) = plt.subplots(1, 2)
    assert plot.projection_contour(projection, mask, ax=b) is b
    assert len(a.images) == 0 and len(b.images) == 1
    assert plt.get_fignums() == [fig.number]


# --------------------------------------------------------------------- pixels_scatter


def test_pixels_scatter_marks_every_mask_pixel(cell):
    projection, mask, _ = cell
    ax = plot.pixels_scatter(projection, mask)
    assert isinstance(ax, Axes)
    (points,) = ax.collections
    y, x = np.where(mask)
    np.testing.assert_array_equal(points.get_offsets(), np.column_stack([x, y]))
    assert legend_texts(ax) == [f"cell pixels ({mask.sum()})"]


def test_pixels_scatter_ring_in_a_second_colour(cell):
    projection, mask, ring = cell
    ax = plot.pixels_scatter(projection, mask, ring, s=3)
    cells, npil = ax.collections
    y, x = np.where(ring)
    np.testing.assert_array_equal(npil.get_offsets(), np.column_stack([x, y]))
    assert npil.get_sizes()[0] == 3
    assert not np.allclose(cells.get_facecolor(), npil.get_facecolor())
    assert legend_texts(ax) == [f"cell pixels ({mask.sum()})", f"neuropil ring ({ring.sum()})"]
    assert ax.get_xlabel().startswith("x") and ax.get_ylabel().startswith("y")


def test_pixels_scatter_shape_mismatch(cell):
    projection, mask, ring = cell
    with pytest.raises(ShapeMismatchError, match="ring"):
        plot.pixels_scatter(projection, mask, ring[1:])
    with pytest.raises(ShapeMismatchError, match="mask"):
        plot.pixels_scatter(projection, mask.T)


# --------------------------------------------------------------------- weights


def test_weights_has_labelled_colorbar(cell):
    projection, mask, _ = cell
    image = np.zeros_like(projection)
    image[mask] = projection[mask] / projection[mask].sum()
    ax = plot.weights(image)
    assert isinstance(ax, Axes)
    colorbar = ax.images[0].colorbar
    assert colorbar is not None
    assert colorbar.ax.get_ylabel() == "weight"
    assert ax.get_title() == "pixel weights"
    assert len(ax.figure.axes) == 2  # the image and its colorbar
    with pytest.raises(ShapeMismatchError, match="2-D"):
        plot.weights(image.ravel())


# --------------------------------------------------------------------- traces


def test_traces_single_trace_in_frames():
    trace = np.arange(50.0) ** 0.5
    ax = plot.traces(trace)
    (line,) = ax.lines
    np.testing.assert_array_equal(line.get_xdata(), np.arange(50))
    np.testing.assert_array_equal(line.get_ydata(), trace)
    assert ax.get_xlabel() == "frame"
    assert ax.get_ylabel() == "fluorescence (a.u.)"
    assert ax.get_legend() is None


def test_traces_frame_rate_gives_seconds():
    ax = plot.traces(np.ones((2, 30)), frame_rate=15.0, title="two cells")
    np.testing.assert_allclose(ax.lines[1].get_xdata(), np.arange(30) / 15.0)
    assert ax.get_xlabel() == "time (s)"
    assert ax.get_title() == "two cells"
    assert legend_texts(ax) == ["trace 0", "trace 1"]


def test_traces_labels_dict_and_list():
    data = {"cell A": np.zeros(10), "neuropil": np.ones(10)}
    ax = plot.traces(data)
    assert legend_texts(ax) == ["cell A", "neuropil"]
    ax = plot.traces(np.zeros((2, 10)), labels=["a", "b"])
    assert legend_texts(ax) == ["a", "b"]
    ax = plot.traces(np.zeros(10), labels=["only one"])
    assert legend_texts(ax) == ["only one"]
    ax = plot.traces([np.zeros(10), np.ones(7)])  # lengths may differ
    assert [line.get_xdata().size for line in ax.lines] == [10, 7]
    with pytest.raises(ParameterError, match="3 labels for 2 traces"):
        plot.traces(np.zeros((2, 10)), labels=["a", "b", "c"])


def test_traces_offset_stacks_and_orders_legend_top_down():
    data = np.zeros((3, 20))
    ax = plot.traces(data, offset=2.5)
    for i, line in enumerate(ax.lines):
        np.testing.assert_array_equal(line.get_ydata(), np.full(20, 2.5 * i))
    assert legend_texts(ax) == ["trace 2", "trace 1", "trace 0"]
    assert ax.get_ylabel() == "fluorescence (a.u.), stacked 2.5 apart"
    with pytest.raises(ParameterError, match="offset"):
        plot.traces(data, offset=float("nan"))


def test_traces_many_traces_no_legend():
    ax = plot.traces(np.zeros((plot.MAX_LEGEND_ENTRIES + 1, 5)), offset=1)
    assert len(ax.lines) == plot.MAX_LEGEND_ENTRIES + 1
    assert ax.get_legend() is None


def test_traces_dataarray_uses_roi_and_time_coordinates():
    xr = pytest.importorskip("xarray")
    values = np.arange(12.0).reshape(3, 4)
    da = xr.DataArray(
        values,
        dims=("roi", "time"),
        coords={"roi": [3, 7, 9], "time": np.arange(4) * 0.5},
    )
    ax = plot.traces(da)
    assert legend_texts(ax) == ["roi 3", "roi 7", "roi 9"]
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [0.0, 0.5, 1.0, 1.5])
    np.testing.assert_array_equal(ax.lines[2].get_ydata(), values[2])
    assert ax.get_xlabel() == "time (s)"
    # Dims in the other order are transposed by name; string labels are kept.
    da2 = xr.DataArray(values.T, dims=("time", "roi"), coords={"roi": ["a", "b", "c"]})
    ax = plot.traces(da2)
    assert legend_texts(ax) == ["a", "b", "c"]
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), values[1])
    assert ax.get_xlabel() == "frame"
    # An explicit frame rate overrides the time coordinate.
    ax = plot.traces(da, frame_rate=2.0)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), np.arange(4) / 2.0)
    # Without a time coordinate, extract()'s frame coordinate gives the frame numbers.
    da3 = xr.DataArray(
        values, dims=("roi", "time"), coords={"roi": [1, 2, 3], "frame": ("time", [5, 6, 7, 8])}
    )
    ax = plot.traces(da3)
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [5, 6, 7, 8])
    assert ax.get_xlabel() == "frame"
    ax = plot.traces(da3, frame_rate=2.0)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [2.5, 3.0, 3.5, 4.0])
    assert ax.get_xlabel() == "time (s)"
    # One trace with a time dimension only.
    ax = plot.traces(da.isel(roi=0))
    assert len(ax.lines) == 1 and ax.get_legend() is None


def test_traces_rejects_bad_input():
    with pytest.raises(ParameterError, match="shape"):
        plot.traces(np.zeros((2, 3, 4)))
    with pytest.raises(ParameterError, match="frame_rate"):
        plot.traces(np.zeros(5), frame_rate=0)
    with pytest.raises(ParameterError, match="no trace"):
        plot.traces({})


# --------------------------------------------------------------------- weighted_vs_mean


def test_weighted_vs_mean_two_panels_and_correlation():
    rng = np.random.default_rng(1)
    mean = 100 + rng.normal(size=200).cumsum()
    weighted = mean + rng.normal(scale=0.5, size=200)
    fig = plot.weighted_vs_mean(mean, weighted, frame_rate=10.0)
    assert isinstance(fig, Figure)
    top, bottom = fig.axes
    assert legend_texts(top) == ["mean", "weighted mean"]
    np.testing.assert_allclose(top.lines[1].get_ydata(), weighted)
    diff_line = bottom.lines[-1]
    np.testing.assert_allclose(diff_line.get_ydata(), weighted - mean)
    np.testing.assert_allclose(diff_line.get_xdata(), np.arange(200) / 10.0)
    assert bottom.get_xlabel() == "time (s)"
    r = np.corrcoef(mean, weighted)[0, 1]
    match = re.search(r"r = ([-0-9.]+)\)", fig.get_suptitle())
    assert match is not None
    assert float(match.group(1)) == pytest.approx(r, abs=1e-4)


@pytest.mark.parametrize(
    ("r", "text"),
    [
        (0.5, "0.5000"),
        (-0.12345, "-0.1235"),
        (0.999996, "0.999996"),
        (0.9999999, "1.0000"),
        (1.0, "1.0000"),
    ],
)
def test_correlation_text_never_rounds_to_one(r, text):
    assert plot._format_r(r) == text


def test_weighted_vs_mean_constant_trace_and_given_figure():
    fig = plt.figure()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = plot.weighted_vs_mean(np.ones(10), np.arange(10.0), fig=fig)
    assert out is fig
    assert "undefined" in fig.get_suptitle()
    assert fig.axes[1].get_xlabel() == "frame"
    with pytest.raises(ParameterError, match="already holds axes"):
        plot.weighted_vs_mean(np.ones(10), np.ones(10), fig=fig)


def test_weighted_vs_mean_length_mismatch():
    with pytest.raises(ShapeMismatchError, match=r"10 frames.*9"):
        plot.weighted_vs_mean(np.zeros(10), np.zeros(9))
    with pytest.raises(RoitraceError):
        plot.weighted_vs_mean(np.zeros((2, 5)), np.zeros((2, 5)))


# --------------------------------------------------------------------- dff


def test_dff_label_and_zero_line():
    ax = plot.dff(np.array([[0.0, 0.5, 0.1], [0.0, -0.1, 0.2]]), labels=["a", "b"], frame_rate=2)
    assert ax.get_ylabel() == "dF/F0"
    assert ax.get_xlabel() == "time (s)"
    assert legend_texts(ax) == ["a", "b"]
    zero = ax.lines[-1]
    assert zero.get_linestyle() == "--"
    np.testing.assert_array_equal(zero.get_ydata(), [0, 0])


# --------------------------------------------------------------------- save


def test_save_writes_png_with_metadata(tmp_path, cell):
    projection, mask, _ = cell
    ax = plot.projection_contour(projection, mask)
    params = {"roitrace": "0.1.0", "threshold": "500", "method": "mean"}
    out = plot.save(ax.figure, tmp_path / "sub" / "contour.png", metadata=params, dpi=50)
    assert out == tmp_path / "sub" / "contour.png"
    image = mpimg.imread(out)
    assert image.ndim == 3 and image.shape[0] > 10
    assert sorted(p.name for p in out.parent.iterdir()) == ["contour.png"]
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - PIL comes with matplotlib
        assert json.dumps(params, sort_keys=True).encode() in out.read_bytes()
    else:
        with Image.open(out) as im:
            text = dict(im.text)
        assert json.loads(text["Description"]) == params
        assert text["Software"].startswith("roitrace")


def test_save_standard_keys_axes_and_other_formats(tmp_path):
    ax = plot.traces(np.arange(10.0))
    out = plot.save(ax, tmp_path / "t.png", metadata={"Title": "trace", "Software": "me"})
    from PIL import Image

    with Image.open(out) as im:
        assert im.text["Title"] == "trace"
        assert im.text["Software"] == "me"
    assert (
        plot.save(ax, tmp_path / "t.svg", metadata={"threshold": 3}).read_text().count("threshold")
    )
    assert plot.save(ax, tmp_path / "t.jpg").stat().st_size > 0
    with pytest.raises(ParameterError, match="metadata"):
        plot.save(ax, tmp_path / "t2.jpg", metadata={"a": "b"})
    with pytest.raises(ParameterError, match="suffix"):
        plot.save(ax, tmp_path / "noext")
    with pytest.raises(ParameterError, match="cannot write"):
        plot.save(ax, tmp_path / "t.xyz")
    assert not (tmp_path / "t2.jpg").exists()


def test_save_failure_leaves_no_file(tmp_path, monkeypatch):
    fig = plot.traces(np.arange(10.0)).figure

    def broken(*args, **kwargs):
        # Write something first, as a crash half-way through would.
        with open(args[0], "wb") as fh:
            fh.write(b"half a PNG")
        raise OSError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        plot.save(fig, tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_save_failure_keeps_previous_file(tmp_path, monkeypatch):
    fig = plot.traces(np.arange(10.0)).figure
    target = plot.save(fig, tmp_path / "out.png")
    before = target.read_bytes()
    monkeypatch.setattr(fig, "savefig", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        plot.save(fig, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


# --------------------------------------------------------------------- general


def test_functions_never_show(monkeypatch, cell):
    projection, mask, ring = cell

    def no_show(*args, **kwargs):  # pragma: no cover - failing path
        raise AssertionError("plt.show() called")

    monkeypatch.setattr(plt, "show", no_show)
    plot.projection_contour(projection, mask)
    plot.pixels_scatter(projection, mask, ring)
    plot.weights(projection)
    plot.traces(np.zeros(5))
    plot.weighted_vs_mean(np.arange(5.0), np.arange(5.0))
    plot.dff(np.zeros(5))


# --------------------------------------------------------------------- heatmap


def test_heatmap_keeps_every_row_of_many_cells():
    # "nearest" drops rows when there are more cells than pixel rows: anti-alias then
    many = plot.heatmap(np.random.default_rng(0).random((1000, 50)))
    assert many.images[0].get_interpolation() == "auto"
    few = plot.heatmap(np.random.default_rng(0).random((9, 50)))
    assert few.images[0].get_interpolation() == "nearest"  # rows stay sharp


# --------------------------------------------------------------------- the demo's figures


def test_demo_figures_show_what_their_captions_say(tmp_path, monkeypatch):
    from roitrace.datasets import demo

    seen = {}
    original = plot.save

    def save(fig, path, **kwargs):
        seen[path.name] = fig
        return original(fig, path, **kwargs)

    monkeypatch.setattr(plot, "save", save)
    # keep the figures open for the checks below (the demo closes each once saved)
    monkeypatch.setattr(plt, "close", lambda *args, **kwargs: None)
    summary = demo.run_demo(tmp_path)
    assert len(seen) == 8

    # 3: zoomed on the cell (with a 3-pixel margin), not the whole 48 x 48 frame
    ax = seen["3_weights.png"].axes[0]
    (x0, x1), (y1, y0) = ax.get_xlim(), ax.get_ylim()
    assert x1 - x0 < 24 and y1 - y0 < 24

    # 4: the mean, then each other aggregation's difference from it in its own panel
    fig = seen["4_aggregations.png"]
    traces_axes = [a for a in fig.axes if a.lines]
    assert len(traces_axes) == 4
    mean = traces_axes[0].lines[0].get_ydata()
    for ax in traces_axes[1:]:
        diff = ax.lines[0].get_ydata()
        assert np.abs(diff).max() < 0.2 * np.ptp(mean)  # small: visible only like this
    assert [ax.get_ylabel() for ax in traces_axes[1:]] == [
        "median\n- mean",
        "weighted\n- mean",
        "trimmed_mean\n- mean",
    ]

    # 7: the correlations of the README's caption, in the legend and the title
    ax = seen["7_truth.png"].axes[0]
    r_raw, r_corrected = summary["correlations"]["mean"]
    assert legend_texts(ax) == [
        f"F - 0.7 Fneu (r = {r_corrected:.3f})",
        f"F (r = {r_raw:.3f})",
        "truth",
    ]
    (r_loose, _), *_ = (v for k, v in summary["correlations"].items() if "loose" in k)
    assert f"a loose mask gives r = {r_loose:.3f}" in ax.get_title()
