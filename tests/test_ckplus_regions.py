"""AU regions from landmarks: each AU's region lies where EAC-Net / JAA-Net put it."""

from __future__ import annotations

import numpy as np
import pytest

from interp_datasets.alignment import align_from_landmarks
from interp_datasets.au_regions import AU_RULES, HALF_SIDE, NO_REGION, au_centres, au_regions, ruler
from interp_datasets.ckplus import CKPlusDataset
from test_ckplus import face_landmarks, write_release, write_sequence

SIZE = 64
#: The AUs coded at CK+ peak frames (Lucey et al. 2010; NetFACS emotions_set).
CKPLUS_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24, 25, 26, 27)


@pytest.fixture(scope="module")
def crop_landmarks():
    """Landmarks of a rolled face mapped into a 64-pixel crop."""
    frame = face_landmarks(eye_distance=120.0, centre=(300.0, 220.0), roll_degrees=-9.0)
    return align_from_landmarks(frame, SIZE).points(frame)


def _inside(mask, point) -> bool:
    x, y = (int(round(v)) for v in point)
    return bool(mask[y, x])


def _rows(mask):
    return np.flatnonzero(mask.any(axis=1))


def _cols(mask):
    return np.flatnonzero(mask.any(axis=0))


def test_every_ckplus_au_has_a_rule_or_a_documented_absence():
    for au in CKPLUS_AUS:
        assert (au in AU_RULES) != (au in NO_REGION), au
        if au in AU_RULES:
            assert AU_RULES[au].source and AU_RULES[au].rule
    assert 21 in NO_REGION


def test_lip_corner_aus_cover_the_lip_corners_not_the_eyes(crop_landmarks):
    regions = au_regions(crop_landmarks, SIZE, [12, 14, 15])
    eyes = [crop_landmarks[36:42].mean(0), crop_landmarks[42:48].mean(0)]
    for au in (12, 14, 15):
        assert _inside(regions[au], crop_landmarks[48]) and _inside(regions[au], crop_landmarks[54])
        assert not any(_inside(regions[au], eye) for eye in eyes)
        assert not _inside(regions[au], crop_landmarks[30])  # nose tip


def test_brow_aus_lie_above_or_below_the_brows(crop_landmarks):
    regions = au_regions(crop_landmarks, SIZE)
    inner_brow_y = crop_landmarks[[21, 22], 1].mean()
    scale = ruler(crop_landmarks)
    # AU1: centred 1/2 ruler above the inner brow ends, between the eyes horizontally.
    rows = _rows(regions[1])
    assert rows.mean() == pytest.approx(inner_brow_y - scale / 2, abs=1.0)
    assert rows.max() < inner_brow_y
    cols = _cols(regions[1])
    assert crop_landmarks[21, 0] - 1 <= cols.mean() <= crop_landmarks[22, 0] + 1
    assert not _inside(regions[1], crop_landmarks[18]) and not _inside(regions[1], crop_landmarks[25])
    # AU2: above the outer brows (18, 25), not above the inner ones.
    for index in (18, 25):
        x, y = crop_landmarks[index]
        assert _inside(regions[2], (x, y - scale / 3))
    assert not _inside(regions[2], (SIZE / 2, inner_brow_y - scale / 2))
    # AU4: below the brow centres, above the eye line's lower lid.
    assert _rows(regions[4]).mean() > crop_landmarks[[19, 24], 1].mean()


def test_eye_cheek_nose_and_chin_aus(crop_landmarks):
    regions = au_regions(crop_landmarks, SIZE)
    scale = ruler(crop_landmarks)
    for au in (5, 7):
        assert _inside(regions[au], crop_landmarks[37:39].mean(0)) and _inside(regions[au], crop_landmarks[43:45].mean(0))
    # AU6: one ruler below the lower lids, i.e. on the cheeks, below the eyes.
    assert _rows(regions[6]).min() > crop_landmarks[[41, 46], 1].mean()
    assert _inside(regions[6], crop_landmarks[41] + (0, scale))
    # AU9: the nose bridge between the eyes and the nostrils, on the midline.
    rows = _rows(regions[9])
    assert crop_landmarks[[39, 42], 1].mean() < rows.mean() < crop_landmarks[33, 1]
    assert _inside(regions[9], (crop_landmarks[30, 0], rows.mean()))
    # AU17: below the lower lip, above the chin tip.
    rows = _rows(regions[17])
    assert crop_landmarks[57, 1] < rows.mean() < crop_landmarks[8, 1]
    # AU20: outward of the lip corners.
    cols = _cols(regions[20])
    assert cols.min() < crop_landmarks[48, 0] - scale / 4 and cols.max() > crop_landmarks[54, 0] + scale / 4
    assert not _inside(regions[20], crop_landmarks[51])


def test_mouth_aus_cover_the_lips(crop_landmarks):
    regions = au_regions(crop_landmarks, SIZE, [10, 23, 24, 25, 26, 27])
    for au in (23, 24, 25, 27):
        assert _inside(regions[au], crop_landmarks[51]) and _inside(regions[au], crop_landmarks[57])
    assert _inside(regions[10], crop_landmarks[62])
    assert _rows(regions[26]).mean() > crop_landmarks[57, 1]
    assert not any(_inside(regions[au], crop_landmarks[27]) for au in regions)


