"""ImageJ / Fiji ROIs: the peer's corpus (FISSA's test ROIs), SIMA's RoiSet, round trips.

The corpus (../shared/data/imagej-rois) holds one file per ImageJ ROI kind and,
beside most, the peer's expectation: polygon vertices (x, y, z) for polygon-like
kinds, a boolean mask indexed [0, x, y] from the image origin for ovals/ellipses.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import roifile
from numpy.testing import assert_allclose, assert_array_equal

import roitrace as rt
from conftest import DATA, data_path, roifile_bytes
from roitrace.errors import EmptyMaskError, ParameterError, RoiFormatError, RoiNotFoundError
from roitrace.io.imagej import read_imagej, write_imagej
from roitrace.rois import Roi, RoiSet

#: Big enough for every corpus file (coordinates reach x = 181, y = 130) except
#: those drawn past the left or top edge, which are clipped.
FRAME = (256, 256)
#: The corpus's own image: "Select All" (all.roi) and oval-full.roi span 17 x 8.
SMALL = (8, 17)

AREA_KINDS = {
    "all.roi": "rectangle",
    "brush.roi": "freehand",
    "composite-rectangle.roi": "traced",
    "ellipse-bottom-offscreen.roi": "ellipse",
    "ellipse-bottom.roi": "ellipse",
    "ellipse-center.roi": "ellipse",
    "ellipse-right-offscreen.roi": "ellipse",
    "ellipse-right.roi": "ellipse",
    "freehand.roi": "freehand",
    "oval-bottom-offscreen.roi": "oval",
    "oval-bottom.roi": "oval",
    "oval-center.roi": "oval",
    "oval-full.roi": "oval",
    "oval-right-offscreen.roi": "oval",
    "oval-right.roi": "oval",
    "polygon-bottom-offscreen.roi": "polygon",
    "polygon-bottom.roi": "polygon",
    "polygon-right-offscreen.roi": "polygon",
    "polygon-right.roi": "polygon",
    "polygon-spline.roi": "spline-fitted polygon",
    "polygon.roi": "polygon",
    "rectangle-rotated.roi": "rotated rectangle",
    "rectangle-rounded.roi": "rounded rectangle",
    "rectangle.roi": "rectangle",
    "wand.roi": "traced",
}
#: Drawn across the left or top edge of the image: partly outside any frame.
LEFT_TOP = [f"{k}-{side}.roi" for k in ("polygon", "oval", "ellipse") for side in ("left", "top")]
#: Drawn wholly past an edge (the peer's "-offscreen" variants) and the names stored in them.
OFFSCREEN = {
    f"{k}-{side}-offscreen.roi": f"{k}-{side}"
    for k in ("polygon", "oval", "ellipse")
    for side in ("left", "top", "right", "bottom")
}
for _stem in ("oval-left-offscreen", "ellipse-bottom-offscreen"):  # these store no name
    OFFSCREEN[f"{_stem}.roi"] = _stem
REFUSED = {
    "freeline.roi": "freehand line",
    "polyline.roi": "polyline",
    "multipoint.roi": "multipoint",
}


def corpus(name: str):
    return data_path("imagej-rois", name)


def read(name: str, shape=FRAME) -> RoiSet:
    return read_imagej(corpus(name), shape=shape)


def read_clipped_ok(name: str, shape=FRAME) -> RoiSet:
    """Read a corpus file, expecting the clipping warning for left/top ones."""
    if name not in LEFT_TOP:
        return read(name, shape)
    with pytest.warns(UserWarning, match=f"beyond the {shape[0]} x {shape[1]} frame"):
        return read(name, shape)


def peer(name: str) -> np.ndarray:
    return np.load(corpus(name.removesuffix(".roi") + ".npy"))


def _npy_names(kind: str) -> list[str]:
    """Corpus .roi files whose peer expectation is vertices or masks (by dtype)."""
    folder = DATA / "imagej-rois"
    if not folder.exists():
        return ["absent"]
    names = []
    for npy in sorted(folder.glob("*.npy")):
        is_mask = np.load(npy).dtype == bool
        if (kind == "mask") == is_mask and npy.stem + ".roi" not in REFUSED:
            names.append(npy.stem + ".roi")
    return names


# -- every area kind -----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(AREA_KINDS))
def test_every_area_kind_reads(name):
    rois = read(name)
    assert len(rois) == 1 and rois.ids == [1]
    roi = rois[0]
    assert roi.npix > 0
    assert roi.name  # the stored name, else the file name
    info = rois.meta["imagej"][0]
    assert info["kind"] == AREA_KINDS[name]
    assert info["entry"] == name
    assert rois.source.endswith(name)
    # the pixels are those the outline encloses: inside its bounds
    left, top, right, bottom = info["bounds"]
    assert left <= roi.x.min() + 0.5 and roi.x.max() + 0.5 <= right
    assert top <= roi.y.min() + 0.5 and roi.y.max() + 0.5 <= bottom


def test_names_come_from_the_file_then_the_file_name():
    assert read("freehand.roi").names == ["freehand"]  # stored in the ROI
    assert read("polygon-spline.roi").names == ["polygon"]  # stored, differs from the file
    assert read("rectangle.roi").names == ["rectangle"]  # none stored: the file name


def test_read_rois_dispatches_roi_and_zip():
    rois = rt.read_rois(corpus("polygon.roi"), shape=FRAME)
    assert rois.names == ["polygon"] and rois.frame_shape == FRAME
    assert len(rt.read_rois(corpus("RoiSet.zip"), shape=FRAME)) == 2


# -- agreement with the peer -----------------------------------------------------------------
@pytest.mark.parametrize("name", _npy_names("vertices"))
def test_vertices_match_peer(name):
    if name == "absent":
        pytest.skip(f"{DATA / 'imagej-rois'} is absent")
    expected = peer(name)
    assert_array_equal(expected[:, 2], 0)
    info = read_clipped_ok(name, SMALL if name == "all.roi" else FRAME).meta["imagej"][0]
    (outline,) = info["outline"]
    if name == "polygon-spline.roi":
        # Deliberate: the file holds sub-pixel vertices and ImageJ uses them; the peer
        # reads the integer ones, which ImageJ writes relative to the spline's
        # bounding box and which are off by exactly one pixel in x and in y here.
        assert_allclose(outline, expected[:, :2] + 1)
        raw = roifile.ImagejRoi.fromfile(corpus(name))
        assert_allclose(outline, raw.subpixel_coordinates)
    elif name == "rectangle-rounded.roi":
        # Deliberate: the peer ignores the rounding (arc size 20, clipped to the
        # 8 x 3 rectangle as Java does); roitrace fills the rounded outline, whose
        # bounds are the peer's corners. The masks are compared below.
        assert outline.shape[0] > 4
        assert_allclose(outline.min(axis=0), expected[:, :2].min(axis=0))
        assert_allclose(outline.max(axis=0), expected[:, :2].max(axis=0))
    else:
        assert_allclose(outline, expected[:, :2], atol=1e-5)


def test_rounded_rectangle_differs_from_peer_by_its_four_corner_pixels():
    rounded = read("rectangle-rounded.roi").masks()[0]
    plain = read("rectangle.roi").masks()[0]  # the same 8 x 3 box, as the peer sees it
    assert plain.sum() == 24 and rounded.sum() == 20
    diff = np.argwhere(plain & ~rounded)
    assert not (rounded & ~plain).any()
    # x 4..11, y 5..7: the 4 dropped pixels are the outer two of the top and bottom rows
    assert sorted(map(tuple, diff)) == [(5, 4), (5, 11), (7, 4), (7, 11)]


@pytest.mark.parametrize("name", _npy_names("mask"))
def test_oval_and_ellipse_masks_match_peer(name):
    if name == "absent":
        pytest.skip(f"{DATA / 'imagej-rois'} is absent")
    expected = peer(name)[0].T  # [0, x, y] -> rows x columns, from the origin
    ours = read_clipped_ok(name).masks()[0]
    h, w = expected.shape
    # nothing of ours outside the peer's extent, and identical inside it
    assert ours[:h, :w].sum() == ours.sum()
    assert int((ours[:h, :w] != expected).sum()) == 0


def test_polygon_fill_agrees_with_matplotlib_except_on_ties():
    """The scanline fill gives matplotlib's contains_points answer at every pixel
    centre not lying exactly on the outline; on the outline it follows ImageJ's
    PolygonFiller (a centre on a left edge is outside, on a right edge inside)."""
    from matplotlib.path import Path as MplPath

    yy, xx = np.mgrid[0 : FRAME[0], 0 : FRAME[1]]
    centres = np.column_stack([xx.ravel() + 0.5, yy.ravel() + 0.5])
    cases = [("imagej-rois", n) for n in ("freehand.roi", "polygon.roi", "brush.roi")]
    cases += [("sima", "imageJ_ROIs.zip")]
    for folder, name in cases:
        rois = read_imagej(data_path(folder, name), shape=FRAME)
        for k, info in enumerate(rois.meta["imagej"]):
            (outline,) = info["outline"]
            mpl = MplPath(outline).contains_points(centres).reshape(FRAME)
            differ = np.argwhere(mpl != rois.masks()[k])
            assert len(differ) <= 0.02 * rois[k].npix
            for r, c in differ:
                assert _on_outline(outline, c + 0.5, r + 0.5), f"{name}: ({r}, {c}) is no tie"


def _on_outline(outline: np.ndarray, px: float, py: float) -> bool:
    """Whether the point lies exactly on an edge of the closed outline."""
    a, b = outline, np.roll(outline, -1, axis=0)
    cross = (b[:, 0] - a[:, 0]) * (py - a[:, 1]) - (b[:, 1] - a[:, 1]) * (px - a[:, 0])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    between = (lo[:, 0] <= px) & (px <= hi[:, 0]) & (lo[:, 1] <= py) & (py <= hi[:, 1])
    return bool((np.isclose(cross, 0) & between).any())


def test_ellipse_and_rotated_rectangle_without_stored_vertices(tmp_path):
    """ImageJ rebuilds these from their parameters; so does roitrace when a file
    holds only the parameters (major axis + aspect ratio, centre line + width)."""
    for name in ("ellipse-center.roi", "rectangle-rotated.roi"):
        raw = roifile.ImagejRoi.fromfile(corpus(name))
        raw.subpixel_coordinates = None
        raw.integer_coordinates = None
        raw.n_coordinates = 0
        bare = tmp_path / name
        bare.write_bytes(raw.tobytes())
        assert_array_equal(read_imagej(bare, shape=FRAME).masks(), read(name).masks())


# -- refused kinds ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_line_and_point_kinds_are_refused(name):
    stem = name.removesuffix(".roi")
    with pytest.raises(ParameterError) as info:
        read(name)
    msg = str(info.value)
    assert f"ImageJ ROI '{stem}' is a {REFUSED[name]}: only area ROIs" in msg
    assert "draw an area in ImageJ" in msg and name in msg and "\n" not in msg


@pytest.mark.parametrize("kind", ["LINE", "ANGLE"])
def test_straight_line_and_angle_are_refused(tmp_path, kind):
    roi = roifile.ImagejRoi.frompoints([[1, 1], [5, 2], [3, 6]], name="stroke")
    roi.roitype = roifile.ROI_TYPE[kind]
    roi.options = roifile.ROI_OPTIONS.NONE
    if kind == "LINE":
        roi.x1, roi.y1, roi.x2, roi.y2 = 1.0, 1.0, 5.0, 2.0
    path = tmp_path / "stroke.roi"
    path.write_bytes(roi.tobytes())
    expected = "a straight line" if kind == "LINE" else "an angle"
    with pytest.raises(ParameterError, match=f"'stroke' is {expected}: only area ROIs"):
        read_imagej(path, shape=FRAME)


# -- zip sets -------------------------------------------------------------------------------
def test_roiset_zip_reads_all_with_names_and_positions():
    rois = read("RoiSet.zip")
    assert rois.ids == [1, 2]
    assert rois.names == ["0001-0058-0049", "0001-0118-0086"]
    assert all(r.npix > 0 for r in rois)
    infos = rois.meta["imagej"]
    assert [i["kind"] for i in infos] == ["polygon", "polygon"]
    assert [i["entry"] for i in infos] == ["0001-0058-0049.roi", "0001-0118-0086.roi"]
    assert [i.get("position") for i in infos] == [1, 1]  # kept, not used


def test_sima_rois_on_the_sima_frame():
    path = data_path("sima", "imageJ_ROIs.zip")
    rois = read_imagej(path, shape=(128, 256))
    assert len(rois) == 2
    assert [i["kind"] for i in rois.meta["imagej"]] == ["freehand", "freehand"]
    for r in rois:
        assert r.npix > 100
        assert 0 <= r.y.min() and r.y.max() < 128 and 0 <= r.x.min() and r.x.max() < 256
    assert not (rois.masks()[0] & rois.masks()[1]).any()


def test_zip_entry_name_used_when_the_roi_stores_none(tmp_path):
    path = tmp_path / "set.zip"
    a = roifile.ImagejRoi.frompoints([[0, 0], [3, 0], [3, 3], [0, 3]], name="")
    b = roifile.ImagejRoi.frompoints([[5, 5], [8, 5], [8, 8], [5, 8]], name="kept")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("cells/first.roi", a.tobytes())
        zf.writestr("second.roi", b.tobytes())
        zf.writestr("notes.txt", b"not a ROI, skipped as ImageJ does")
    rois = read_imagej(path, shape=(10, 10))
    assert rois.names == ["first", "kept"] and rois.ids == [1, 2]


# -- clipping -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", LEFT_TOP)
def test_left_and_top_rois_are_clipped_with_a_warning(name):
    with pytest.warns(UserWarning, match=rf"'{name.removesuffix('.roi')}' \(\d+ of \d+ pixels"):
        rois = read(name)
    assert rois[0].npix > 0


@pytest.mark.parametrize(
    "name", ["polygon-right.roi", "oval-bottom.roi", "ellipse-right.roi", "rectangle-rotated.roi"]
)
def test_right_and_bottom_rois_are_clipped_on_the_corpus_frame(name):
    whole = read(name)[0].npix
    with pytest.warns(UserWarning, match="beyond the 8 x 17 frame") as caught:
        clipped = read(name, SMALL)[0]
    assert 0 < clipped.npix < whole
    assert f"{whole - clipped.npix} of {whole} pixels outside" in str(caught[0].message)
    assert clipped.y.max() < 8 and clipped.x.max() < 17


@pytest.mark.parametrize("name", sorted(OFFSCREEN))
def test_rois_wholly_off_the_frame_are_errors(name):
    with pytest.raises(EmptyMaskError) as info:
        read(name, SMALL)
    msg = str(info.value)
    assert f"'{OFFSCREEN[name]}' lies entirely outside the 8 x 17 frame" in msg
    assert name in msg and "shape=" in msg and "\n" not in msg


def test_roi_enclosing_no_pixel_centre_is_an_error():
    with pytest.raises(EmptyMaskError, match=r"'ellipse-tiny' \(ellipse\) encloses no pixel"):
        read("ellipse-tiny.roi")


# -- composite ROIs --------------------------------------------------------------------------
def _composite(path_floats, name="ring"):
    roi = roifile.ImagejRoi()
    roi.roitype = roifile.ROI_TYPE.RECT
    roi.multi_coordinates = np.asarray(path_floats, np.float32)
    roi.shape_roi_size = roi.multi_coordinates.size
    roi.left, roi.top, roi.right, roi.bottom = 0, 0, 20, 20
    roi.name = name
    return roi


def test_composite_with_hole_and_curves_uses_even_odd(tmp_path):
    square = [0, 2, 2, 1, 12, 2, 1, 12, 12, 1, 2, 12, 4]
    hole = [0, 5, 5, 1, 5, 9, 1, 9, 9, 1, 9, 5, 4]  # same winding is still a hole
    # a lens: two quadratic curves from (15, 4) to (15, 16), x 12.5..17.5 at y = 10
    lens = [0, 15, 4, 2, 20, 10, 15, 16, 2, 10, 10, 15, 4, 4]
    path = tmp_path / "composite.roi"
    path.write_bytes(_composite(square + hole + lens).tobytes())
    rois = read_imagej(path, shape=(20, 20))
    info = rois.meta["imagej"][0]
    assert info["kind"] == "composite" and len(info["outline"]) == 3
    m = rois.masks()[0]
    expected = np.zeros((20, 20), bool)
    expected[2:12, 2:12] = True
    expected[5:9, 5:9] = False
    assert_array_equal(m[:, :12], expected[:, :12])
    lens_px = m[:, 12:]
    assert lens_px[10, 15 - 12] and not lens_px[10, 19 - 12] and not lens_px[:4].any()
    assert 30 <= lens_px.sum() <= 50  # the lens's area is 2/3 * 12 * 5 = 40


def test_corrupt_composite_path_is_a_format_error(tmp_path):
    path = tmp_path / "bad.roi"
    path.write_bytes(_composite([0, 1, 1, 7, 3, 3]).tobytes())  # 7: no such segment type
    with pytest.raises(RoiFormatError, match=r"bad\.roi: ImageJ ROI 'ring' \(composite\) is"):
        read_imagej(path, shape=(20, 20))


# -- corrupt files and bad arguments ----------------------------------------------------------
def test_random_bytes_roi_is_a_one_line_format_error(tmp_path):
    path = tmp_path / "noise.roi"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes())
    with pytest.raises(RoiFormatError) as info:
        read_imagej(path, shape=FRAME)
    msg = str(info.value)
    assert str(path) in msg and "not a readable ImageJ ROI" in msg and "\n" not in msg


def test_truncated_roi_is_a_format_error(tmp_path):
    data = corpus("freehand.roi").read_bytes()
    path = tmp_path / "cut.roi"
    path.write_bytes(data[:100])
    with pytest.raises(RoiFormatError, match=r"cut\.roi is not a readable ImageJ ROI"):
        read_imagej(path, shape=FRAME)


def test_corrupt_zip_is_a_one_line_format_error(tmp_path):
    path = tmp_path / "RoiSet.zip"
    good = corpus("RoiSet.zip").read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(RoiFormatError) as info:
        read_imagej(path, shape=FRAME)
    msg = str(info.value)
    assert str(path) in msg and "not a readable zip of ImageJ ROIs" in msg and "\n" not in msg


def test_zip_entry_that_is_not_a_roi(tmp_path):
    path = tmp_path / "set.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("junk.roi", b"hello, not a ROI at all" * 4)
    with pytest.raises(RoiFormatError, match=r"\(entry 'junk.roi'\) is not a readable ImageJ"):
        read_imagej(path, shape=FRAME)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", b"no ROIs")
    with pytest.raises(RoiFormatError, match=r"holds no \.roi entry"):
        read_imagej(empty, shape=FRAME)


def test_shape_is_required_and_checked(tmp_path):
    with pytest.raises(ParameterError, match="pass the movie's frame shape"):
        read_imagej(corpus("polygon.roi"))
    for bad in [(10,), (5, 10, 10), (0, 10), (2.5, 4)]:
        with pytest.raises(ParameterError, match=r"frame shape \(Y, X\)"):
            read_imagej(corpus("polygon.roi"), shape=bad)
    with pytest.raises(RoiNotFoundError, match="no such ImageJ ROI file"):
        read_imagej(tmp_path / "missing.roi", shape=FRAME)


# -- writing: round trips -----------------------------------------------------------------------
def _round_trip(rois: RoiSet, tmp_path, name="RoiSet.zip") -> RoiSet:
    path = write_imagej(rois, tmp_path / name)
    assert path == tmp_path / name and path.exists()
    back = read_imagej(path, shape=rois.frame_shape)
    assert back.names == rois.names
    assert_array_equal(back.masks(), rois.masks())
    return back


def _single(mask: np.ndarray, name: str) -> RoiSet:
    return RoiSet.from_masks(mask[np.newaxis], names=[name])


def test_round_trip_disk(tmp_path):
    yy, xx = np.mgrid[0:32, 0:40]
    disk = (yy - 15) ** 2 + (xx - 20) ** 2 <= 36
    back = _round_trip(_single(disk, "disk"), tmp_path)
    assert back.meta["imagej"][0]["kind"] == "traced"


def test_round_trip_rectangle_as_single_roi_file(tmp_path):
    box = np.zeros((20, 30), bool)
    box[3:10, 5:18] = True
    back = _round_trip(_single(box, "box"), tmp_path, "box.roi")
    (outline,) = back.meta["imagej"][0]["outline"]
    assert_array_equal(outline, [[5, 3], [18, 3], [18, 10], [5, 10]])  # 4 corners, clockwise


def test_round_trip_irregular_blob_with_holes(tmp_path):
    from scipy import ndimage

    rng = np.random.default_rng(7)
    field = ndimage.gaussian_filter(rng.random((48, 64)), 2.5)
    labels, _ = ndimage.label(field > np.quantile(field, 0.45))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    blob = labels == sizes.argmax()
    blob[20:23, 30:33] &= False  # make sure of at least one hole inside
    blob[18:25, 28:35] |= ~np.pad(np.ones((3, 3), bool), 2)
    back = _round_trip(_single(blob, "blob"), tmp_path)
    info = back.meta["imagej"][0]
    assert info["kind"] == "composite" and len(info["outline"]) >= 2


def test_huge_rois_are_filled_inside_the_frame_only(monkeypatch):
    """ROIs whose bounding box exceeds _FULL_BOX_LIMIT pixels are filled only inside
    the frame (the clipped count is then unknown); chunked fills change nothing."""
    import roitrace.io.imagej as ij

    expected = read("freehand.roi").masks()
    with pytest.warns(UserWarning, match=r"\d+ of \d+ pixels outside"):
        expected_clipped = read("polygon-right.roi", SMALL).masks()
    monkeypatch.setattr(ij, "_BATCH_CELLS", 0)  # each ROI filled on its own
    monkeypatch.setattr(ij, "_FILL_CHUNK", 1)  # one scanline at a time
    assert_array_equal(read("freehand.roi").masks(), expected)
    monkeypatch.setattr(ij, "_FULL_BOX_LIMIT", 10)
    assert_array_equal(read("freehand.roi").masks(), expected)
    with pytest.warns(UserWarning, match=r"'polygon-right' \(partly\) extends beyond"):
        assert_array_equal(read("polygon-right.roi", SMALL).masks(), expected_clipped)
    with pytest.raises(EmptyMaskError, match="entirely outside"):
        read("polygon-right-offscreen.roi", SMALL)


def test_unknown_roi_type_is_a_format_error(tmp_path):
    data = bytearray(corpus("polygon.roi").read_bytes())
    data[6] = 42  # the type byte
    path = tmp_path / "odd.roi"
    path.write_bytes(bytes(data))
    with pytest.raises(RoiFormatError, match=r"'polygon' \(ROI of unknown type 42\) is corrupt"):
        read_imagej(path, shape=FRAME)


def test_round_trip_roi_touching_every_frame_edge(tmp_path):
    m = np.zeros((12, 15), bool)
    m[0, :] = True  # top row, corner to corner
    m[:, 0] = True
    m[:, -1] = True
    m[-1, 5:] = True
    back = _round_trip(_single(m, "edge"), tmp_path)
    assert back[0].npix == m.sum()


def test_round_trip_label_image_of_several_cells(tmp_path):
    labels = np.zeros((40, 50), np.int32)
    yy, xx = np.mgrid[0:40, 0:50]
    labels[(yy - 10) ** 2 + (xx - 10) ** 2 <= 25] = 1
    labels[20:30, 5:15] = 2
    labels[24:26, 9:11] = 0  # a hole
    labels[2:6, 30:34] = 3
    labels[6:10, 34:38] = 3  # touches the first part only at a corner
    labels[15:35, 40:50] = 4  # on the right edge
    labels[32:40, 20:30] = 5  # on the bottom edge
    labels[34:36, 23:27] = 6  # inside 5's hole: an island in a ring
    rois = RoiSet.from_labels(labels)
    back = _round_trip(rois, tmp_path)
    assert back.ids == [1, 2, 3, 4, 5, 6]
    assert_array_equal(back.to_labels(), labels)
    kinds = [i["kind"] for i in back.meta["imagej"]]
    assert kinds == ["traced", "composite", "composite", "traced", "composite", "traced"]
    # what ImageJ reads: traced polygons on integer corners, composites as ShapeRois
    raw = roifile.ImagejRoi.fromfile(tmp_path / "RoiSet.zip")
    assert raw[0].roitype == roifile.ROI_TYPE.TRACED and raw[0].subpixel_coordinates is None
    assert raw[1].roitype == roifile.ROI_TYPE.RECT and raw[1].composite
    with zipfile.ZipFile(tmp_path / "RoiSet.zip") as zf:
        assert zf.namelist() == [f"roi {i}.roi" for i in range(1, 7)]


def test_written_bounds_follow_imagej(tmp_path):
    box = np.zeros((10, 10), bool)
    box[2:5, 3:7] = True
    write_imagej(_single(box, "b"), tmp_path / "b.roi")
    raw = roifile.ImagejRoi.fromfile(tmp_path / "b.roi")
    assert (raw.left, raw.top, raw.right, raw.bottom) == (3, 2, 7, 5)
    assert raw.name == "b"


def test_duplicate_and_odd_names_get_unique_entries(tmp_path):
    m = np.zeros((3, 10, 10), bool)
    m[0, 1, 1] = m[1, 5, 5] = m[2, 8, 8] = True
    rois = RoiSet.from_masks(m, names=["cell", "cell", "a/b"])
    _round_trip(rois, tmp_path)
    with zipfile.ZipFile(tmp_path / "RoiSet.zip") as zf:
        assert zf.namelist() == ["cell.roi", "cell-2.roi", "a_b.roi"]


def test_weights_are_not_written_and_say_so(tmp_path):
    roi = Roi(1, np.array([1, 1]), np.array([1, 2]), np.array([0.2, 0.8]), "w")
    rois = RoiSet([roi], (4, 4))
    with pytest.warns(UserWarning, match=r"no pixel weights: the weights of ROIs \[1\]"):
        write_imagej(rois, tmp_path / "w.zip")
    assert read_imagej(tmp_path / "w.zip", shape=(4, 4))[0].npix == 2


def test_write_refusals(tmp_path):
    m = np.zeros((2, 6, 6), bool)
    m[0, 1, 1] = m[1, 3, 3] = True
    two = RoiSet.from_masks(m)
    with pytest.raises(ParameterError, match=r"a \.roi file holds one ROI but the set holds 2"):
        write_imagej(two, tmp_path / "two.roi")
    with pytest.raises(ParameterError, match=r"written to a \.zip"):
        write_imagej(two, tmp_path / "two.txt")
    with pytest.raises(EmptyMaskError):
        write_imagej(RoiSet([], (6, 6)), tmp_path / "none.zip")
    assert not list(tmp_path.iterdir())


def test_write_is_atomic(tmp_path, monkeypatch):
    box = np.zeros((10, 10), bool)
    box[2:5, 3:7] = True
    rois = _single(box, "b")

    real = Path.write_bytes

    def broken(self, data):
        real(self, bytes(data)[:10])  # half the file, then the disk is full
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_bytes", broken)
    for name in ("RoiSet.zip", "b.roi"):
        with pytest.raises(OSError, match="disk full"):
            write_imagej(rois, tmp_path / name)
        assert list(tmp_path.iterdir()) == []
    # an existing file is left as it was
    with open(tmp_path / "RoiSet.zip", "wb") as fh:
        fh.write(b"old")
    with pytest.raises(OSError, match="disk full"):
        write_imagej(rois, tmp_path / "RoiSet.zip")
    assert [p.name for p in tmp_path.iterdir()] == ["RoiSet.zip"]
    assert (tmp_path / "RoiSet.zip").read_bytes() == b"old"


# -- many ROIs at once: the batched fill gives what the one-at-a-time one gives -----------------
def _roi(kind: str, points=None, **fields) -> bytes:
    name = fields.pop("name", "r")
    if points is None:
        roi = roifile.ImagejRoi(name=name)
    else:
        roi = roifile.ImagejRoi.frompoints(points, name=name)
    roi.roitype = roifile.ROI_TYPE[kind]
    for key, value in fields.items():
        setattr(roi, key, value)
    return roi.tobytes()


def _random_shapes(rng, n: int) -> list:
    """Polygons (integer, half-integer and sub-pixel vertices, horizontal edges,
    self-crossing, several loops, degenerate) and ovals, some across the frame's
    edges or off it."""
    import roitrace.io.imagej as ij

    shapes = []
    for k in range(n):
        centre = rng.uniform(-8, 48, 2)
        kind = k % 6
        if kind == 0:  # oval, bounds on a quarter-pixel grid
            w, h = rng.integers(0, 40, 2) / 4
            shapes.append(ij._Shape([], oval=(centre[0], centre[1], centre[0] + w, centre[1] + h)))
            continue
        m = int(rng.integers(3, 12))
        pts = centre + rng.uniform(-9, 9, (m, 2))
        if kind == 1:
            pts = np.round(pts)
        elif kind == 2:
            pts = np.round(pts * 2) / 2  # many centres exactly on edges
        elif kind == 3:
            pts[1:3, 1] = pts[0, 1]  # horizontal edges
        elif kind == 4:  # two loops: a ring or two pieces
            inner = centre + (pts - centre) * 0.4
            shapes.append(ij._Shape([np.round(pts), inner[::-1], np.zeros((2, 2))]))
            continue
        if k % 17 == 0:
            pts[:, 1] = pts[0, 1]  # flat: holds no pixel
        shapes.append(ij._Shape([pts.astype(np.float32).astype(np.float64)]))
    return shapes


@pytest.mark.parametrize("batch", [1 << 21, 300])
def test_batched_fill_matches_one_roi_at_a_time(monkeypatch, batch):
    import roitrace.io.imagej as ij

    monkeypatch.setattr(ij, "_BATCH_CELLS", batch)  # many batches, and some ROIs alone
    shapes = _random_shapes(np.random.default_rng(5), 3000)
    frame = (40, 44)
    bounds = ij._bounds_many(shapes)
    assert bounds == [s.bounds() for s in shapes]
    together = ij._rasterise_many(shapes, bounds, frame)
    for shape, (y, x, total, outside) in zip(shapes, together, strict=True):
        ry, rx, rtotal, routside = ij._rasterise(shape, frame)
        assert (total, outside) == (rtotal, routside)
        assert y.dtype == ry.dtype == np.intp and x.dtype == np.intp
        assert_array_equal(y, ry)
        assert_array_equal(x, rx)
    assert sum(o > 0 for *_, o in together) > 100 and sum(t == 0 for _, _, t, _ in together) > 10


def _zip_cases(tmp_path) -> list:
    """Zips as different writers make them."""
    square = _roi("POLYGON", [[1, 1], [5, 1], [5, 4], [1, 4]], name="")
    cases = []
    path = tmp_path / "deflated.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("cells/", b"")  # a folder
        zf.writestr("cells/a.roi", square)
        zf.writestr("readme.txt", b"not a ROI")
        zf.writestr("\u00e9t\u00e9.ROI", square)  # a UTF-8 name
        info = zipfile.ZipInfo("extra.roi")
        info.extra = b"UT\x05\x00\x01\x00\x00\x00\x00"  # an extended timestamp field
        zf.writestr(info, square, zipfile.ZIP_STORED)
        zf.comment = b"a comment"
    cases.append(path)
    prefixed = tmp_path / "prefixed.zip"  # a zip after other bytes (self-extracting)
    prefixed.write_bytes(b"#!/bin/sh junk\n" * 5 + path.read_bytes())
    cases.append(prefixed)
    stored = tmp_path / "stored.zip"
    with zipfile.ZipFile(stored, "w") as zf:
        for k in range(5):
            zf.writestr(f"{k}.roi", square)
    cases.append(stored)
    return cases


def test_zips_of_different_writers_are_read(tmp_path):
    import roitrace.io.imagej as ij

    for path in _zip_cases(tmp_path):
        with zipfile.ZipFile(path) as zf:
            want = [
                (i.filename, zf.read(i))
                for i in zf.infolist()
                if not i.is_dir() and i.filename.lower().endswith(".roi")
            ]
        assert list(ij._read_entries(path)) == want
        assert len(read_imagej(path, shape=(10, 10))) == len(want)


def _patched(path, old: bytes, new: bytes, count: int = 1):
    raw = path.read_bytes()
    assert raw.count(old) >= count
    path.write_bytes(raw.replace(old, new, count))


def test_damaged_zip_entries_are_format_errors(tmp_path):
    import roitrace.io.imagej as ij

    square = _roi("POLYGON", [[1, 1], [5, 1], [5, 4], [1, 4]], name="")

    def one(name="cell.roi", data=square) -> object:
        path = tmp_path / "RoiSet.zip"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(name, data)
        return path

    # the local header names another file: zipfile refuses it
    path = one()
    _patched(path, b"cell.roi", b"cela.roi")  # the first: the local header
    with pytest.raises(RoiFormatError, match=r"entry 'cell\.roi'\) cannot be unpacked"):
        read_imagej(path, shape=(10, 10))
    # the bytes do not match their CRC
    path = one()
    _patched(path, b"Iout", b"Iouu")
    with pytest.raises(RoiFormatError, match=r"cannot be unpacked \(Bad CRC-32"):
        read_imagej(path, shape=(10, 10))
    # an extra field zipfile finds corrupt: it says so
    path = tmp_path / "extra.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("cell.roi")
        info.extra = b"UT\x09\x00\x01\x00"
        zf.writestr(info, square)
    with pytest.raises(RoiFormatError, match=r"not a readable zip of ImageJ ROIs.*extra"):
        read_imagej(path, shape=(10, 10))
    # a large entry (junk after the ROI) among small ones
    path = tmp_path / "large.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.roi", square + bytes(3 << 20))  # junk after the ROI: ignored
        zf.writestr("small.roi", square)
    assert [e for e, _ in ij._read_entries(path)] == ["big.roi", "small.roi"]
    assert read_imagej(path, shape=(10, 10)).names == ["big", "small"]


def test_written_outlines_give_back_the_pixels(tmp_path):
    from scipy import ndimage

    rng = np.random.default_rng(11)
    masks = []
    for _ in range(40):  # blobs with holes, pieces touching at corners, single pixels
        field = ndimage.gaussian_filter(rng.random((30, 40)), rng.uniform(0.5, 2.5))
        masks.append(field > np.quantile(field, rng.uniform(0.2, 0.99)))
    masks.append(np.add.outer(np.arange(30), np.arange(40)) % 2 == 0)  # a checkerboard
    yy, xx = np.mgrid[:30, :40]
    masks.append((yy - 15) ** 2 + (xx - 20) ** 2 <= 40)  # a disk: one traced outline
    rois = RoiSet.from_masks(np.array(masks), names=[f"m{k} \u00e9t\u00e9" for k in range(42)])
    kinds = [i["kind"] for i in _round_trip(rois, tmp_path).meta["imagej"]]
    assert "traced" in kinds and "composite" in kinds
    # the bytes roitrace wrote before (roifile's, from its frompoints)
    with zipfile.ZipFile(tmp_path / "RoiSet.zip") as zf:
        written = [zf.read(name) for name in zf.namelist()]
    assert written == [roifile_bytes(r, r.name) for r in rois]


def test_outline_cycles():
    from roitrace.io.imagej import _cycles

    rng = np.random.default_rng(2)
    for n in (1, 2, 7, 100, 5000):
        nxt = rng.permutation(n)
        low, pos, length = _cycles(nxt)
        for i in range(n):  # walk each cycle from its lowest element
            seen, j = [i], nxt[i]
            while j != i:
                seen.append(j)
                j = nxt[j]
            first = min(seen)
            k = seen.index(first)
            assert low[i] == first and length[i] == len(seen)
            assert pos[i] == (len(seen) - k) % len(seen)


def test_garbage_collector_state_is_restored(tmp_path):
    import gc

    path = corpus("RoiSet.zip")
    assert gc.isenabled()
    read_imagej(path, shape=FRAME)
    assert gc.isenabled()
    gc.disable()
    try:
        read_imagej(path, shape=FRAME)
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(EmptyMaskError):
        read_imagej(path, shape=(5, 5))
    assert gc.isenabled()
    box = np.zeros((10, 10), bool)
    box[2:5, 3:7] = True
    write_imagej(_single(box, "b"), tmp_path / "b.zip")
    assert gc.isenabled()


def test_non_finite_coordinates_are_a_format_error(tmp_path):
    roi = roifile.ImagejRoi.frompoints([[1.5, 1.0], [3.0, 2.0], [4.0, 8.0]], name="nan")
    roi.subpixel_coordinates[1, 0] = np.nan
    path = tmp_path / "nan.roi"
    path.write_bytes(roi.tobytes())
    with pytest.raises(RoiFormatError, match=r"'nan' \(freehand\) is corrupt \(its coordinates"):
        read_imagej(path, shape=FRAME)


def test_names_beyond_the_bmp_are_written_whole(tmp_path):
    """ImageJ counts a name's length in UTF-16 units (roifile counted characters,
    cutting an emoji in two: the file could not be read back)."""
    masks = np.zeros((2, 10, 10), bool)
    masks[0, 2:5, 3:7] = True  # traced
    masks[1, 1, 1] = masks[1, 5, 5] = True  # composite
    names = ["cell \U0001f42d 1", "\U0001f42d\U0001f42d"]
    back = _round_trip(RoiSet.from_masks(masks, names=names), tmp_path)
    assert back.names == names
    assert [r.name for r in roifile.ImagejRoi.fromfile(tmp_path / "RoiSet.zip")] == names
    back = _round_trip(_single(masks[0], names[0]), tmp_path, "cell.roi")
    assert roifile.ImagejRoi.fromfile(tmp_path / "cell.roi").name == names[0]


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"roitype": "POLYGON", "options": "SPLINE_FIT"}, "spline-fitted polygon"),
        ({"roitype": "FREEHAND", "options": "SPLINE_FIT"}, "spline-fitted freehand"),
        ({"roitype": "TRACED", "options": "SPLINE_FIT"}, "traced"),
        ({"roitype": "RECT", "rounded_rect_arc_size": 4}, "rounded rectangle"),
        ({"roitype": "RECT", "shape_roi_size": 9}, "composite"),
        ({"roitype": "FREEHAND", "subtype": "ELLIPSE"}, "ellipse"),
        ({"roitype": "FREEHAND", "subtype": "ROTATED_RECT"}, "rotated rectangle"),
        ({"roitype": "POLYGON", "subtype": "ELLIPSE"}, "polygon"),
        ({"roitype": "RECT", "subtype": "TEXT"}, "text overlay"),
        ({"roitype": "RECT", "subtype": "IMAGE"}, "image overlay"),
        ({"roitype": "LINE", "subtype": "ARROW"}, "arrow"),
        ({"roitype": "POINT", "n_coordinates": 1}, "point"),
        ({"roitype": "POINT", "n_coordinates": 3}, "multipoint"),
        ({"roitype": "NOROI"}, "empty selection"),
    ],
)
def test_kinds_are_named_as_imagej_names_them(fields, kind):
    from roitrace.io.imagej import _kind

    enums = {"roitype": roifile.ROI_TYPE, "subtype": roifile.ROI_SUBTYPE}
    enums["options"] = roifile.ROI_OPTIONS
    roi = roifile.ImagejRoi(**{k: enums[k][v] if k in enums else v for k, v in fields.items()})
    assert _kind(roi) == kind
