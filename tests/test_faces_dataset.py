"""The ``faces`` data set: dlib on real and synthetic photos, against known landmarks; skips with named warnings; the cache."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from PIL import Image

from interpret_core import DataError, get_dataset

#: The astronaut photo (scikit-image), annotated by hand on a 5x enlargement
#: (pixel-centre coordinates, about +-2 px): pupils, nose tip (landmark 30),
#: mouth corners (48, 54).
ASTRONAUT_TRUTH = {
    "left_eye": (202.0, 101.5),
    "right_eye": (245.0, 103.0),
    30: (225.0, 127.0),
    48: (203.0, 140.0),
    54: (245.0, 141.0),
}
#: Stated tolerances, in inter-ocular distances: each hand-annotated point on
#: the astronaut, and the median over 68 points on SynthFACS frames (dlib's
#: 300-W scheme and SynthFACS's differ in how they place the jaw line and brows).
ASTRONAUT_TOLERANCE = 0.10
SYNTHFACS_MEDIAN_TOLERANCE = 0.15


@pytest.fixture(scope="module")
def astronaut_folder(tmp_path_factory):
    from skimage import data

    folder = tmp_path_factory.mktemp("astronaut")
    Image.fromarray(data.astronaut()).save(folder / "astronaut.png")
    return folder


def test_astronaut_landmarks_match_the_hand_annotation(astronaut_folder):
    from interp_datasets.alignment import eye_centres

    faces = get_dataset("faces", data_root=str(astronaut_folder), cache=False)
    assert len(faces) == 1 and faces.skipped == []
    points = faces.source_landmarks(0)
    left, right = eye_centres(points)
    truth = ASTRONAUT_TRUTH
    distance = np.hypot(truth["right_eye"][0] - truth["left_eye"][0], truth["right_eye"][1] - truth["left_eye"][1])
    found = {"left_eye": left, "right_eye": right, 30: points[30], 48: points[48], 54: points[54]}
    errors = {k: float(np.hypot(*(np.asarray(found[k]) - truth[k])) / distance) for k in truth}
    assert max(errors.values()) < ASTRONAUT_TOLERANCE, errors
    sample = faces[0]
    # aligned as the CK+ reader aligns: eyes level at 0.30 / 0.70 of the side, y = 0.32
    crop_left, crop_right = eye_centres(sample.landmarks)
    np.testing.assert_allclose(crop_left, [0.30 * 64 - 0.5, 0.32 * 64 - 0.5], atol=1e-3)
    np.testing.assert_allclose(crop_right, [0.70 * 64 - 0.5, 0.32 * 64 - 0.5], atol=1e-3)
    assert sample.image.shape == (64, 64) and sample.emotion is None


def test_synthfacs_frames_give_their_true_landmarks(synthfacs_root, tmp_path):
    from interp_datasets.alignment import eye_centres
    from interp_datasets.ckplus import read_landmarks

    frames = sorted((synthfacs_root / "cohn-kanade-images").rglob("*.png"))[::7][:12]
    assert len(frames) == 12
    for frame in frames:
        shutil.copy(frame, tmp_path / frame.name)
    faces = get_dataset("faces", data_root=str(tmp_path), cache=False)
    assert len(faces) == len(frames), faces.skipped  # every synthetic face is found
    errors = []
    for index, name in enumerate(faces.files):
        frame = next(f for f in frames if f.name == name)
        truth = read_landmarks(str(frame).replace("cohn-kanade-images", "Landmarks")[: -len(".png")] + "_landmarks.txt")
        left, right = eye_centres(truth)
        errors.append(np.hypot(*(faces.source_landmarks(index) - truth).T) / np.hypot(*(right - left)))
    assert float(np.median(np.concatenate(errors))) < SYNTHFACS_MEDIAN_TOLERANCE


def test_bad_files_are_skipped_with_named_warnings(astronaut_folder, tmp_path, caplog):
    (tmp_path / "notes.txt").write_text("not a picture")
    Image.new("L", (200, 160), 128).save(tmp_path / "blank.png")  # no face in it
    whole = (astronaut_folder / "astronaut.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(whole[: len(whole) // 2])
    Image.new("L", (20, 20), 0).save(tmp_path / "thumb.png")
    shutil.copy(astronaut_folder / "astronaut.png", tmp_path / "zz_astronaut.png")
    with caplog.at_level(logging.WARNING, logger="interp.datasets"):
        faces = get_dataset("faces", data_root=str(tmp_path), cache=False)
    assert faces.files == ["zz_astronaut.png"]
    warnings = {row["path"]: row["warning"] for row in faces.skipped}
    assert warnings == {"notes.txt": "not-an-image", "blank.png": "no-face", "truncated.png": "undecodable-image",
                        "thumb.png": "tiny-image"}
    for name, warning in warnings.items():
        assert any(name in record.getMessage() and warning in record.getMessage() for record in caplog.records)
    with pytest.raises(DataError, match=r"blank.png: .*\(no-face\)"):
        get_dataset("faces", data_root=str(tmp_path), cache=False, strict=True)


def test_several_faces_keep_the_largest_or_skip(astronaut_folder, tmp_path):
    from skimage import data

    photo = Image.fromarray(data.astronaut()).convert("L")
    # The astronaut beside herself at half size: two faces, the larger one on the left.
    canvas = Image.new("L", (512 + 256, 512), 128)
    canvas.paste(photo, (0, 0))
    canvas.paste(photo.resize((256, 256)), (512, 128))
    canvas.save(tmp_path / "two.png")
    faces = get_dataset("faces", data_root=str(tmp_path), cache=False)
    assert len(faces) == 1 and faces.notes[0]["warning"] == "several-faces"
    assert int(faces.notes[0]["reason"].split()[0]) >= 2
    assert faces.source_landmarks(0)[:, 0].max() < 512  # the full-size face
    skipped = get_dataset("faces", data_root=str(tmp_path), cache=False, several_faces="skip")
    assert len(skipped) == 0 and skipped.skipped[0]["warning"] == "several-faces"


def test_labels_csv_and_the_cache(astronaut_folder, tmp_path):
    shutil.copy(astronaut_folder / "astronaut.png", tmp_path / "a.png")
    (tmp_path / "labels.csv").write_text("file,emotion,subject,AU6,AU12,AU4\na.png,happiness,eileen,3,x,0\nmissing.png,sad,,,,\n")
    first = get_dataset("faces", data_root=str(tmp_path))
    sample = first[0]
    assert first.class_names[sample.emotion] == "happy" and sample.subject == "eileen"
    assert sample.aus == {6: 3, 12: 0} and set(sample.au_regions) == {6, 12}
    assert any(n["path"] == "missing.png" and n["warning"] == "label-without-photo" for n in first.notes)
    again = get_dataset("faces", data_root=str(tmp_path))
    assert again.cache_hits == 1 and first.cache_hits == 0
    np.testing.assert_array_equal(again[0].image, sample.image)
    # the key is the content: a changed file is detected afresh
    Image.open(tmp_path / "a.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "a.png")
    changed = get_dataset("faces", data_root=str(tmp_path))
    assert changed.cache_hits == 0
    assert not np.array_equal(changed.source_landmarks(0), again.source_landmarks(0))


def test_a_missing_extra_says_how_to_install(monkeypatch, astronaut_folder):
    import sys

    from interp_datasets.faces import detect
    from interpret_core import CapabilityError

    monkeypatch.setitem(sys.modules, "dlib", None)
    monkeypatch.setattr(detect.FaceDetector, "_shared", {})
    with pytest.raises(CapabilityError) as info:
        get_dataset("faces", data_root=str(astronaut_folder), cache=False)
    assert "interp[faces]" in info.value.hint