def test_squares_have_the_documented_size():
    # An upright face in crop coordinates: the region of one centre is a square of side 2*HALF_SIDE*ruler.
    frame = face_landmarks(eye_distance=200.0, centre=(400.0, 300.0))
    points = align_from_landmarks(frame, 128).points(frame)
    region = au_regions(points, 128, [9])[9]
    side = 2 * HALF_SIDE * ruler(points)
    # The two AU9 centres overlap into one rectangle; its height is one square's side.
    assert abs(len(_rows(region)) - side) <= 1.01
    centres = au_centres(points, [9])[9]
    assert centres.shape == (2, 2)
    assert au_regions(points, 128, [21]) == {}  # no rule, no region


def test_samples_carry_regions_for_their_aus(tmp_path):
    root = write_release(tmp_path / "ck")
    data = CKPlusDataset(data_root=root, cache=False)
    for index in range(len(data)):
        sample = data[index]
        assert set(sample.au_regions) == {au for au in sample.aus if au in AU_RULES}
        for mask in sample.au_regions.values():
            assert mask.shape == (SIZE, SIZE) and mask.dtype == bool and mask.any()


def _same_masks(bulk, expected):
    assert (bulk is None) == (expected is None)
    if expected is not None:
        assert sorted(bulk) == sorted(expected)
        for au, mask in expected.items():
            assert bulk[au].dtype == bool
            np.testing.assert_array_equal(bulk[au], mask)


def test_bulk_localisation_masks_equal_each_samples_regions(tmp_path):
    """Dataset.localisation_masks reads landmark regions without decoding the crops, the same as samples."""
    from interpret_core.api.interfaces import Dataset

    root = write_release(tmp_path / "ck")
    data = CKPlusDataset(data_root=root, cache=False)
    order = np.arange(len(data))[::-1]
    bulk = data.localisation_masks(order)
    assert not data._decoded.any()  # no image was decoded
    assert any(masks for masks in bulk)
    for index, masks in zip(order.tolist(), bulk):
        _same_masks(masks, data[index].localisation_masks())
    # The interface's default (decoding each sample) agrees.
    for index, masks in zip(order.tolist(), Dataset.localisation_masks(data, order)):
        _same_masks(masks, bulk[len(data) - 1 - index])
    with pytest.raises(IndexError):
        data.localisation_masks([len(data)])


def test_au_mask_files_are_warped_with_the_face(tmp_path):
    """An AUMasks file (SynthFACS layout) in frame coordinates follows the face into the crop."""
    root = tmp_path / "ck"
    landmarks = write_sequence(root, "S020", "001", 4, emotion=5, facs={12: 3}, roll=15.0, centre=(280.0, 230.0))
    (root / "FACS").mkdir(exist_ok=True)
    folder = root / "AUMasks" / "S020" / "001"
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[0:490, 0:640]
    corner = landmarks[48]
    disc = (xx - corner[0]) ** 2 + (yy - corner[1]) ** 2 <= 14.0**2
    for number in (2, 3, 4):
        np.savez_compressed(folder / f"S020_001_{number:08d}_aumasks.npz", AU12=disc)
    data = CKPlusDataset(data_root=root)
    neutral, apex = data[0], data[3]
    assert neutral.au_masks == {}  # ground truth exists, no AU shows in a frame without a file
    mask = apex.au_masks[12]
    assert mask.dtype == bool and mask.shape == (SIZE, SIZE)
    centroid = np.argwhere(mask).mean(axis=0)[::-1]
    np.testing.assert_allclose(centroid, apex.landmarks[48], atol=0.75)
    alignment = align_from_landmarks(landmarks, SIZE)
    expected_area = np.pi * (14.0 * alignment.scale) ** 2
    assert abs(mask.sum() - expected_area) < 0.25 * expected_area
    assert apex.localisation_masks() is apex.au_masks
    fresh = CKPlusDataset(data_root=root, cache=False)
    bulk = fresh.localisation_masks([3, 0, 3])  # ground truth where a mask file exists, decoded once
    assert fresh._masks_done.tolist() == [True, False, False, True] and not fresh._decoded.any()
    _same_masks(bulk[0], apex.au_masks)
    _same_masks(bulk[1], neutral.au_masks)
    bulk[0][12][:] = False  # copies: the data set's masks are not changed
    np.testing.assert_array_equal(fresh.localisation_masks([3])[0][12], mask)
    # The caches keep crops and masks; masks are decoded only when asked for.
    data.arrays()
    assert not data._masks_done.all()
    data.decode_all()
    cached = CKPlusDataset(data_root=root)
    assert cached._decoded.all() and cached._masks_done.all()
    np.testing.assert_array_equal(cached[3].au_masks[12], mask)


def test_malformed_au_mask_file_is_a_clear_error(tmp_path):
    from interpret_core import DataError

    root = tmp_path / "ck"
    write_sequence(root, "S020", "001", 4, emotion=5, facs={12: 3})
    (root / "FACS").mkdir(exist_ok=True)
    folder = root / "AUMasks" / "S020" / "001"
    folder.mkdir(parents=True)
    np.savez(folder / "S020_001_00000004_aumasks.npz", AU12=np.zeros((10, 10), bool))
    data = CKPlusDataset(data_root=root, cache=False)
    with pytest.raises(DataError, match=r"S020_001_00000004_aumasks\.npz: malformed AU-mask file"):
        data[3]
