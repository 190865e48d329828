"""SynthFACS: determinism, the CK+ layout and formats, ground-truth masks, caching, CLI."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from interp_datasets.synthfacs import SynthFACSDataset, default_root, ensure_default, generate
from interp_datasets.synthfacs import generator as gen
from interp_datasets.synthfacs.aus import SEQUENCE_EMOTIONS, ckplus_table
from interp_datasets.synthfacs.face import Identity
from interpret_core.api.errors import UsageError

ENOTATION = r"\s+-?\d\.\d{7}e[+-]\d{2}"
LANDMARK_ROW = re.compile(rf"^{ENOTATION}{ENOTATION}$")
EMOTION_ROW = re.compile(rf"^{ENOTATION}$")


def _digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (the manifest's timing-free content included)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# -- determinism --------------------------------------------------------------------------------
def test_same_seed_gives_identical_bytes_whatever_the_workers(tmp_path):
    first = generate(tmp_path / "a", subjects=1, seed=7, workers=1)
    second = generate(tmp_path / "b", subjects=1, seed=7, workers=2)
    assert first["frames"] == second["frames"] > 0
    a, b = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert a == b
    assert any(name.endswith(".png") for name in a) and any(name.endswith(".npz") for name in a)


def test_different_seed_gives_different_data(tmp_path, synthfacs_root):
    generate(tmp_path / "c", subjects=1, seed=1, workers=1)
    one = tmp_path / "c" / "cohn-kanade-images" / "S001" / "001" / "S001_001_00000001.png"
    zero = synthfacs_root / "cohn-kanade-images" / "S001" / "001" / "S001_001_00000001.png"
    assert one.read_bytes() != zero.read_bytes()


# -- layout and formats -------------------------------------------------------------------------
def test_layout_and_file_formats_follow_ckplus(synthfacs_root):
    root = synthfacs_root
    manifest = json.loads((root / gen.MANIFEST).read_text())
    assert manifest["seed"] == 0 and manifest["subjects"] == 6 and manifest["version"] == gen.GENERATOR_VERSION
    assert not (root / gen.PARTIAL_MARKER).exists()
    valid_aus = set(ckplus_table()["action_units"])
    sequences = sorted((root / "cohn-kanade-images").glob("S*/*"))
    assert len(sequences) == manifest["sequences"]
    assert {p.parent.name for p in sequences} == {f"S{i:03d}" for i in range(1, 7)}
    emotions_seen = set()
    for folder in sequences:
        subject, seq = folder.parent.name, folder.name
        frames = sorted(folder.glob("*.png"))
        assert gen.FRAMES_PER_SEQUENCE[0] <= len(frames) <= gen.FRAMES_PER_SEQUENCE[1]
        assert [f.name for f in frames] == [f"{subject}_{seq}_{i:08d}.png" for i in range(1, len(frames) + 1)]
        for frame in frames:
            lines = (root / "Landmarks" / subject / seq / f"{frame.stem}_landmarks.txt").read_text().splitlines()
            assert len(lines) == 68 and all(LANDMARK_ROW.match(line) for line in lines)
        last = frames[-1].stem
        assert [p.name for p in (root / "FACS" / subject / seq).iterdir()] == [f"{last}_facs.txt"]
        assert [p.name for p in (root / "Emotion" / subject / seq).iterdir()] == [f"{last}_emotion.txt"]
        (line,) = (root / "Emotion" / subject / seq / f"{last}_emotion.txt").read_text().splitlines()
        assert EMOTION_ROW.match(line)
        code = float(line)
        assert code == int(code) and 1 <= code <= 7
        emotions_seen.add(int(code))
        facs = [row.split() for row in (root / "FACS" / subject / seq / f"{last}_facs.txt").read_text().splitlines()]
        assert facs and all(LANDMARK_ROW.match(row) for row in (root / "FACS" / subject / seq / f"{last}_facs.txt").read_text().splitlines())
        for au, level in ((float(a), float(b)) for a, b in facs):
            assert int(au) in valid_aus and level in (1.0, 2.0, 3.0, 4.0, 5.0)
        # The neutral first frame has no AU masks; the apex frame has one per coded AU.
        assert not (root / "AUMasks" / subject / seq / f"{frames[0].stem}_aumasks.npz").exists()
        with np.load(root / "AUMasks" / subject / seq / f"{last}_aumasks.npz") as masks:
            assert sorted(masks.files) == sorted(f"AU{int(float(a))}" for a, _ in facs)
            for key in masks.files:
                assert masks[key].dtype == bool and masks[key].shape == (245, 320)
    assert len(emotions_seen) >= 5  # six subjects already show most emotions


def test_every_subject_shows_several_distinct_emotions():
    plans = gen.plan_release(40, seed=0)
    by_subject: dict[str, list[str]] = {}
    for plan in plans:
        by_subject.setdefault(plan.subject, []).append(plan.emotion)
    for emotions in by_subject.values():
        assert len(emotions) >= gen.SEQUENCES_PER_SUBJECT[0]
        assert len(set(emotions)) == len(emotions)
    counts = {name: sum(p.emotion == name for p in plans) for name in SEQUENCE_EMOTIONS}
    assert all(count > 0 for count in counts.values())
    # Frequencies follow CK+'s order roughly: surprise is more common than contempt.
    assert counts["surprise"] > counts["contempt"]


def test_reader_gives_neutral_first_frames_and_masks_of_the_coded_aus(synthfacs_root):
    dataset = SynthFACSDataset(data_root=synthfacs_root, cache=False)
    assert dataset.name == "synthfacs" and dataset.has_au_masks
    neutral = dataset.class_names.index("neutral")
    seen_apex = 0
    for index in range(0, len(dataset), 3):
        sample = dataset[index]
        if sample.emotion == neutral:
            assert sample.frame == 1 and sample.aus == {} and sample.au_masks == {}
        else:
            seen_apex += 1
            assert sample.au_masks is not None and set(sample.au_masks) == set(sample.aus)
            assert all(mask.shape == sample.image.shape for mask in sample.au_masks.values())
    assert seen_apex > 0


# -- masks lie where FACS puts them -------------------------------------------------------------
def _single_au_frame(au: int, sides: tuple = (), subject_seed: int = 3):
    identity = Identity.sample(np.random.default_rng(subject_seed))
    plan = gen.SequencePlan(
        subject="S001", number=1, identity=identity, emotion="happy", apex=((au, 5),),
        sides=sides, frames=6, seed=(subject_seed, 1, 1, 2),
    )
    frames = list(gen.sequence_frames(plan))
    (_, neutral, _), (image, landmarks, masks) = frames[0], frames[-1]
    return image, neutral, masks[au]


def _face_frame(landmarks: np.ndarray, mask: np.ndarray):
    """Mask pixels in face coordinates: origin between the eyes, x along the eye line, unit = IOD."""
    left, right = landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)
    iod = float(np.linalg.norm(right - left))
    e = (right - left) / iod
    n = np.array([-e[1], e[0]])
    mid = (left + right) / 2
    ys, xs = np.nonzero(mask)
    rel = np.stack([xs, ys], axis=1) - mid
    pix = np.stack([rel @ e, rel @ n], axis=1) / iod
    marks = np.stack([(landmarks - mid) @ e, (landmarks - mid) @ n], axis=1) / iod
    return pix, marks


@pytest.mark.parametrize("au", [1, 2, 4, 5, 6, 7, 9, 10, 12, 15, 17, 20, 23, 24, 25, 26, 27])
def test_mask_lies_where_facs_puts_the_au(au):
    # Anchors are the neutral first frame's landmarks: where the face was before the AU.
    _, landmarks, mask = _single_au_frame(au)
    assert mask.sum() > 20, f"AU{au} changes almost nothing"
    pix, marks = _face_frame(landmarks, mask)
    cx, cy = pix.mean(axis=0)
    brow_inner_y = marks[[19, 20, 21, 22, 23, 24], 1].mean()
    eye_y = marks[36:48, 1].mean()
    mouth_y = marks[48:60, 1].mean()
    corner_x = np.abs(marks[[48, 54], 0]).mean()
    far = lambda threshold: float(np.mean(np.abs(pix[:, 0]) > threshold))  # noqa: E731
    if au == 1:  # above the inner brows, in the middle of the face
        assert cy < brow_inner_y and abs(cx) < 0.15 and np.abs(pix[:, 0]).mean() < 0.3
        assert np.any((np.abs(pix[:, 0]) < 0.1) & (pix[:, 1] < brow_inner_y - 0.15))
    elif au == 2:  # above the outer brows
        assert cy < eye_y and np.abs(pix[:, 0]).mean() > 0.4 and far(0.35) > 0.6
        outer = marks[[17, 26]]
        assert all((np.linalg.norm(pix - o, axis=1) < 0.1).any() for o in outer)
    elif au == 4:  # the brows and between them
        assert brow_inner_y - 0.25 < cy < eye_y and abs(cx) < 0.15
        assert np.any((np.abs(pix[:, 0]) < 0.08) & (pix[:, 1] < eye_y))  # the glabella itself
    elif au in (5, 7):  # the eyelids
        assert abs(cy - eye_y) < 0.2 and far(0.25) > 0.8
    elif au == 6:  # below the eyes: cheeks, lower lids, crow's feet
        assert eye_y < cy < mouth_y and far(0.3) > 0.7
    elif au == 9:  # the nose
        nose_top, nose_bottom = marks[27, 1], marks[33, 1]
        assert nose_top - 0.2 < cy < nose_bottom + 0.3 and abs(cx) < 0.15
    elif au == 10:  # the upper lip and the folds beside the nose
        assert marks[33, 1] < cy < mouth_y + 0.1
    elif au in (12, 15, 20):  # the lip corners (AU12 also deepens the nasolabial folds)
        assert eye_y < cy < marks[8, 1] and far(0.45 * corner_x) > 0.6
        assert np.abs(pix[:, 1] - mouth_y).mean() < 0.45
        for corner in (48, 54):
            near = np.linalg.norm(pix - marks[corner], axis=1) < 0.1
            assert near.any(), f"AU{au} mask misses lip corner {corner}"
    elif au == 17:  # the chin, below the lower lip
        assert cy > marks[57, 1] - 0.05 and abs(cx) < 0.15
    elif au in (23, 24, 25, 26, 27):  # the lips / the mouth
        assert abs(cx) < 0.15 and marks[51, 1] - 0.2 < cy < marks[8, 1]
        centre = (marks[62] + marks[66]) / 2
        assert (np.linalg.norm(pix - centre, axis=1) < 0.15).any()


def test_contempt_is_unilateral():
    plans = [p for p in gen.plan_release(30, seed=0) if p.emotion == "contempt" and any(au in (12, 14) for au, _ in p.apex)]
    assert plans and all(p.sides for p in plans)
    assert {p.sides[0][1] for p in plans} == {0.0, 1.0}  # both sides occur across the release
    for left in (1.0, 0.0):
        _, landmarks, mask = _single_au_frame(14, sides=((14, left, 1.0 - left),))
        pix, marks = _face_frame(landmarks, mask)
        sign = -1.0 if left else 1.0  # the side that acts
        acting, still = (48, 54) if left else (54, 48)
        assert float(np.mean(sign * pix[:, 0] > 0)) > 0.8
        # The other lip corner does not move: (almost) nothing changes on that side.
        assert float(np.mean(sign * pix[:, 0] < -0.3)) < 0.03
        assert (np.linalg.norm(pix - marks[acting], axis=1) < 0.15).sum() > 5 * max(
            1, int((np.linalg.norm(pix - marks[still], axis=1) < 0.15).sum()))


def test_mask_threshold_is_the_documented_change():
    """A mask pixel is exactly one whose grey level changes by more than MASK_THRESHOLD."""
    identity = Identity.sample(np.random.default_rng(5))
    plan = gen.SequencePlan("S001", 1, identity, "surprise", ((1, 4), (2, 4)), (), 6, (5, 1, 1, 2))
    *_, (image, _, masks) = gen.sequence_frames(plan)
    assert set(masks) == {1, 2} and masks[1].any() and masks[2].any()
    # AU1 and AU2 overlap in the middle of the brows but are not the same region.
    assert (masks[1] & masks[2]).any() and (masks[1] != masks[2]).any()


# -- output folder, resume, cache ------------------------------------------------------------
def test_resume_after_interruption_restores_identical_files(tmp_path):
    out = tmp_path / "r"
    generate(out, subjects=1, seed=2, workers=1)
    before = _digest(out)
    # Simulate an interruption: the manifest and the last sequences are missing.
    (out / gen.MANIFEST).unlink()
    (out / gen.PARTIAL_MARKER).write_text(json.dumps(gen._parameters(1, 2)))
    victim = sorted((out / "Emotion").rglob("*_emotion.txt"))[-1]
    victim.unlink()
    next(victim.parent.parent.parent.parent.joinpath("cohn-kanade-images", victim.parent.parent.name, victim.parent.name).glob("*.png")).unlink()
    generate(out, subjects=1, seed=2, workers=1)
    assert _digest(out) == before


def test_refuses_to_mix_releases(tmp_path):
    out = tmp_path / "m"
    generate(out, subjects=1, seed=0, workers=1)
    with pytest.raises(UsageError, match="other settings"):
        generate(out, subjects=1, seed=1)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty"):
        generate(other, subjects=1)
    with pytest.raises(UsageError, match="subjects"):
        generate(tmp_path / "z", subjects=0)


def test_default_root_follows_interp_home_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERP_HOME", str(tmp_path / "home"))
    assert default_root() == tmp_path / "home" / "datasets" / f"synthfacs-v{gen.GENERATOR_VERSION}-s0"
    monkeypatch.delenv("INTERP_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_root() == tmp_path / "xdg" / "interp" / "datasets" / f"synthfacs-v{gen.GENERATOR_VERSION}-s0"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert default_root() == tmp_path / "user" / ".cache" / "interp" / "datasets" / f"synthfacs-v{gen.GENERATOR_VERSION}-s0"


def test_ensure_default_generates_once_then_reuses(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERP_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(gen, "DEFAULT_SUBJECTS", 1)
    calls = []
    root = ensure_default(progress=lambda done, total: calls.append((done, total)))
    assert root == default_root() and (root / gen.MANIFEST).is_file()
    assert calls and calls[-1][0] == calls[-1][1]
    assert not root.with_name(root.name + ".partial").exists()
    stamp = (root / gen.MANIFEST).stat().st_mtime_ns
    calls.clear()
    assert ensure_default(progress=lambda done, total: calls.append(done)) == root
    assert calls == [] and (root / gen.MANIFEST).stat().st_mtime_ns == stamp
    # The plugin with no data_root reads that default release.
    from interpret_core import get_dataset

    dataset = get_dataset("synthfacs", cache=False)
    assert dataset.root == root and len(dataset) > 0


# -- commands -----------------------------------------------------------------------------------
def test_cli_generate_prints_a_json_summary(tmp_path, capsys):
    from interpret_core.cli import main

    out = tmp_path / "cli"
    assert main(["data", "generate", "--dataset", "synthfacs", "--out", str(out), "--subjects", "1", "--seed", "4", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["subjects"] == 1 and summary["root"] == str(out)
    assert summary["frames"] == len(list(out.rglob("*.png"))) and summary["sequences"] >= 3
    assert summary["seconds"] >= 0


def test_cli_generate_errors(tmp_path, capsys):
    from interpret_core.cli import main

    assert main(["data", "generate", "--dataset", "no-such-set", "--out", str(tmp_path / "x")]) == 2
    assert "unknown dataset" in capsys.readouterr().err
    assert main(["data", "generate", "--dataset", "ckplus", "--out", str(tmp_path / "x")]) == 2
    assert "cannot be generated" in capsys.readouterr().err
    taken = tmp_path / "file.txt"
    taken.write_text("not a folder")
    assert main(["data", "generate", "--out", str(taken), "--subjects", "1"]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["data", "generate", "--out", str(tmp_path / "y"), "--subjects", "0"]) == 2
    assert "subjects" in capsys.readouterr().err


def test_cli_preview_writes_a_grid_with_masks(tmp_path, capsys, synthfacs_root):
    from PIL import Image

    from interpret_core.cli import main

    out = tmp_path / "grid.png"
    code = main(["data", "preview", "--dataset", "synthfacs", "--data-root", str(synthfacs_root),
                 "--count", "8", "--out", str(out), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    with Image.open(out) as picture:
        assert picture.size == (result["width"], result["height"])
        assert picture.width >= 8 * 64 * 2 and picture.height >= 64 * 4
        colours = np.asarray(picture.convert("RGB")).reshape(-1, 3)
    assert len(result["samples"]) == 8 and result["masks"] == "ground truth"
    assert len({row["emotion"] for row in result["samples"]}) == 8  # spread over the classes
    # Masks and landmarks are drawn in colour on grey faces.
    assert (np.ptp(colours.astype(int), axis=1) > 60).mean() > 0.01
    assert main(["data", "preview", "--dataset", "synthfacs", "--data-root", str(synthfacs_root), "--out", str(tmp_path / "grid.jpg")]) == 2
    assert "png" in capsys.readouterr().err
    assert main(["data", "preview", "--dataset", "nope", "--out", str(out)]) == 2


def test_cli_preview_of_ckplus_draws_landmark_regions(tmp_path, capsys, synthfacs_root):
    """A release without ground truth (as real CK+) is previewed with the landmark AU regions."""
    import shutil

    from interpret_core.cli import main

    root = tmp_path / "ck"
    shutil.copytree(synthfacs_root, root, ignore=shutil.ignore_patterns("AUMasks", gen.MANIFEST))
    out = tmp_path / "ck.png"
    assert main(["data", "preview", "--dataset", "ckplus", "--data-root", str(root), "--count", "4",
                 "--option", "cache=false", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert out.is_file() and result["dataset"] == "ckplus" and result["masks"] == "landmark regions"
    assert any(row["masks"] for row in result["samples"])  # apex samples carry regions
