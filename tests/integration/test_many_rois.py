"""Many ROIs (10^4 - 10^5): RoiSet operations stay linear, figures stay small in
memory and readable, NWB stores sparse pixel masks.

The timings behind these tests (issue 9): 100,000 ImageJ ROIs took 268 s to read
(a quadratic duplicate-id check), ``roi_contours`` took 7.5 MB per ROI on 512 x 512
frames, and NWB wrote one dense frame-sized mask per ROI. The tests check results
and memory, not time: they would take minutes (or run out of memory) before.
"""

from __future__ import annotations

import json
import tracemalloc
import zipfile

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import roitrace as rt
from roitrace import plot
from roitrace.neuropil import neuropil_rings
from roitrace.rois import Roi, RoiSet


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def grid_labels(n: int, side: int, size: int = 3, step: int = 4) -> np.ndarray:
    """A label image of ``n`` squares ``size`` px wide, one every ``step`` px, in rows of
    ``side``: ids 1..n in scan order."""
    lab = np.zeros((side * step, side * step), np.int32)
    k = np.arange(n)
    r, c = np.divmod(k, side)
    for dy in range(size):
        for dx in range(size):
            lab[r * step + dy, c * step + dx] = k + 1
    return lab


# -- RoiSet ------------------------------------------------------------------------------------
def test_20000_imagej_rois_from_a_zip(tmp_path):
    roifile = pytest.importorskip("roifile")
    n, side = 20_000, 142
    path = tmp_path / "RoiSet.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for k in range(n):
            r, c = divmod(k, side)
            roi = roifile.ImagejRoi(
                roitype=roifile.ROI_TYPE.RECT,
                left=c * 4,
                top=r * 4,
                right=c * 4 + 3,
                bottom=r * 4 + 3,
                name=f"cell {k:05d}",
            )
            zf.writestr(f"cell {k:05d}.roi", roi.tobytes())
    rois = rt.read_rois(path, shape=(side * 4, side * 4))
    assert len(rois) == n and rois.ids == list(range(1, n + 1))
    assert rois.names[:2] == ["cell 00000", "cell 00001"]
    assert_array_equal(rois.to_labels(), grid_labels(n, side))
    assert rois.coverage().max() == 1
    cy, cx = rois.centroids()[-1]
    assert (cy, cx) == ((n - 1) // side * 4 + 1, (n - 1) % side * 4 + 1)


def test_roiset_of_100000_rois():
    n, side = 100_000, 317
    lab = grid_labels(n, side, size=2, step=3)
    rois = RoiSet.from_labels(lab)  # ran a quadratic duplicate check: minutes
    assert len(rois) == n
    assert_array_equal(rois.to_labels(), lab)
    assert int(rois.coverage().sum()) == 4 * n
    np.testing.assert_allclose(rois.centroids()[:2], [[0.5, 0.5], [0.5, 3.5]])
    # the errors still name the culprit
    last = rois[n - 1]
    with pytest.raises(rt.ParameterError, match=r"duplicate ROI ids \[7\]"):
        RoiSet([*rois.rois, Roi(7, last.y, last.x)], rois.frame_shape)
    stray = Roi(n + 1, np.array([0, 5000]), np.array([0, 0]), name="stray")
    with pytest.raises(rt.ShapeMismatchError, match=f"ROI {n + 1} 'stray' has pixels outside"):
        RoiSet([*rois.rois[:5], stray, *rois.rois[5:]], rois.frame_shape)


def test_masks_and_to_labels_of_many_rois_match_one_at_a_time():
    rng = np.random.default_rng(3)
    rois = []
    for i in range(300):  # overlapping random blobs, some with repeated pixels
        y = rng.integers(0, 40, 6)
        x = rng.integers(0, 50, 6)
        rois.append(Roi(1000 - i, y, x))
    roiset = RoiSet(rois, (40, 50))
    masks = roiset.masks()
    want = np.zeros((40, 50), np.int32)
    for k, r in enumerate(rois):
        m = np.zeros((40, 50), bool)
        m[r.y, r.x] = True
        assert_array_equal(masks[k], m)
        want[r.y, r.x] = r.id  # the later ROI wins
    with pytest.warns(UserWarning, match="ROIs overlap"):
        assert_array_equal(roiset.to_labels(), want)


def test_to_labels_does_not_call_a_repeated_pixel_an_overlap():
    roi = Roi(1, np.array([0, 0, 1]), np.array([1, 1, 1]))  # (0, 1) listed twice
    assert_array_equal(RoiSet([roi], (2, 2)).to_labels(), [[0, 1], [0, 1]])  # no warning


# -- roi_contours ----------------------------------------------------------------------------
def disks(n: int, size: int) -> RoiSet:
    """``n`` disks of radius 3 on a grid over a ``size`` x ``size`` frame."""
    side = int(np.ceil(np.sqrt(n)))
    step = size // side
    yy, xx = np.nonzero(np.add.outer(np.arange(-3, 4) ** 2, np.arange(-3, 4) ** 2) <= 9)
    r, c = np.divmod(np.arange(n), side)
    return RoiSet([Roi(k + 1, r[k] * step + yy, c[k] * step + xx) for k in range(n)], (size, size))


def test_roi_contours_memory_does_not_grow_with_rois_times_frame():
    n, size = 2000, 512
    rois = disks(n, size)
    rings = neuropil_rings(rois, gap=1, width=2)
    projection = np.zeros((size, size))
    tracemalloc.start()
    try:
        ax = plot.roi_contours(projection, rois, rings=rings, labels="id")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # one boolean frame per ROI alone would be n * size * size bytes (524 MB; the
    # old float contours took ~15 GB); outlines, rings and 2000 labels take ~75 MB,
    # most of it matplotlib's Text and Path objects
    assert peak < n * size * size / 4
    assert len(ax.texts) == n and len(ax.collections) == 2


def test_outlines_follow_pixel_edges_and_overlapping_rois_keep_theirs():
    square = Roi(1, *np.nonzero(np.ones((3, 3), bool)))  # rows 0-2, columns 0-2
    ell = Roi(2, np.array([2, 2, 3, 4]), np.array([2, 3, 2, 2]))  # shares pixel (2, 2)
    ax = plot.roi_contours(np.zeros((6, 6)), RoiSet([square, ell], (6, 6)), labels=False)
    segments = {tuple(map(tuple, s)) for s in ax.collections[0].get_segments()}
    # the square: four sides along the pixel edges
    assert {
        ((-0.5, -0.5), (2.5, -0.5)),
        ((-0.5, 2.5), (2.5, 2.5)),
        ((-0.5, -0.5), (-0.5, 2.5)),
        ((2.5, -0.5), (2.5, 2.5)),
    } <= segments
    # the L keeps its own top edge inside the square, and has six sides
    assert ((1.5, 1.5), (3.5, 1.5)) in segments
    assert len(segments) == 4 + 6
    assert len(ax.texts) == 0


def test_roi_labels_readable_names_and_titles():
    lab = np.zeros((30, 30), int)
    lab[2:6, 2:6] = 1
    lab[10:15, 9:14] = 2
    rois = RoiSet.from_labels(lab, names=["roi 1", "0001-0049-0041"])
    ax = plot.roi_contours(np.zeros((30, 30)), rois, projection_name="std")
    # the default name shows as the id, an ImageJ name as itself
    assert [t.get_text() for t in ax.texts] == ["1", "0001-0049-0041"]
    text = ax.texts[1]
    assert text.get_color() == "white" and text.get_path_effects()  # dark outline
    assert text.get_position() == (11.0, 12.0)  # the centroid (x, y)
    assert ax.get_title() == "2 ROIs on the std projection"
    assert [t.get_text() for t in plot.roi_contours(lab, rois, labels="id").texts] == ["1", "2"]
    many = disks(30, 120)
    assert [t.get_text() for t in plot.roi_contours(np.zeros((120, 120)), many).texts][:2] == [
        "1",
        "2",
    ]
    with pytest.raises(rt.ParameterError, match="labels="):
        plot.roi_contours(lab, rois, labels="names")


def test_rings_are_drawn_thinner_in_another_colour():
    lab = np.zeros((30, 30), int)
    lab[10:15, 10:15] = 1
    rois = RoiSet.from_labels(lab)
    ring = np.zeros((30, 30), bool)  # a square ring: 4 outer and 4 inner sides
    ring[8:17, 8:17] = True
    ring[9:16, 9:16] = False
    for rings in ([np.flatnonzero(ring)], [ring], RoiSet.from_masks([ring])):
        ax = plot.roi_contours(np.zeros((30, 30)), rois, rings=rings)
        cells, drawn = ax.collections
        assert drawn.get_linewidth()[0] < cells.get_linewidth()[0]
        assert tuple(drawn.get_color()[0][:3]) != tuple(cells.get_color()[0][:3])
        assert "neuropil rings" in ax.get_title()
        assert len(drawn.get_segments()) == 8
    with pytest.raises(rt.ShapeMismatchError, match="outside"):
        plot.roi_contours(np.zeros((30, 30)), rois, rings=[np.array([900])])


# -- extract --figures -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def many_cells():
    sim = rt.simulate(shape=(96, 96), n_frames=200, n_cells=40, cell_radius=(2.0, 3.0), seed=5)
    movie = rt.as_movie(sim.movie, frame_rate=sim.frame_rate)
    ds = rt.extract(movie, sim.labels, neuropil={"gap": 1, "width": 2})
    ds.attrs["projection"] = "std"
    return ds, sim.movie.std(axis=0)


def captured_figures(monkeypatch) -> dict:
    """Record each figure's first Axes as plot.extraction_figures saves it."""
    seen: dict = {}
    original = plot.save

    def save(fig, path, **kwargs):
        ax = fig.axes[0]
        seen[path.name] = {
            "title": ax.get_title(),
            "yticks": [t.get_text() for t in ax.get_yticklabels()],
            "collections": len(ax.collections),
            "texts": [t.get_text() for t in ax.texts],
        }
        return original(fig, path, **kwargs)

    monkeypatch.setattr(plot, "save", save)
    return seen


def test_extract_figures_show_the_most_active_cells_and_the_rings(
    many_cells, tmp_path, monkeypatch
):

    ds, proj = many_cells
    seen = captured_figures(monkeypatch)
    npil = json.loads(ds.attrs["parameters"])["neuropil"]
    written = plot.extraction_figures(ds, proj, tmp_path, neuropil=npil, max_traces=10)
    assert sorted(p.name for p in written) == ["dff_heatmap.png", "rois.png", "traces.png"]
    n = ds.sizes["roi"]
    assert seen["traces.png"]["title"] == f"10 most active of {n} cells (by skewness)"
    top = ds["roi"].values[np.argsort(-ds["skewness"].values)[:10]]
    assert seen["traces.png"]["yticks"] == [str(i) for i in top[::-1]]  # most active on top
    assert seen["dff_heatmap.png"]["title"] == f"dF/F0 of all {n} cells"
    assert seen["rois.png"]["title"].startswith(f"{n} ROIs on the std projection")
    assert seen["rois.png"]["collections"] == 2  # outlines and neuropil rings
    # a result made elsewhere: the rings come from its recorded parameters
    seen.clear()
    plot.extraction_figures(ds, proj, tmp_path, projection_name="max")
    assert seen["rois.png"]["collections"] == 2
    assert seen["rois.png"]["title"].startswith(f"{n} ROIs on the max projection")


def test_extract_figures_survive_a_constant_trace(many_cells, tmp_path, monkeypatch):

    ds, proj = many_cells
    flat = ds.copy(deep=True)
    flat["F_corrected"][0] = 5.0  # no z-score: drawn flat instead of failing the command
    seen = captured_figures(monkeypatch)
    plot.extraction_figures(flat, proj, tmp_path)
    assert (
        seen["traces.png"]["title"] == f"30 most active of {ds.sizes['roi']} cells (by skewness)"
    )


def test_rois_command_figure_names_its_projection(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from roitrace.cli import app

    sim = rt.simulate(shape=(64, 64), n_frames=100, n_cells=6, seed=7)
    movie = sim.to_tiff(tmp_path / "field.tif")
    seen = captured_figures(monkeypatch)
    args = ["rois", str(movie), "--method", "percentile", "--q", "90", "--min-size", "10"]
    args += ["--projection", "max", "-o", str(tmp_path / "labels.npy")]
    args += ["--figure", str(tmp_path / "rois.png"), "--no-progress"]
    res = CliRunner().invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert " ROIs on the max projection" in seen["rois.png"]["title"]
    assert all(t.isdigit() for t in seen["rois.png"]["texts"])


# -- ImageJ sets of many ROIs: the batched reader and writer against one ROI at a time ---------
def fiji_like_zip(path, n: int, frame: int, seed: int = 0) -> None:
    """A RoiSet.zip like Fiji's: ``n`` cells 10-20 px across on a ``frame`` x ``frame``
    image, in turn polygons (integer vertices), ovals, rectangles, freehand outlines
    (sub-pixel vertices), traced (wand) outlines, with now and then a kind roifile
    decodes (composite, ellipse, rotated and rounded rectangles, spline fits), stack
    positions and cells across the frame's edges."""
    import roifile

    from roitrace.io.imagej import _pixel_loops

    rng = np.random.default_rng(seed)
    t = roifile.ROI_TYPE
    yy, xx = np.mgrid[-10:11, -10:11]
    wand = {  # a traced outline (along pixel edges) of a disk of each diameter
        d: _pixel_loops(*np.nonzero(xx**2 + yy**2 <= (d / 2) ** 2))[0] - 10 for d in range(10, 21)
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for k in range(n):
            d = rng.uniform(10, 20)
            cx, cy = rng.uniform(1, frame - 1, 2)  # a few cross the edges
            kind = k % 5
            roi = roifile.ImagejRoi(name=f"{k + 1:05d}-{int(cy):04d}-{int(cx):04d}")
            if k % 97 == 0:
                roi.name = ""  # named after the entry
            if kind in (1, 2):  # oval, rectangle
                w, h = int(d), max(2, int(d * rng.uniform(0.6, 1.0)))
                roi.roitype = t.OVAL if kind == 1 else t.RECT
                roi.left, roi.top = int(cx - w / 2), int(cy - h / 2)
                roi.right, roi.bottom = roi.left + w, roi.top + h
                if k % 31 == 0:  # sub-pixel bounds
                    roi.options = roifile.ROI_OPTIONS.SUB_PIXEL_RESOLUTION
                    roi.xd, roi.yd = cx - d / 2, cy - d / 3
                    roi.widthd, roi.heightd = d, d * 0.7
                if kind == 2 and k % 53 == 0:
                    roi.rounded_rect_arc_size = 6
            else:
                if kind == 4:  # traced: along pixel edges
                    pts = (wand[int(d)] + [int(cx), int(cy)]).astype(np.float64)
                    roi.roitype = t.TRACED
                else:
                    m = rng.integers(5, 12) if kind == 0 else rng.integers(30, 80)
                    a = np.linspace(0, 2 * np.pi, m, endpoint=False) + rng.uniform(0, 0.3, m)
                    r = d / 2 * rng.uniform(0.7, 1.0, m)
                    pts = np.column_stack([cx + r * np.cos(a), cy + r * np.sin(a)])
                    roi.roitype = t.POLYGON if kind == 0 else t.FREEHAND
                    if kind == 0:
                        pts = np.round(pts)
                        if k % 41 == 0:
                            roi.options = roifile.ROI_OPTIONS.SPLINE_FIT
                    else:
                        roi.options = roifile.ROI_OPTIONS.SUB_PIXEL_RESOLUTION
                        roi.subpixel_coordinates = pts.astype(np.float32)
                left, top = np.floor(pts.min(axis=0)).astype(int)
                roi.left, roi.top = int(left), int(top)
                roi.right, roi.bottom = (int(v) for v in np.ceil(pts.max(axis=0)))
                roi.integer_coordinates = (np.round(pts) - [left, top]).astype(np.int32)
                roi.n_coordinates = len(pts)
                if k % 89 == 0:  # an ellipse: roifile decodes it
                    roi.subtype = roifile.ROI_SUBTYPE.ELLIPSE
                    roi.roitype = t.FREEHAND
                    roi.x1, roi.y1, roi.x2, roi.y2 = cx - d / 2, cy, cx + d / 2, cy
            if k % 7 == 0:
                roi.position, roi.c_position, roi.t_position = k % 5 + 1, 1, k % 3
            if k % 113 == 0:  # a composite of two squares
                s = float(d / 3)
                roi = roifile.ImagejRoi(roitype=t.RECT, name=roi.name)
                path = [0, cx, cy, 1, cx + s, cy, 1, cx + s, cy + s, 1, cx, cy + s, 4]
                path += [0, cx + s, cy + s, 1, cx + 2 * s, cy + s, 1, cx + 2 * s, cy + 2 * s, 4]
                roi.multi_coordinates = np.asarray(path, np.float32)
                roi.shape_roi_size = roi.multi_coordinates.size
                roi.left, roi.top = int(cx), int(cy)
                roi.right, roi.bottom = int(cx + 2 * s) + 1, int(cy + 2 * s) + 1
            zf.writestr(f"{roi.name or f'cell {k}'}.roi", roi.tobytes())


def test_20000_mixed_imagej_rois_match_a_per_roi_reference(tmp_path, monkeypatch):
    """Read as a whole (all filled together), 20,000 ROIs of every kind give what the
    one-ROI-at-a-time fill gives each (no timing: 100,000 such ROIs took 27-73 s to
    read, now ~10-15 s); written back, the pixels come back and the bytes are those
    of roifile's frompoints."""
    import roifile

    from conftest import roifile_bytes
    from roitrace.io import imagej as ij

    n, frame = 20_000, (1024, 1024)
    path = tmp_path / "RoiSet.zip"
    fiji_like_zip(path, n, frame[0])
    with pytest.warns(UserWarning, match=r"beyond the 1024 x 1024 frame"):
        rois = ij.read_imagej(path, shape=frame)
    assert len(rois) == n and rois.ids == list(range(1, n + 1))
    infos = rois.meta["imagej"]
    kinds = {i["kind"] for i in infos}
    assert {"polygon", "oval", "rectangle", "freehand", "traced", "composite"} <= kinds
    assert {"ellipse", "rounded rectangle", "spline-fitted polygon"} <= kinds
    # the reference: roifile decodes each ROI, filled on its own
    with zipfile.ZipFile(path) as zf:
        entries = zf.namelist()
        raws = [roifile.ImagejRoi.frombytes(zf.read(entry)) for entry in entries]
    ref_kinds = [ij._kind(raw) for raw in raws]
    shapes = [ij._shape_of(raw, kind) for raw, kind in zip(raws, ref_kinds, strict=True)]
    filled = [ij._rasterise(shape, frame) for shape in shapes]
    assert rois.names == [raw.name or e[:-4] for raw, e in zip(raws, entries, strict=True)]
    assert [i["entry"] for i in infos] == entries
    assert [i["kind"] for i in infos] == ref_kinds
    assert [i["bounds"] for i in infos] == [shape.bounds() for shape in shapes]
    assert [r.npix for r in rois] == [len(f[0]) for f in filled]
    assert_array_equal(np.concatenate([r.y for r in rois]), np.concatenate([f[0] for f in filled]))
    assert_array_equal(np.concatenate([r.x for r in rois]), np.concatenate([f[1] for f in filled]))
    assert {r.y.dtype for r in rois} == {np.dtype(np.intp)}
    assert [len(i["outline"]) for i in infos] == [len(s.loops) for s in shapes]
    outlines = [lp for i in infos for lp in i["outline"]]
    ref_outlines = [lp for s in shapes for lp in s.loops]
    assert [len(lp) for lp in outlines] == [len(lp) for lp in ref_outlines]
    assert_array_equal(np.concatenate(outlines), np.concatenate(ref_outlines))
    assert [(i.get("position", 0), i.get("c", 0), i.get("t", 0)) for i in infos] == [
        (raw.position, raw.c_position, raw.t_position) for raw in raws
    ]
    assert [i["spline_fit"] for i in infos] == [
        bool(raw.options & roifile.ROI_OPTIONS.SPLINE_FIT) for raw in raws
    ]
    assert sum(f[3] > 0 for f in filled) > 50  # cells across the frame's edges were clipped

    # a quarter written back (traced and composite outlines, in many batches): the
    # same pixels, and each ROI's bytes as roifile writes it
    monkeypatch.setattr(ij, "_BATCH_CELLS", 1 << 16)
    some = RoiSet(rois.rois[::4], frame)
    out = tmp_path / "back.zip"
    ij.write_imagej(some, out)
    back = ij.read_imagej(out, shape=frame)
    assert back.names == some.names
    flat = [np.sort(r.y * frame[1] + r.x) for r in some]
    assert_array_equal(np.concatenate(flat), np.concatenate([r.y * frame[1] + r.x for r in back]))
    assert [r.npix for r in back] == [r.npix for r in some]
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        for k in range(0, len(some), 9):
            assert zf.read(names[k]) == roifile_bytes(some[k], some[k].name), names[k]
