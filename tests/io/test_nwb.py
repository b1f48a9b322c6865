"""NWB in and out: write_nwb / read_nwb_result / read_nwb_rois (pynwb 4, nwbinspector)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

pynwb = pytest.importorskip("pynwb")
nwbinspector = pytest.importorskip("nwbinspector")

import xarray as xr  # noqa: E402
from pynwb.base import Images  # noqa: E402
from pynwb.image import GrayscaleImage  # noqa: E402
from pynwb.ophys import ImageSegmentation, OpticalChannel, TwoPhotonSeries  # noqa: E402

import roitrace  # noqa: E402
from roitrace.errors import (  # noqa: E402
    ParameterError,
    ResultFormatError,
    RoiFormatError,
    RoitraceError,
    ShapeMismatchError,
)
from roitrace.io.nwb import (  # noqa: E402
    read_nwb_result,
    read_nwb_rois,
    write_nwb,
    write_nwb_rois,
)
from roitrace.rois import RoiSet  # noqa: E402

#: Subject metadata only the user can supply: nwbinspector reports these for files
#: written without ``subject=`` and that is expected.
SUBJECT_CHECKS = (
    "check_subject_exists",
    "check_subject_id_exists",
    "check_subject_species_exists",
    "check_subject_species_form",
    "check_subject_age",
    "check_subject_sex",
)
SUBJECT = {"subject_id": "m1", "species": "Mus musculus", "sex": "F", "age": "P90D"}


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    lab = np.zeros((24, 24), np.int32)
    lab[3:7, 3:7] = 1
    lab[12:16, 4:8] = 2
    lab[10:14, 15:19] = 3
    return lab


@pytest.fixture(scope="module")
def movie() -> np.ndarray:
    return np.random.default_rng(1).poisson(100, (40, 24, 24)).astype(np.uint16)


@pytest.fixture(scope="module")
def result(movie, labels):
    return roitrace.extract(
        roitrace.as_movie(movie, frame_rate=30.0), labels, neuropil={"gap": 1, "width": 2}
    )


@pytest.fixture(scope="module")
def rois(labels) -> RoiSet:
    return RoiSet.from_labels(labels)


@pytest.fixture(scope="module")
def written(result, rois, tmp_path_factory) -> Path:
    return write_nwb(result, rois, tmp_path_factory.mktemp("nwb") / "session.nwb")


def inspect(path: Path, *, validate: bool = True) -> list:
    # schema validation takes most of a second a file: the tests that only change
    # metadata values skip it (the layout is validated by the others)
    return list(nwbinspector.inspect_nwbfile(nwbfile_path=path, skip_validate=not validate))


def worse_than_suggestion(messages: list, *, ignore: tuple[str, ...] = ()) -> list[str]:
    return [
        f"{m.importance.name} {m.check_function_name} {m.location}: {m.message}"
        for m in messages
        if m.importance != nwbinspector.Importance.BEST_PRACTICE_SUGGESTION
        and m.check_function_name not in ignore
    ]


# -- writing and reading back ---------------------------------------------------------------
def test_write_passes_nwbinspector(written):
    assert written.name == "session.nwb" and written.is_file()
    messages = inspect(written)
    assert worse_than_suggestion(messages, ignore=SUBJECT_CHECKS) == []
    # only the subject is missing: that is the user's to supply
    assert {m.check_function_name for m in messages} & set(SUBJECT_CHECKS) == {
        "check_subject_exists"
    }


def test_write_file_structure(written, result):
    with pynwb.NWBHDF5IO(written, "r") as io:
        nwbfile = io.read()
        module = nwbfile.processing["ophys"]
        table = module["ImageSegmentation"]["PlaneSegmentation"]
        f = module["Fluorescence"]["F"]
        assert set(module["Fluorescence"].roi_response_series) == {
            "F",
            "Fneu",
            "F_corrected",
            "F0",
        }
        assert set(module["DfOverF"].roi_response_series) == {"dff"}
        assert f.data.shape == (40, 3)  # time first
        assert f.data.compression == "gzip"
        # sparse pixel rows, not a dense (n, Y, X) image_mask; the frame size beside
        assert "image_mask" not in table.colnames
        assert table["pixel_mask"].target.data.dataset.compression == "gzip"
        assert len(table["pixel_mask"].target.data) == int(result["npix"].sum())
        coverage = module["SummaryImages"].images["roi_coverage"].data
        assert coverage.shape == (24, 24) and coverage[:].max() == 1
        assert (f.rate, f.starting_time, f.timestamps) == (30.0, 0.0, None)
        assert f.unit == "a.u." and "roitrace 0.1.0" in f.description
        assert "roitrace" in nwbfile.notes and result.attrs["parameters"] in nwbfile.notes
        assert [list(r) for r in nwbfile.was_generated_by[:]] == [["roitrace", "0.1.0"]]
        assert nwbfile.imaging_planes["ImagingPlane"].imaging_rate == 30.0
        assert nwbfile.imaging_planes["ImagingPlane"].indicator == "unknown"


def test_read_nwb_rois_round_trip(written, rois):
    back = read_nwb_rois(written)
    assert back.ids == rois.ids == [1, 2, 3]
    assert back.frame_shape == rois.frame_shape
    assert back.names == rois.names
    for a, b in zip(back, rois, strict=True):
        np.testing.assert_array_equal(a.y, b.y)
        np.testing.assert_array_equal(a.x, b.x)
        assert a.weights is None
    assert back.meta["plane_segmentation"] == "ophys/ImageSegmentation/PlaneSegmentation"
    assert roitrace.read_rois(written, shape=(24, 24)).ids == [1, 2, 3]


def test_read_nwb_result_round_trip(written, result):
    back = read_nwb_result(written)
    for var in ("F", "Fneu", "F_corrected", "dff"):
        np.testing.assert_array_equal(back[var].values, result[var].values)
    np.testing.assert_array_equal(back["time"].values, result["time"].values)
    np.testing.assert_array_equal(back["frame"].values, result["frame"].values)
    assert back.attrs["roitrace_version"] == result.attrs["roitrace_version"]
    assert back.attrs["parameters"] == result.attrs["parameters"]
    xr.testing.assert_identical(back, result)  # coords, pixel table and attrs too
    assert roitrace.load(written)["F"].equals(result["F"])


def test_weighted_rois_round_trip(result, rois, tmp_path):
    r0 = rois[0]
    first = roitrace.rois.Roi(r0.id, r0.y, r0.x, np.linspace(0.5, 2.0, r0.npix), r0.name)
    weighted = RoiSet([first, *list(rois)[1:]], rois.frame_shape)
    back = read_nwb_rois(write_nwb(result, weighted, tmp_path / "w.nwb"))
    # NWB's pixel_mask stores weights as float32
    np.testing.assert_array_equal(back[0].weights, weighted[0].weights.astype(np.float32))
    assert back[0].weights.dtype == np.float64
    assert back[1].weights is None


def test_segmentation_alone_round_trip_and_passes_nwbinspector(rois, tmp_path):
    r0 = rois[0]
    # weights exact in float32 (pixel_mask's type), so the traces below are identical
    first = roitrace.rois.Roi(r0.id, r0.y, r0.x, (np.arange(r0.npix) + 4) / 8, "soma A")
    weighted = RoiSet([first, *list(rois)[1:]], rois.frame_shape)
    path = weighted.to_nwb(tmp_path / "seg.nwb", indicator="GCaMP6f", frame_rate=30.0)
    back = roitrace.read_rois(path)
    assert back.ids == weighted.ids and back.names == weighted.names
    assert back.frame_shape == weighted.frame_shape
    np.testing.assert_array_equal(back.to_labels(), weighted.to_labels())
    np.testing.assert_array_equal(back[0].weights, first.weights)
    with pynwb.NWBHDF5IO(path, "r") as io:
        nwbfile = io.read()
        module = nwbfile.processing["ophys"]
        assert set(module.data_interfaces) == {"ImageSegmentation", "SummaryImages"}
        table = module["ImageSegmentation"]["PlaneSegmentation"]
        np.testing.assert_array_equal(table["npix"].data[:], [r.npix for r in weighted])
        assert nwbfile.imaging_planes["ImagingPlane"].indicator == "GCaMP6f"
    assert worse_than_suggestion(inspect(path), ignore=SUBJECT_CHECKS) == []
    # extraction from the NWB segmentation gives the same traces as from the RoiSet
    movie = np.random.default_rng(2).poisson(80, (10, *rois.frame_shape)).astype(np.uint16)
    a = roitrace.extract(movie, path, method="weighted", weights="roi")
    b = roitrace.extract(movie, weighted, method="weighted", weights="roi")
    np.testing.assert_array_equal(a["F"].values, b["F"].values)


def test_segmentation_alone_refuses_empty_and_non_roisets(tmp_path):
    with pytest.raises(ParameterError, match="RoiSet"):
        write_nwb_rois(np.ones((4, 4)), tmp_path / "x.nwb")
    with pytest.raises(RoitraceError):
        write_nwb_rois(RoiSet([], (4, 4)), tmp_path / "x.nwb")
    assert not (tmp_path / "x.nwb").exists()


def test_subject_metadata_passes_every_check(result, rois, tmp_path):
    start = dt.datetime(2024, 3, 1, 9, 30, tzinfo=dt.UTC)
    path = write_nwb(
        result,
        rois,
        tmp_path / "full.nwb",
        subject=SUBJECT,
        indicator="GCaMP6f",
        location="VISp",
        device="2p-scope",
        excitation_lambda=920.0,
        emission_lambda=510.0,
        identifier="session-1",
        session_start_time=start,
        session_description="mouse V1, drifting gratings",
    )
    assert worse_than_suggestion(inspect(path, validate=False)) == []
    with pynwb.NWBHDF5IO(path, "r") as io:
        nwbfile = io.read()
        assert nwbfile.subject.subject_id == "m1" and nwbfile.subject.species == "Mus musculus"
        plane = nwbfile.imaging_planes["ImagingPlane"]
        assert (plane.indicator, plane.location, plane.device.name) == (
            "GCaMP6f",
            "VISp",
            "2p-scope",
        )
        assert (nwbfile.identifier, nwbfile.session_start_time) == ("session-1", start)


def test_session_and_plane_objects(result, rois, tmp_path):
    start = dt.datetime(2024, 3, 1, 9, 30, tzinfo=dt.UTC)
    session = roitrace.NWBSession(
        session_description="mouse V1, drifting gratings",
        identifier="session-2",
        session_start_time=start,
        subject=SUBJECT,
        experimenter="Doe, Jane",
        lab="Vision lab",
        institution="Somewhere University",
        nwbfile_kwargs={"keywords": ["V1"]},
    )
    plane = roitrace.NWBImagingPlane(
        indicator="GCaMP6f",
        location="VISp",
        device="2p-scope",
        excitation_lambda=920.0,
        emission_lambda=510.0,
    )
    path = write_nwb(result, rois, tmp_path / "objects.nwb", session=session, plane=plane)
    assert worse_than_suggestion(inspect(path, validate=False)) == []
    with pynwb.NWBHDF5IO(path, "r") as io:
        nwbfile = io.read()
        assert nwbfile.session_description == "mouse V1, drifting gratings"
        assert (nwbfile.identifier, nwbfile.session_start_time) == ("session-2", start)
        assert nwbfile.subject.subject_id == "m1"
        assert tuple(nwbfile.experimenter) == ("Doe, Jane",)
        assert (nwbfile.lab, nwbfile.institution) == ("Vision lab", "Somewhere University")
        assert list(nwbfile.keywords[:]) == ["V1"]
        p = nwbfile.imaging_planes["ImagingPlane"]
        assert (p.indicator, p.location, p.device.name, p.excitation_lambda) == (
            "GCaMP6f",
            "VISp",
            "2p-scope",
            920.0,
        )
        assert p.optical_channel[0].emission_lambda == 510.0


def test_flat_keywords_fill_the_objects(result, rois, tmp_path):
    # the keywords of earlier versions, mixed with the objects: one file
    path = write_nwb(
        result,
        rois,
        tmp_path / "mixed.nwb",
        session={"identifier": "s3"},
        plane=roitrace.NWBImagingPlane(location="VISp"),
        subject=SUBJECT,
        indicator="GCaMP6s",
        lab="Vision lab",
    )
    with pynwb.NWBHDF5IO(path, "r") as io:
        nwbfile = io.read()
        assert (nwbfile.identifier, nwbfile.lab, nwbfile.subject.subject_id) == (
            "s3",
            "Vision lab",
            "m1",
        )
        p = nwbfile.imaging_planes["ImagingPlane"]
        assert (p.indicator, p.location) == ("GCaMP6s", "VISp")
    # rois alone and through save / write_rois take the same
    seg = roitrace.write_rois(
        rois,
        tmp_path / "seg.nwb",
        session=roitrace.NWBSession(subject=SUBJECT),
        plane=roitrace.NWBImagingPlane(indicator="GCaMP6f"),
        frame_rate=30.0,
    )
    back = roitrace.save(result, tmp_path / "saved.nwb", plane={"indicator": "GCaMP6f"})
    for f in (seg, back):
        with pynwb.NWBHDF5IO(f, "r") as io:
            assert io.read().imaging_planes["ImagingPlane"].indicator == "GCaMP6f"


def test_metadata_mistakes_are_parameter_errors(result, rois, tmp_path):
    out = tmp_path / "x.nwb"
    with pytest.raises(ParameterError, match="indicator is given twice"):
        write_nwb(result, rois, out, plane=roitrace.NWBImagingPlane(indicator="a"), indicator="b")
    with pytest.raises(ParameterError, match="did you mean 'indicator'"):
        write_nwb(result, rois, out, indicatr="GCaMP6f")
    with pytest.raises(ParameterError, match="did you mean 'location'"):
        write_nwb_rois(rois, out, locaton="VISp")
    with pytest.raises(ParameterError, match="NWBSession has no field 'species'"):
        write_nwb(result, rois, out, session={"species": "Mus musculus"})
    with pytest.raises(ParameterError, match=r"session must be a roitrace\.NWBSession"):
        write_nwb(result, rois, out, session="m1")
    with pytest.raises(ParameterError, match="nwbfile_kwargs repeats 'lab'"):
        write_nwb(
            result, rois, out, session=roitrace.NWBSession(lab="a", nwbfile_kwargs={"lab": "b"})
        )
    with pytest.raises(ParameterError, match="session_description must be a non-empty"):
        write_nwb(result, rois, out, session=roitrace.NWBSession(session_description=" "))
    assert not out.exists()
    with pytest.raises(dataclasses.FrozenInstanceError):
        roitrace.NWBSession().lab = "x"


def test_non_contiguous_frames_use_timestamps(movie, labels, rois, tmp_path):
    frames = [0, 1, 2, 5, 9, 10, 11, 20, 33]
    ds = roitrace.extract(roitrace.as_movie(movie, frame_rate=30.0), labels, frames=frames)
    path = write_nwb(ds, rois, tmp_path / "sel.nwb")
    with pynwb.NWBHDF5IO(path, "r") as io:
        f = io.read().processing["ophys"]["Fluorescence"]["F"]
        assert f.rate is None
        np.testing.assert_array_equal(f.timestamps[:], np.array(frames) / 30.0)
    assert worse_than_suggestion(inspect(path), ignore=SUBJECT_CHECKS) == []
    back = read_nwb_result(path)
    np.testing.assert_array_equal(back["frame"].values, frames)
    np.testing.assert_array_equal(back["time"].values, ds["time"].values)
    np.testing.assert_array_equal(back["F"].values, ds["F"].values)


def test_every_nth_frame_uses_rate(movie, labels, rois, tmp_path):
    ds = roitrace.extract(
        roitrace.as_movie(movie, frame_rate=30.0), labels, frames=range(2, 40, 3)
    )
    path = write_nwb(ds, rois, tmp_path / "strided.nwb")
    with pynwb.NWBHDF5IO(path, "r") as io:
        f = io.read().processing["ophys"]["Fluorescence"]["F"]
        assert (f.rate, f.timestamps) == (10.0, None)
    xr.testing.assert_identical(read_nwb_result(path), ds)


def test_frame_rate_needed_when_unknown(labels, rois, tmp_path):
    ds = roitrace.extract(np.ones((6, 24, 24)), labels)  # no frame rate: no time coordinate
    with pytest.raises(ParameterError, match="frame_rate="):
        write_nwb(ds, rois, tmp_path / "norate.nwb")
    back = read_nwb_result(write_nwb(ds, rois, tmp_path / "rate.nwb", frame_rate=5.0))
    np.testing.assert_array_equal(back["time"].values, np.arange(6) / 5.0)
    assert back.attrs["frame_rate"] == 5.0


def test_rois_must_match_result(result, labels, tmp_path):
    other = RoiSet.from_labels(np.where(labels == 3, 0, labels))
    with pytest.raises(ShapeMismatchError, match=r"\[3\]"):
        write_nwb(result, other, tmp_path / "x.nwb")
    with pytest.raises(ParameterError, match="subject has unknown keys"):
        write_nwb(result, None, tmp_path / "x.nwb", subject={"name": "m1"})
    assert not (tmp_path / "x.nwb").exists()


def test_write_is_atomic(result, rois, tmp_path, monkeypatch):
    def fail(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pynwb.NWBHDF5IO, "write", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        write_nwb(result, rois, tmp_path / "atomic.nwb")
    assert list(tmp_path.iterdir()) == []  # no final file, no temporary left over


# -- foreign files ------------------------------------------------------------------------
def foreign_nwb(
    path: Path,
    pixel_masks=None,
    *,
    frame_shape=None,
    planes=("PlaneSegmentation",),
    voxel=False,
    image_masks=None,
    images=None,
) -> Path:
    """An NWB file as other software writes it: pixel_mask (or image_mask) ROIs, maybe a
    TwoPhotonSeries, maybe summary images as suite2p writes them (``Backgrounds_0``)."""
    nwbfile = pynwb.NWBFile(
        session_description="foreign",
        identifier="foreign",
        session_start_time=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    )
    if pixel_masks is None and image_masks is None and not voxel:
        nwbfile.add_acquisition(
            pynwb.TimeSeries(name="running", data=np.zeros(5), unit="m/s", rate=1.0)
        )
    else:
        device = nwbfile.create_device(name="scope", description="a microscope")
        channel = OpticalChannel(name="green", description="green", emission_lambda=520.0)
        plane = nwbfile.create_imaging_plane(
            name="plane",
            optical_channel=channel,
            device=device,
            excitation_lambda=920.0,
            indicator="GCaMP6f",
            location="VISp",
        )
        if frame_shape is not None:
            nwbfile.add_acquisition(
                TwoPhotonSeries(
                    name="raw",
                    imaging_plane=plane,
                    data=np.zeros((3, *frame_shape), np.uint16),
                    unit="n.a.",
                    rate=10.0,
                )
            )
        module = nwbfile.create_processing_module(name="ophys", description="ophys")
        segmentation = ImageSegmentation()
        module.add(segmentation)
        if images:
            module.add(
                Images(
                    name="Backgrounds_0",
                    images=[GrayscaleImage(name=k, data=v) for k, v in images.items()],
                )
            )
        for name in planes:
            table = segmentation.create_plane_segmentation(
                name=name, description="cells", imaging_plane=plane
            )
            if voxel:
                table.add_roi(voxel_mask=[(1, 2, 0, 1.0)], id=1)
                continue
            table.add_column(name="roi_name", description="cell names")
            if image_masks is not None:
                for k, m in enumerate(image_masks):
                    table.add_roi(image_mask=m, id=10 + k, roi_name=f"cell {k}")
                continue
            for k, px in enumerate(pixel_masks):
                table.add_roi(pixel_mask=px, id=10 + k, roi_name=f"cell {k}")
    with pynwb.NWBHDF5IO(path, "w") as io:
        io.write(nwbfile)
    return path


#: Two ROIs on a 10 x 30 frame as NWB documents pixel masks: (x = column, y = row, weight).
XY_MASKS = [[(20, 2, 0.5), (21, 2, 1.0), (20, 3, 1.0)], [(5, 8, 1.0), (29, 9, 1.0)]]


def check_foreign_rois(rois: RoiSet) -> None:
    assert rois.ids == [10, 11] and rois.names == ["cell 0", "cell 1"]
    assert rois.frame_shape == (10, 30)
    np.testing.assert_array_equal(rois[0].y, [2, 2, 3])
    np.testing.assert_array_equal(rois[0].x, [20, 21, 20])
    np.testing.assert_array_equal(rois[0].weights, [0.5, 1.0, 1.0])
    np.testing.assert_array_equal(rois[1].y, [8, 9])
    np.testing.assert_array_equal(rois[1].x, [5, 29])
    assert rois[1].weights is None


def test_pixel_mask_xy(tmp_path):
    path = foreign_nwb(tmp_path / "xy.nwb", XY_MASKS, frame_shape=(10, 30))
    check_foreign_rois(read_nwb_rois(path))


def test_pixel_mask_xy_frame_shape_from_argument(tmp_path):
    path = foreign_nwb(tmp_path / "xy.nwb", XY_MASKS)
    check_foreign_rois(read_nwb_rois(path, shape=(10, 30)))
    # without any frame size the frame is just big enough for the ROIs
    assert read_nwb_rois(path).frame_shape == (10, 30)


def test_pixel_mask_stored_yx_is_swapped_with_a_warning(tmp_path):
    yx = [[(y, x, w) for x, y, w in roi] for roi in XY_MASKS]
    path = foreign_nwb(tmp_path / "yx.nwb", yx, frame_shape=(10, 30))
    with pytest.warns(UserWarning, match=r"stored as \(y, x, weight\)"):
        rois = read_nwb_rois(path)
    check_foreign_rois(rois)


def test_pixel_mask_frame_shape_from_summary_images(tmp_path):
    # suite2p writes no movie but a full-frame meanImg beside cropped images
    images = {"max_proj": np.zeros((6, 25)), "meanImg": np.zeros((10, 30))}
    path = foreign_nwb(tmp_path / "s2p.nwb", XY_MASKS, images=images)
    check_foreign_rois(read_nwb_rois(path))
    square = foreign_nwb(tmp_path / "sq.nwb", XY_MASKS, images={"meanImg": np.zeros((40, 40))})
    assert read_nwb_rois(square).frame_shape == (40, 40)


def test_image_mask_read_some_rois_at_a_time(tmp_path, monkeypatch):
    masks = np.zeros((7, 10, 30))
    for k in range(7):
        masks[k, k, 2 * k : 2 * k + 3] = 1.0
    masks[3, 3, 6] = 0.25
    path = foreign_nwb(tmp_path / "im.nwb", image_masks=list(masks))
    monkeypatch.setattr(roitrace.io.nwb, "_IMAGE_MASK_BLOCK", 2 * 8 * 10 * 30)  # 2 ROIs a read
    rois = read_nwb_rois(path)
    assert rois.ids == list(range(10, 17)) and rois.frame_shape == (10, 30)
    for k, r in enumerate(rois):
        np.testing.assert_array_equal(r.y, [k] * 3)
        np.testing.assert_array_equal(r.x, [2 * k, 2 * k + 1, 2 * k + 2])
    np.testing.assert_array_equal(rois[3].weights, [0.25, 1.0, 1.0])
    assert rois[2].weights is None


def test_many_rois_are_written_as_pixel_rows(tmp_path):
    # a dense image_mask of 5000 ROIs x 300 x 300 would be 3.6 GB of float64 to gzip
    n, side = 5000, 75
    lab = np.zeros((300, 300), np.int32)
    r, c = np.divmod(np.arange(n), side)
    for dy, dx in ((0, 0), (0, 1), (1, 0)):
        lab[r * 4 + dy, c * 4 + dx] = np.arange(1, n + 1)
    rois = RoiSet.from_labels(lab)
    path = write_nwb_rois(rois, tmp_path / "many.nwb")
    assert path.stat().st_size < 2_000_000
    back = read_nwb_rois(path)
    assert back.ids == rois.ids and back.frame_shape == (300, 300)
    np.testing.assert_array_equal(back.to_labels(), lab)


def test_pixels_of_weight_zero_survive(result, rois, tmp_path):
    # a dense image_mask could not tell them from background (they were dropped, warned)
    r0 = rois[0]
    weights = np.ones(r0.npix)
    weights[0] = 0.0
    zero = RoiSet([roitrace.rois.Roi(r0.id, r0.y, r0.x, weights), *list(rois)[1:]], (24, 24))
    back = read_nwb_rois(write_nwb(result, zero, tmp_path / "zero.nwb"))
    assert back[0].npix == r0.npix
    np.testing.assert_array_equal(back[0].weights, weights)


def test_pixel_mask_fitting_neither_order(tmp_path):
    bad = [[(40, 2, 1.0)], [(1, 1, 1.0)]]  # x = 40: outside 30 columns and 10 rows
    path = foreign_nwb(tmp_path / "bad.nwb", bad, frame_shape=(10, 30))
    with pytest.raises(ShapeMismatchError, match="outside the 10 x 30 frame"):
        read_nwb_rois(path)


def test_no_plane_segmentation(tmp_path):
    path = foreign_nwb(tmp_path / "behaviour.nwb")
    with pytest.raises(RoiFormatError, match="no PlaneSegmentation") as info:
        read_nwb_rois(path)
    assert str(path) in str(info.value) and "acquisition/running" in str(info.value)
    with pytest.raises(ResultFormatError, match="no RoiResponseSeries 'F'"):
        read_nwb_result(path)


def test_several_plane_segmentations_need_a_name(tmp_path):
    path = foreign_nwb(tmp_path / "two.nwb", XY_MASKS, frame_shape=(10, 30), planes=("A", "B"))
    with pytest.raises(ParameterError, match="plane_segmentation=") as info:
        read_nwb_rois(path)
    assert "ophys/ImageSegmentation/A" in str(info.value)
    assert "ophys/ImageSegmentation/B" in str(info.value)
    rois = read_nwb_rois(path, plane_segmentation="B")
    assert rois.meta["plane_segmentation"] == "ophys/ImageSegmentation/B"
    check_foreign_rois(rois)
    with pytest.raises(ParameterError, match="'C' is not in"):
        read_nwb_rois(path, plane_segmentation="C")


def test_voxel_mask_refused(tmp_path):
    path = foreign_nwb(tmp_path / "vox.nwb", voxel=True)
    with pytest.raises(RoiFormatError, match="3-D voxel_mask"):
        read_nwb_rois(path)


def test_unreadable_files(tmp_path):
    junk = tmp_path / "junk.nwb"
    junk.write_text("not hdf5")
    with pytest.raises(RoiFormatError, match=r"junk\.nwb"):
        read_nwb_rois(junk)
    with pytest.raises(FileNotFoundError):
        read_nwb_result(tmp_path / "missing.nwb")
    with pytest.raises(RoitraceError):
        read_nwb_result(junk)


def test_imaging_plane_wavelengths_are_checked():
    with pytest.raises(ParameterError, match=r"excitation_lambda must be > 0, got -5 \(nm\)"):
        roitrace.NWBImagingPlane(excitation_lambda=-5)
    assert roitrace.NWBImagingPlane(emission_lambda=510).emission_lambda == 510.0
