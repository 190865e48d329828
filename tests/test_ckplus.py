"""The CK+ reader on small CK+ trees written with the release's quirks.

``write_release`` (also imported by the other ``test_ckplus_*`` files) builds a
tree in the distributed layout: PNG frames drawn from 68 landmarks, landmark,
FACS and emotion files in e-notation with leading spaces.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from interp_datasets.emotions import EMOTIONS
from interpret_core.analysis.splits import subject_kfold
from interpret_core import DataError, UsageError
from interp_datasets.alignment import EYE_LEFT_POSITION, EYE_RIGHT_POSITION
from interp_datasets.ckplus import CKPlusDataset, read_emotion, read_facs, read_landmarks

# -- a synthetic face in inter-ocular units (origin between the eye centres, y down) --
_EYE_L = [(-0.7, 0.0), (-0.58, -0.07), (-0.42, -0.07), (-0.3, 0.0), (-0.42, 0.07), (-0.58, 0.07)]
_EYE_R = [(-x, y) for x, y in [_EYE_L[3], _EYE_L[2], _EYE_L[1], _EYE_L[0], _EYE_L[5], _EYE_L[4]]]
_BROW_L = [(-0.85, -0.28), (-0.68, -0.36), (-0.5, -0.38), (-0.32, -0.36), (-0.16, -0.3)]
_BROW_R = [(-x, y) for x, y in reversed(_BROW_L)]
_JAW = [(math.cos(a) * 1.0, 0.1 + math.sin(a) * 1.55) for a in np.linspace(math.pi, 0, 17)]
_JAW = [(-x, y) for x, y in _JAW]  # 0 = image-left ear ... 8 chin ... 16 image-right ear
_NOSE = [(0.0, -0.1), (0.0, 0.15), (0.0, 0.4), (0.0, 0.6), (-0.2, 0.7), (-0.1, 0.73), (0.0, 0.75), (0.1, 0.73), (0.2, 0.7)]
_MOUTH_OUT = [(-0.4, 1.05), (-0.25, 0.96), (-0.1, 0.93), (0.0, 0.94), (0.1, 0.93), (0.25, 0.96),
              (0.4, 1.05), (0.25, 1.17), (0.1, 1.21), (0.0, 1.22), (-0.1, 1.21), (-0.25, 1.17)]
_MOUTH_IN = [(-0.33, 1.06), (-0.1, 1.03), (0.0, 1.03), (0.1, 1.03), (0.33, 1.06), (0.1, 1.1), (0.0, 1.1), (-0.1, 1.1)]
CANONICAL = np.array(_JAW + _BROW_L + _BROW_R + _NOSE + _EYE_L + _EYE_R + _MOUTH_OUT + _MOUTH_IN, dtype=np.float64)
assert CANONICAL.shape == (68, 2)


def face_landmarks(eye_distance=110.0, centre=(320.0, 200.0), roll_degrees=0.0) -> np.ndarray:
    """[68, 2] landmarks of the canonical face placed in a frame (pixel-centre coordinates)."""
    angle = math.radians(roll_degrees)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return CANONICAL @ rotation.T * eye_distance + np.asarray(centre)


def draw_face(landmarks: np.ndarray, frame_size=(640, 490), mode="L", masks_for=()) -> Image.Image:
    """A grey (or RGB) frame: light face, dark eye discs, brows and mouth."""
    width, height = frame_size
    picture = Image.new("L", (width, height), 200)
    draw = ImageDraw.Draw(picture)
    d = float(np.hypot(*(landmarks[42:48].mean(0) - landmarks[36:42].mean(0))))
    jaw = [tuple(p) for p in landmarks[0:17]] + [tuple(p) for p in landmarks[[24, 19]]]
    draw.polygon(jaw, fill=170)
    for eye in (landmarks[36:42], landmarks[42:48]):
        cx, cy = eye.mean(0)
        r = 0.1 * d
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=15)
    draw.line([tuple(p) for p in landmarks[17:22]], fill=60, width=max(1, int(0.05 * d)))
    draw.line([tuple(p) for p in landmarks[22:27]], fill=60, width=max(1, int(0.05 * d)))
    draw.polygon([tuple(p) for p in landmarks[48:60]], fill=90)
    if mode == "RGB":
        rgb = np.asarray(picture)[..., None].repeat(3, axis=2).copy()
        return Image.fromarray(rgb, mode="RGB")
    return picture


def _enote(values) -> str:
    return "".join(f"   {v:.7e}" for v in values) + "\n"


def write_frame(root: Path, subject: str, seq: str, number: int, landmarks: np.ndarray, *, mode="L",
                frame_size=(640, 490), landmark_rows=68) -> Path:
    stem = f"{subject}_{seq}_{number:08d}"
    image_dir = root / "cohn-kanade-images" / subject / seq
    image_dir.mkdir(parents=True, exist_ok=True)
    path = image_dir / f"{stem}.png"
    draw_face(landmarks, frame_size, mode).save(path)
    landmark_dir = root / "Landmarks" / subject / seq
    landmark_dir.mkdir(parents=True, exist_ok=True)
    (landmark_dir / f"{stem}_landmarks.txt").write_text("".join(_enote(p) for p in landmarks[:landmark_rows]))
    return path


def write_sequence(root: Path, subject: str, seq: str, frames: int, *, emotion=None, facs=None,
                   empty_emotion_folder=False, mode="L", frame_size=(640, 490), roll=0.0,
                   centre=(320.0, 200.0), eye_distance=110.0) -> np.ndarray:
    """Write one sequence; returns the landmarks used (same for every frame)."""
    landmarks = face_landmarks(eye_distance, centre, roll)
    for number in range(1, frames + 1):
        write_frame(root, subject, seq, number, landmarks, mode=mode, frame_size=frame_size)
    peak = f"{subject}_{seq}_{frames:08d}"
    if emotion is not None:
        folder = root / "Emotion" / subject / seq
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{peak}_emotion.txt").write_text(_enote([float(emotion)]))
    elif empty_emotion_folder:
        (root / "Emotion" / subject / seq).mkdir(parents=True, exist_ok=True)
    if facs is not None:
        folder = root / "FACS" / subject / seq
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{peak}_facs.txt").write_text("".join(_enote([au, i]) for au, i in facs.items()))
    return landmarks


def write_release(root: Path) -> Path:
    """A small release with every quirk of the real one that still parses.

    S010: 001 happy (grey 640x490), 002 surprise (RGB 640x480), 003 unlabelled,
          empty Emotion folder; S011: 001 anger (720x480, rolled 12 degrees),
          002 unlabelled, no Emotion folder; S012: 001 sadness (6 frames).
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "Emotion").mkdir(exist_ok=True)
    (root / "FACS").mkdir(exist_ok=True)
    write_sequence(root, "S010", "001", 5, emotion=5, facs={6: 3, 12: 4, 25: 0})
    write_sequence(root, "S010", "002", 4, emotion=7, facs={1: 2, 2: 2, 5: 1, 27: 3}, mode="RGB", frame_size=(640, 480))
    write_sequence(root, "S010", "003", 4, facs={4: 1}, empty_emotion_folder=True)
    write_sequence(root, "S011", "001", 7, emotion=1, facs={4: 3, 7: 2, 17: 2, 23: 1}, frame_size=(720, 480), roll=12.0,
                   centre=(360.0, 210.0))
    write_sequence(root, "S011", "002", 4, facs={12: 2})
    write_sequence(root, "S012", "001", 6, emotion=6, facs={1: 3, 4: 2, 15: 3}, eye_distance=95.0)
    for stray in (root, root / "cohn-kanade-images", root / "cohn-kanade-images" / "S010" / "001",
                  root / "Emotion" / "S010", root / "Landmarks" / "S011" / "001"):
        (stray / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return root


@pytest.fixture
def release(tmp_path):
    return write_release(tmp_path / "ckplus")


# -- parsing ------------------------------------------------------------------------
def test_text_files_in_e_notation_with_leading_spaces(tmp_path):
    path = tmp_path / "x_landmarks.txt"
    path.write_text("".join(f"   {i + 0.5:.7e}   {2 * i:.7e}\n" for i in range(68)) + "\n")
    landmarks = read_landmarks(path)
    assert landmarks.shape == (68, 2)
    assert landmarks[3].tolist() == [3.5, 6.0]
    facs = tmp_path / "x_facs.txt"
    facs.write_text("   1.2000000e+01   4.0000000e+00\n   2.5000000e+01   0.0000000e+00\n")
    assert read_facs(facs) == {12: 4, 25: 0}
    emotion = tmp_path / "x_emotion.txt"
    emotion.write_text("   3.0000000e+00\n")
    assert read_emotion(emotion) == 3


# -- protocols, counts and labels -------------------------------------------------------
def test_default_protocol_counts_and_labels(release):
    data = CKPlusDataset(data_root=release)
    # Four labelled sequences: first frame neutral + last three frames.
    assert len(data) == 16
    assert data.class_names == list(EMOTIONS)
    assert data.sequences == ["S010_001"] * 4 + ["S010_002"] * 4 + ["S011_001"] * 4 + ["S012_001"] * 4
    assert data.frames == [1, 3, 4, 5, 1, 2, 3, 4, 1, 5, 6, 7, 1, 4, 5, 6]
    expected = [0, 5, 5, 5, 0, 7, 7, 7, 0, 1, 1, 1, 0, 6, 6, 6]
    assert data.emotions == expected
    assert data.subjects == ["S010"] * 8 + ["S011"] * 4 + ["S012"] * 4
    assert data.skipped == []
    neutral, apex = data[0], data[3]
    assert neutral.emotion == 0 and neutral.aus == {} and neutral.au_regions == {}
    assert apex.aus == {6: 3, 12: 4, 25: 0}
    assert data[1].aus == apex.aus  # the two frames before the peak carry its AUs too
    assert set(apex.au_regions) == {6, 12, 25}
    assert apex.subject == "S010" and apex.sequence == "S010_001" and apex.frame == 5
    assert apex.au_masks is None  # no AUMasks folder in a real CK+ release
    assert apex.path.endswith("S010_001_00000005.png")


def test_peak_sequence_and_all_protocols(release):
    peak = CKPlusDataset(data_root=release, protocol="peak")
    assert peak.frames == [5, 4, 7, 6]
    assert peak.emotions == [5, 7, 1, 6]
    sequence = CKPlusDataset(data_root=release, protocol="sequence")
    assert len(sequence) == 5 + 4 + 7 + 6
    first = sequence.emotions[:5]
    assert first == [0, None, 5, 5, 5]
    everything = CKPlusDataset(data_root=release, protocol="all")
    assert len(everything) == 5 + 4 + 4 + 7 + 4 + 6
    unlabelled = [e for e, s in zip(everything.emotions, everything.sequences) if s == "S010_003"]
    assert unlabelled == [0, None, None, None]
    facs_only = [everything[i].aus for i, s in enumerate(everything.sequences) if s == "S011_002"]
    assert facs_only == [{}, {12: 2}, {12: 2}, {12: 2}]


def test_seven_class_mode_drops_neutral(release):
    data = CKPlusDataset(data_root=release, include_neutral="false")
    assert data.class_names == list(EMOTIONS[1:])
    assert len(data) == 12
    assert data.emotions == [4, 4, 4, 6, 6, 6, 0, 0, 0, 5, 5, 5]
    assert data.class_names[data.emotions[0]] == "happy"


def test_summary_describes_the_release(release):
    summary = CKPlusDataset(data_root=release).summary()
    assert summary["subjects"] == 3
    assert summary["sequences"] == 6
    assert summary["emotion_labelled"] == 4
    assert summary["emotions"]["happy"] == 1 and summary["emotions"]["anger"] == 1
    assert summary["emotions"]["contempt"] == 0
    assert sum(summary["emotions"].values()) == 4
    assert summary["aus"]["4"] == 3  # S010_003, S011_001, S012_001
    assert summary["aus"]["12"] == 2
    assert summary["images"] == 16
    assert summary["frames"] == 5 + 4 + 4 + 7 + 4 + 6
    assert summary["skipped"] == [] and summary["ignored"] == []


# -- pixels and alignment ----------------------------------------------------------------
def _eye_targets(size):
    return np.array([[EYE_LEFT_POSITION[0] * size - 0.5, EYE_LEFT_POSITION[1] * size - 0.5],
                     [EYE_RIGHT_POSITION[0] * size - 0.5, EYE_RIGHT_POSITION[1] * size - 0.5]])


@pytest.mark.parametrize("size", [64, 48])
def test_crops_put_the_eyes_at_the_template(release, size):
    data = CKPlusDataset(data_root=release, size=size)
    for index in (3, 7, 11, 15):  # grey 640x490, RGB 640x480, rotated 720x480, smaller face
        sample = data[index]
        assert sample.image.shape == (size, size) and sample.image.dtype == np.float32
        assert 0.0 <= sample.image.min() and sample.image.max() <= 1.0
        eyes = np.stack([sample.landmarks[36:42].mean(0), sample.landmarks[42:48].mean(0)])
        np.testing.assert_allclose(eyes, _eye_targets(size), atol=1e-3)
        # The dark eye discs of the drawing land where the landmarks say.
        for x, y in eyes:
            patch = sample.image[int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2]
            assert patch.mean() < 0.3, (index, x, y, patch)
        assert sample.image[int(round(eyes[0, 1])), size // 2] > 0.5  # between the eyes is skin, not eye


def test_rotated_frame_comes_out_level_and_matches_an_upright_one(release, tmp_path):
    upright = write_release(tmp_path / "upright")
    # Rewrite S011_001 of the second release upright and at the first frame's size.
    data = CKPlusDataset(data_root=release)
    level = data[11]
    eyes = np.stack([level.landmarks[36:42].mean(0), level.landmarks[42:48].mean(0)])
    assert abs(eyes[0, 1] - eyes[1, 1]) < 1e-3
    mouth = level.landmarks[[48, 54]]
    assert abs(mouth[0, 1] - mouth[1, 1]) < 1e-3  # the whole face is rotated, not just the eyes
    # The crop of a rolled face equals the crop of the same face upright (up to resampling).
    import shutil

    shutil.rmtree(upright / "cohn-kanade-images" / "S011" / "001")
    shutil.rmtree(upright / "Landmarks" / "S011" / "001")
    write_sequence(upright, "S011", "001", 7, emotion=1, facs={4: 3}, frame_size=(720, 480), roll=0.0, centre=(360.0, 210.0))
    straight = CKPlusDataset(data_root=upright, cache=False)[11]
    np.testing.assert_allclose(level.landmarks, straight.landmarks, atol=1e-3)
    assert np.abs(level.image - straight.image).mean() < 0.03


def test_rgb_frames_are_read_as_grey(release, tmp_path):
    grey_root = tmp_path / "grey"
    write_sequence(grey_root, "S010", "002", 4, emotion=7, facs={1: 2}, frame_size=(640, 480))
    (grey_root / "FACS").mkdir(exist_ok=True)
    rgb = CKPlusDataset(data_root=release)[7]
    grey = CKPlusDataset(data_root=grey_root)[3]
    assert Image.open(rgb.path).mode == "RGB"
    np.testing.assert_array_equal(rgb.image, grey.image)


def test_arrays_bulk_accessor(release):
    data = CKPlusDataset(data_root=release, protocol="all", cache=False)
    images, emotions = data.arrays()
    assert images.shape == (len(data), 64, 64) and images.dtype == np.float32
    assert emotions.dtype == np.int64
    assert emotions.tolist() == [-1 if e is None else e for e in data.emotions]
    np.testing.assert_array_equal(images[9], data[9].image)
    subset, sub_emotions = data.arrays([2, 0])
    np.testing.assert_array_equal(subset[1], images[0])
    assert sub_emotions.tolist() == [emotions[2], emotions[0]]
    numbers, matrix = data.au_matrix()
    assert 12 in numbers and matrix.shape == (len(data), len(numbers))


def test_crop_cache_is_reused_and_invalidated(release):
    first = CKPlusDataset(data_root=release)
    assert not first._decoded.any()
    images, _ = first.arrays()
    assert first.cache_path is not None and first.cache_path.is_file()
    second = CKPlusDataset(data_root=release)
    assert second.cache_path == first.cache_path
    assert second._decoded.all()  # nothing to decode
    np.testing.assert_array_equal(second.arrays()[0], images)
    # Changing a used file changes the key.
    landmarks = release / "Landmarks" / "S010" / "001" / "S010_001_00000005_landmarks.txt"
    landmarks.write_text(landmarks.read_text().replace("   ", "  ", 1))
    third = CKPlusDataset(data_root=release)
    assert third.cache_path != first.cache_path and not third._decoded.any()
    # A damaged cache file is rebuilt, not an error.
    first.cache_path.write_bytes(b"not an npz")
    fourth = CKPlusDataset(data_root=release)
    assert not fourth._decoded.any() and len(fourth) == 16
    uncached = CKPlusDataset(data_root=release, cache=False)
    assert uncached.cache_path is None


def test_kfold_is_subject_independent_and_deterministic(release):
    data = CKPlusDataset(data_root=release, protocol="all")
    folds = subject_kfold(data.subjects, k=3, seed=4)
    again = subject_kfold(data.subjects, k=3, seed=4)
    subjects = np.array(data.subjects)
    covered = np.concatenate([f.test for f in folds])
    assert sorted(covered.tolist()) == list(range(len(data)))
    for fold, other in zip(folds, again):
        assert fold.test.tolist() == other.test.tolist()
        assert not set(subjects[fold.test]) & set(subjects[fold.train])


# -- quirks and bad input ----------------------------------------------------------------------
def test_stray_files(release):
    (release / "cohn-kanade-images" / "S010" / "001" / "notes.txt").write_text("hello")
    (release / "cohn-kanade-images" / "S010" / "._S010_001_00000001.png").write_bytes(b"junk")
    data = CKPlusDataset(data_root=release)
    assert len(data) == 16
    assert data.skipped == []
    assert data.ignored == ["cohn-kanade-images/S010/001/notes.txt"]  # .DS_Store and ._* are silent


def test_67_row_landmarks_skip_that_frame(release, caplog):
    path = release / "Landmarks" / "S012" / "001" / "S012_001_00000005_landmarks.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:67]))
    with caplog.at_level("WARNING", logger="interp.datasets"):
        data = CKPlusDataset(data_root=release)
    assert len(data) == 15
    assert data.skipped == [{"path": "Landmarks/S012/001/S012_001_00000005_landmarks.txt",
                             "warning": "malformed-landmarks",
                             "reason": "malformed landmarks file: 67 landmark rows, expected 68"}]
    assert "S012_001_00000005_landmarks.txt" in caplog.text
    assert data.frames[-3:] == [1, 4, 6]
    with pytest.raises(DataError, match=r"S012_001_00000005_landmarks\.txt: malformed landmarks file"):
        CKPlusDataset(data_root=release, strict=True)


def test_truncated_png_is_skipped(release):
    path = release / "cohn-kanade-images" / "S010" / "002" / "S010_002_00000003.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    dataset = CKPlusDataset(data_root=release)
    assert len(dataset) == 15
    assert [s["path"] for s in dataset.skipped] == ["cohn-kanade-images/S010/002/S010_002_00000003.png"]
    assert "does not decode" in dataset.skipped[0]["reason"]
    dataset.arrays()  # every remaining frame decodes
    cached = CKPlusDataset(data_root=release)  # the cache remembers the bad frame
    assert len(cached) == 15 and cached.skipped == dataset.skipped
    with pytest.raises(DataError, match="S010_002_00000003.png"):
        CKPlusDataset(data_root=release, strict=True, cache=False)


def test_malformed_emotion_and_facs_skip_the_sequence(release):
    (release / "Emotion" / "S012" / "001" / "S012_001_00000006_emotion.txt").write_text("   happy\n")
    (release / "FACS" / "S010" / "002" / "S010_002_00000004_facs.txt").write_text("   1.0000000e+00\n")
    data = CKPlusDataset(data_root=release)
    assert sorted(set(data.sequences)) == ["S010_001", "S011_001"]
    reasons = {s["path"]: s["reason"] for s in data.skipped}
    assert reasons["Emotion/S012/001/S012_001_00000006_emotion.txt"].startswith("malformed emotion file: line 1 is not numeric")
    assert reasons["FACS/S010/002/S010_002_00000004_facs.txt"].startswith("malformed FACS file: line 1 has 1 value(s)")
    assert data.summary()["emotion_labelled"] == 2


def test_emotion_code_out_of_range(release):
    (release / "Emotion" / "S012" / "001" / "S012_001_00000006_emotion.txt").write_text("   9.0000000e+00\n")
    data = CKPlusDataset(data_root=release)
    assert data.skipped[0]["reason"] == "malformed emotion file: emotion code 9 is not an integer 0-7"


def test_missing_and_wrong_roots(tmp_path):
    with pytest.raises(UsageError, match="--data-root"):
        CKPlusDataset()
    with pytest.raises(DataError, match=r"data root .*nowhere does not exist"):
        CKPlusDataset(data_root=tmp_path / "nowhere")
    (tmp_path / "photos").mkdir()
    with pytest.raises(DataError, match=r"no cohn-kanade-images folder in .*photos") as info:
        CKPlusDataset(data_root=tmp_path / "photos")
    assert "--data-root" in info.value.hint
    write_release(tmp_path / "outer" / "CK+")
    with pytest.raises(DataError) as nested:
        CKPlusDataset(data_root=tmp_path / "outer")
    assert "did you mean --data-root" in nested.value.hint and "CK+" in nested.value.hint
    with pytest.raises(UsageError, match="unknown protocol 'apex'"):
        CKPlusDataset(data_root=tmp_path / "outer" / "CK+", protocol="apex")


def test_missing_landmarks_folder_is_named(release):
    import shutil

    shutil.rmtree(release / "Landmarks")
    with pytest.raises(DataError, match="no Landmarks folder in"):
        CKPlusDataset(data_root=release)


def test_registered_as_a_plugin(release):
    from interpret_core import get_dataset

    data = get_dataset("ckplus", data_root=str(release), size="32")
    assert isinstance(data, CKPlusDataset) and data[0].image.shape == (32, 32)


def test_empty_release_is_a_clear_error(tmp_path):
    for folder in ("cohn-kanade-images", "Landmarks", "Emotion"):
        (tmp_path / "empty" / folder).mkdir(parents=True)
    (tmp_path / "empty" / "cohn-kanade-images" / ".DS_Store").write_bytes(b"x")
    with pytest.raises(DataError, match="no sequences in .*cohn-kanade-images"):
        CKPlusDataset(data_root=tmp_path / "empty")


def test_peak_named_by_the_emotion_file_and_duplicate_label_files(release):
    # The emotion file names frame 5 of a 7-frame sequence: frames 6 and 7 are not used.
    folder = release / "Emotion" / "S011" / "001"
    (folder / "S011_001_00000007_emotion.txt").rename(folder / "S011_001_00000005_emotion.txt")
    data = CKPlusDataset(data_root=release)
    frames = [f for f, s in zip(data.frames, data.sequences) if s == "S011_001"]
    assert frames == [1, 3, 4, 5]
    # Two emotion files in one folder: the sequence is skipped, and says why.
    (folder / "S011_001_00000007_emotion.txt").write_text("   1.0000000e+00\n")
    data = CKPlusDataset(data_root=release)
    assert "S011_001" not in data.sequences
    assert data.skipped == [{"path": "Emotion/S011/001", "warning": "duplicate-label-file",
                             "reason": "2 emotion.txt files, expected one"}]


def test_frame_name_that_does_not_match_its_folder(release):
    src = release / "cohn-kanade-images" / "S010" / "001" / "S010_001_00000002.png"
    src.rename(src.with_name("S099_001_00000002.png"))
    data = CKPlusDataset(data_root=release)
    assert data.skipped == [{"path": "cohn-kanade-images/S010/001/S099_001_00000002.png",
                             "warning": "misnamed-frame",
                             "reason": "file name does not match its folder S010/001"}]
    assert len(data) == 16  # frame 2 is not used by the default protocol


def test_au_presence_counts_uncoded_intensity(release):
    data = CKPlusDataset(data_root=release)
    numbers, presence = data.au_presence([25, 12])
    _, intensity = data.au_matrix([25, 12])
    assert presence[3].tolist() == [True, True] and intensity[3].tolist() == [0, 4]
    assert presence[0].tolist() == [False, False]


def test_sixteen_bit_frames_read_like_eight_bit(release, tmp_path):
    path = release / "cohn-kanade-images" / "S010" / "001" / "S010_001_00000005.png"
    eight = CKPlusDataset(data_root=release, cache=False)[3].image
    grey = np.asarray(Image.open(path)).astype(np.uint16) * 257
    Image.fromarray(grey).save(path)
    assert Image.open(path).mode.startswith("I")
    np.testing.assert_array_equal(CKPlusDataset(data_root=release, cache=False)[3].image, eight)


def test_unknown_and_bad_options_are_usage_errors(release):
    with pytest.raises(UsageError, match="does not take option"):
        CKPlusDataset(data_root=release, bogus=1)
    with pytest.raises(UsageError, match="size must be between"):
        CKPlusDataset(data_root=release, size=2)
    with pytest.raises(UsageError, match="include_neutral must be true or false"):
        CKPlusDataset(data_root=release, include_neutral="maybe")
