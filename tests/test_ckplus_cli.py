"""``interp data inspect`` on CK+ trees and on SynthFACS; the reader on SynthFACS masks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from interpret_core import get_dataset
from interpret_core.cli import main
from interp_datasets.alignment import align_from_landmarks
from interp_datasets.ckplus import read_landmarks
from test_ckplus import write_release

REQUIRED_KEYS = {"subjects", "sequences", "emotion_labelled", "emotions", "aus", "images", "skipped"}


@pytest.fixture
def release(tmp_path):
    return write_release(tmp_path / "ckplus")


def _inspect(capsys, *args):
    code = main(["data", "inspect", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_inspect_json_has_the_documented_keys(release, capsys):
    code, out, err = _inspect(capsys, "--dataset", "ckplus", "--data-root", str(release), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert REQUIRED_KEYS <= set(summary)
    assert summary["subjects"] == 3 and summary["sequences"] == 6 and summary["emotion_labelled"] == 4
    assert summary["images"] == 16
    assert summary["emotions"]["surprise"] == 1
    assert summary["aus"]["12"] == 2 and all(isinstance(k, str) for k in summary["aus"])
    assert summary["skipped"] == []


def test_inspect_report_and_protocol_option(release, capsys):
    code, out, err = _inspect(capsys, "--dataset", "ckplus", "--data-root", str(release), "--protocol", "peak")
    assert code == 0, err
    assert "4 samples under the protocol" in out and "AU12" in out and "nothing skipped" in out
    assert "Traceback" not in err


def test_inspect_passes_data_set_options(release, capsys):
    code, out, err = _inspect(capsys, "--dataset", "ckplus", "--data-root", str(release), "--json",
                              "--option", "include_neutral=false", "--size", "32")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["images"] == 12 and summary["size"] == 32 and "neutral" not in summary["class_names"]
    code, out, err = _inspect(capsys, "--dataset", "ckplus", "--data-root", str(release), "--option", "colour=1")
    assert code == 2 and "does not take option(s) colour" in err


def test_inspect_lists_skipped_files_and_strict_fails(release, capsys):
    path = release / "Landmarks" / "S011" / "001" / "S011_001_00000007_landmarks.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:67]))
    png = release / "cohn-kanade-images" / "S012" / "001" / "S012_001_00000001.png"
    png.write_bytes(png.read_bytes()[:200])
    code, out, err = _inspect(capsys, "--dataset", "ckplus", "--data-root", str(release), "--json")
    assert code == 0
    skipped = json.loads(out)["skipped"]
    assert [s["path"] for s in skipped] == [
        "Landmarks/S011/001/S011_001_00000007_landmarks.txt",
        "cohn-kanade-images/S012/001/S012_001_00000001.png",
    ]
    assert json.loads(out)["images"] == 14
    assert "warning:" in err and "S011_001_00000007_landmarks.txt" in err
    code, out, err = _inspect(capsys, "--dataset", "ckplus", "--data-root", str(release), "--strict", "--json")
    assert code == 1 and out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[0].startswith("error: ") and "S011_001_00000007_landmarks.txt" in lines[0]
    assert "67 landmark rows" in lines[0]
    assert lines[1].startswith("hint: ") and len(lines) == 2


def test_inspect_bad_roots_are_one_line_errors(tmp_path, capsys):
    # A --data-root that names nothing is a usage error (exit 2) in every command.
    code, out, err = _inspect(capsys, "--dataset", "ckplus", "--data-root", str(tmp_path / "missing"))
    assert code == 2 and "no such folder" in err and "Traceback" not in err
    (tmp_path / "notck").mkdir()
    code, out, err = _inspect(capsys, "--dataset", "ckplus", "--data-root", str(tmp_path / "notck"))
    assert code == 1 and f"no cohn-kanade-images folder in {tmp_path / 'notck'}" in err
    code, out, err = _inspect(capsys, "--dataset", "ckplus")
    assert code == 2 and "--data-root" in err


# -- SynthFACS through the reader ----------------------------------------------------------
def test_inspect_synthfacs(synthfacs_root, capsys):
    code, out, err = _inspect(capsys, "--dataset", "synthfacs", "--data-root", str(synthfacs_root), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert REQUIRED_KEYS <= set(summary)
    assert summary["dataset"] == "synthfacs" and summary["subjects"] == 6
    assert summary["images"] == 4 * summary["emotion_labelled"]
    assert summary["au_masks"] == summary["images"] and summary["skipped"] == []


def _centroid(mask):
    return np.argwhere(mask).mean(axis=0)[::-1]  # (x, y)


def test_synthfacs_masks_move_with_the_face(synthfacs_root):
    """Mask centroids mapped as points agree with the warped masks; AU masks sit where FACS puts them."""
    data = get_dataset("synthfacs", data_root=synthfacs_root, cache=False)
    checked = 0
    raw_lip_corners, crop_lip_corners = [], []
    for index in range(len(data)):
        sample = data[index]
        assert sample.au_masks is not None
        if not sample.au_masks:
            continue
        stem = sample.path.rsplit("/", 1)[1][: -len(".png")]
        subject, seq = sample.sequence.split("_")
        frame_landmarks = read_landmarks(synthfacs_root / "Landmarks" / subject / seq / f"{stem}_landmarks.txt")
        alignment = align_from_landmarks(frame_landmarks, data.size)
        raw_lip_corners.append(frame_landmarks[[48, 54]].mean(0))
        crop_lip_corners.append(sample.landmarks[[48, 54]].mean(0))
        with np.load(synthfacs_root / "AUMasks" / subject / seq / f"{stem}_aumasks.npz") as raw:
            for key in raw.files:
                au = int(key[2:])
                frame_mask = raw[key]
                crop_mask = sample.au_masks[au]
                area = frame_mask.sum() * alignment.scale**2
                if area < 100 or not 0.9 * area <= crop_mask.sum() <= 1.1 * area:
                    continue  # thin or small masks have unstable centroids; some lie partly outside the crop
                expected = alignment.points(_centroid(frame_mask)[None])[0]
                np.testing.assert_allclose(_centroid(crop_mask), expected, atol=1.25)
                checked += 1
                eye_line = sample.landmarks[36:48, 1].mean()
                if au in (1, 2):
                    assert _centroid(crop_mask)[1] < eye_line
                if au in (15, 17, 25, 26):
                    assert _centroid(crop_mask)[1] > sample.landmarks[30, 1]
    assert checked > 30
    # Head-pose jitter (roll, scale, translation) moves the face in the frame, not in the crop:
    # in inter-ocular units the mouth stays centred under the eyes.
    crop_eye_distance = 0.4 * data.size
    crop_x = np.asarray(crop_lip_corners)[:, 0]
    assert np.abs(crop_x - (data.size / 2 - 0.5)).max() / crop_eye_distance < 0.1
    assert np.ptp(np.asarray(raw_lip_corners)[:, 0]) > 2.0  # while in the frames the face really moves
