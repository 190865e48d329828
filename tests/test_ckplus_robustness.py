"""The CK+ reader meets broken trees as a user would: it skips, names why, and ``--strict`` fails.

Each test builds a small release on disk (``write_release``), breaks one thing
the way real copies break (a symlink loop, a folder without permission, a name
that is not UTF-8, absurd landmarks, a PNG whose checksums are valid but whose
pixels are not, a 144-megapixel frame, a FACS file with a duplicate or unknown
AU), runs ``interp data inspect`` and checks the exit code, the first line of
stderr, the ``skipped`` list and what is on disk afterwards.
"""

from __future__ import annotations

import ctypes
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from interpret_core.cli import main
from interp_datasets.ckplus import WARNINGS, CKPlusDataset
from test_ckplus import write_release

FULL = 16  # samples of write_release under the default protocol (4 labelled sequences x 4 frames)


@pytest.fixture
def release(tmp_path):
    return write_release(tmp_path / "ckplus")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh INTERP_HOME per test, so the crop cache it leaves can be checked."""
    path = tmp_path / "interp-home"
    monkeypatch.setenv("INTERP_HOME", str(path))
    return path


def _inspect(capsys, root, *flags):
    code = main(["data", "inspect", "--dataset", "ckplus", "--data-root", str(root), "--json", *flags])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    return code, captured.out, lines


def _cache_files(home: Path) -> list[str]:
    folder = home / "crops"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _assert_skipped_and_cached(capsys, root, home, path, warning, reason_part, images):
    """inspect exits 0, warns first about ``path``, lists it under ``skipped`` and caches ``images`` crops."""
    code, out, err = _inspect(capsys, root)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["images"] == images
    assert [(s["path"], s["warning"]) for s in summary["skipped"]] == [(path, warning)]
    assert reason_part in summary["skipped"][0]["reason"]
    assert err[0] == f"warning: ckplus: skipped {path}: {summary['skipped'][0]['reason']} ({warning})"
    assert "Traceback" not in "\n".join(err) and "report it" not in "\n".join(err)
    files = _cache_files(home)
    assert len(files) == 1 and files[0].startswith("ckplus-64-") and files[0].endswith(".npz"), files
    with np.load(home / "crops" / files[0]) as cached:
        assert cached["images"].shape == (images, 64, 64)
    return summary


def _assert_strict_fails(capsys, root, home, path, warning):
    """--strict exits 1 on the first problem, names the file, and writes no crop cache."""
    for stale in (home / "crops").glob("*") if (home / "crops").is_dir() else []:
        stale.unlink()
    code, out, err = _inspect(capsys, root, "--strict")
    assert code == 1 and out == ""
    assert err[0].startswith(f"error: {root / path}: ") and err[0].endswith(f"({warning})"), err
    assert err[1].startswith("hint: ") and len(err) == 2
    assert _cache_files(home) == []


# -- symbolic link loops -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "link, images",
    [
        ("cohn-kanade-images/S010/004", FULL),  # a sequence folder that points at itself
        ("cohn-kanade-images/S010/001/S010_001_00000009.png", FULL),  # a frame that points at itself
        ("Landmarks/S010/001/S010_001_00000005_landmarks.txt", FULL - 1),  # the peak frame's landmarks
        ("Emotion/S010/001", FULL - 4),  # the emotion folder of a labelled sequence
    ],
)
def test_symlink_loop_is_skipped_with_its_name(release, home, capsys, link, images):
    target = release / link
    if target.is_dir():
        import shutil

        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target.name, target)  # a link to itself: "Too many levels of symbolic links"
    what = "landmarks file" if link.startswith("Landmarks") else "folder" if link.startswith("Emotion") else "path"
    _assert_skipped_and_cached(capsys, release, home, link, "symlink-loop",
                               f"{what} cannot be read (Too many levels of symbolic links)", images)
    assert os.path.islink(target)  # the reader leaves the user's tree as it was
    _assert_strict_fails(capsys, release, home, link, "symlink-loop")


# -- a folder without permission (a real EACCES, also when the tests run as root) --------------
def _without_dac_override() -> None:
    """In the child before exec: drop root's permission bypass (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: also holds after exec
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _run_cli(args, home, as_root_without_bypass):
    env = {key: value for key, value in os.environ.items() if key != "INTERP_DEBUG"}
    env.update(INTERP_HOME=str(home), INTERP_NO_PROGRESS="1")
    return subprocess.run(
        [sys.executable, "-c", "from interpret_core.cli import run; run()", *args],
        capture_output=True, text=True, env=env, timeout=120,
        preexec_fn=_without_dac_override if as_root_without_bypass else None,
    )


@pytest.mark.parametrize(
    "folder, images",
    [("cohn-kanade-images/S011", FULL - 4), ("Emotion/S012/001", FULL - 4), ("Landmarks/S010/002", FULL - 4)],
)
def test_unreadable_folder_is_skipped(release, tmp_path, folder, images):
    home = tmp_path / "interp-home"
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if as_root:
        probe = subprocess.run([sys.executable, "-c", "pass"], preexec_fn=_without_dac_override, capture_output=True)
        if probe.returncode != 0:
            pytest.skip("running as root without CAP_SETPCAP: cannot make a folder unreadable")
    locked = release / folder
    os.chmod(locked, 0)
    try:
        args = ["data", "inspect", "--dataset", "ckplus", "--data-root", str(release), "--json"]
        result = _run_cli(args, home, as_root)
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        first = result.stderr.splitlines()[0]
        if folder.startswith("Landmarks"):  # not listed, opened file by file: each frame is skipped
            expected = [f"Landmarks/S010/002/S010_002_{n:08d}_landmarks.txt" for n in (1, 2, 3, 4)]
            reason = "landmarks file cannot be read (Permission denied)"
        else:
            expected = [folder]
            reason = "folder cannot be read (Permission denied)"
        assert summary["skipped"] == [{"path": p, "warning": "unreadable", "reason": reason} for p in expected]
        assert first == f"warning: ckplus: skipped {expected[0]}: {reason} (unreadable)"
        assert summary["images"] == images
        assert len(_cache_files(home)) == 1
        strict = _run_cli(args + ["--strict"], tmp_path / "strict-home", as_root)
        assert strict.returncode == 1 and strict.stdout == ""
        assert strict.stderr.splitlines()[0] == f"error: {release / expected[0]}: {reason} (unreadable)"
        assert not (tmp_path / "strict-home" / "crops").exists()
    finally:
        os.chmod(locked, 0o755)


# -- names that are not UTF-8 -------------------------------------------------------------------
def test_label_file_name_that_is_not_utf8_skips_its_sequence(release, home, capsys):
    folder = os.fsencode(release / "Emotion" / "S010" / "001")
    try:
        os.rename(folder + b"/S010_001_00000005_emotion.txt", folder + b"/S010_001_00000005\xff_emotion.txt")
    except (OSError, UnicodeError):
        pytest.skip("this file system does not store names that are not UTF-8")
    shown = "Emotion/S010/001/S010_001_00000005\\xff_emotion.txt"
    summary = _assert_skipped_and_cached(capsys, release, home, shown, "non-utf8-name", "not valid UTF-8", FULL - 4)
    assert "S010_001" not in {s for s in CKPlusDataset(data_root=release, cache=False).sequences}
    assert summary["skipped"][0]["path"].isascii()
    _assert_strict_fails(capsys, release, home, shown, "non-utf8-name")


# -- absurd numbers -------------------------------------------------------------------------------
def test_landmark_of_1e12_skips_the_frame(release, home, capsys):
    path = release / "Landmarks" / "S010" / "001" / "S010_001_00000005_landmarks.txt"
    rows = path.read_text().splitlines()
    rows[36] = "   1.0000000e+12   2.0000000e+02"
    path.write_text("\n".join(rows) + "\n")
    relative = "Landmarks/S010/001/S010_001_00000005_landmarks.txt"
    _assert_skipped_and_cached(capsys, release, home, relative, "malformed-landmarks",
                               "landmark 36 has coordinate 1e+12, outside +-100000 pixels", FULL - 1)
    _assert_strict_fails(capsys, release, home, relative, "malformed-landmarks")


def test_report_names_the_warning(release, home, capsys):
    path = release / "Landmarks" / "S010" / "001" / "S010_001_00000005_landmarks.txt"
    path.write_text(path.read_text().replace("e+02", "e+12", 1))
    code = main(["data", "inspect", "--dataset", "ckplus", "--data-root", str(release)])
    out = capsys.readouterr().out
    assert code == 0 and "skipped (1)" in out and "malformed-landmarks" in out


def test_alignment_of_absurd_landmarks_does_not_overflow():
    from interp_datasets.alignment import align_from_landmarks
    from test_ckplus import draw_face, face_landmarks

    frame = draw_face(face_landmarks())
    absurd = face_landmarks(eye_distance=1e12, centre=(320.0, 200.0))
    crop = align_from_landmarks(absurd, 64).image(frame)  # raised OverflowError in Image.reduce before
    assert crop.shape == (64, 64) and crop.dtype == np.uint8


@pytest.mark.parametrize(
    "rows, warning, reason",
    [
        ([(6, 3), (12, 4), (25, 0), (12, 2)], "duplicate-au", "malformed FACS file: AU 12 is listed twice (rows 2 and 4)"),
        ([(6, 3), (999, 4)], "unknown-au", "malformed FACS file: row 2: AU 999 is not a FACS code (1-99)"),
    ],
)
def test_facs_file_with_duplicate_or_unknown_au_is_reported(release, home, capsys, rows, warning, reason):
    path = release / "FACS" / "S010" / "001" / "S010_001_00000005_facs.txt"
    path.write_text("".join(f"   {au:.7e}   {intensity:.7e}\n" for au, intensity in rows))
    relative = "FACS/S010/001/S010_001_00000005_facs.txt"
    summary = _assert_skipped_and_cached(capsys, release, home, relative, warning, reason, FULL - 4)
    assert summary["skipped"][0]["reason"] == reason
    _assert_strict_fails(capsys, release, home, relative, warning)


# -- images -----------------------------------------------------------------------------------------
def _corrupt_pixels_keep_checksums(path: Path) -> None:
    """Flip bytes inside the compressed image data and recompute each IDAT chunk's CRC."""
    data = bytearray(path.read_bytes())
    position = 8  # after the PNG signature
    while position < len(data):
        (length,) = struct.unpack(">I", data[position:position + 4])
        kind = bytes(data[position + 4:position + 8])
        if kind == b"IDAT":
            start = position + 8
            for offset in range(start + 16, start + length - 8, 5):
                data[offset] ^= 0x5A
            crc = zlib.crc32(bytes(data[position + 4:start + length])) & 0xFFFFFFFF
            data[start + length:start + length + 4] = struct.pack(">I", crc)
        position += 12 + length
    path.write_bytes(bytes(data))


def test_png_with_valid_checksums_but_corrupt_pixels_is_skipped(release, home, capsys):
    png = release / "cohn-kanade-images" / "S010" / "001" / "S010_001_00000005.png"
    _corrupt_pixels_keep_checksums(png)
    with Image.open(png) as picture:
        picture.verify()  # every chunk checksum is valid: only decoding finds the damage
    with pytest.raises(OSError), Image.open(png) as picture:
        picture.load()
    relative = "cohn-kanade-images/S010/001/S010_001_00000005.png"
    _assert_skipped_and_cached(capsys, release, home, relative, "undecodable-image", "image does not decode", FULL - 1)
    _assert_strict_fails(capsys, release, home, relative, "undecodable-image")


def test_144_megapixel_frame_is_skipped_without_a_raw_pillow_warning(release, home, capsys):
    png = release / "cohn-kanade-images" / "S010" / "001" / "S010_001_00000005.png"
    Image.new("1", (12000, 12000), 1).save(png)  # 144 MP, 1 bit per pixel: a small file, a huge decode
    relative = "cohn-kanade-images/S010/001/S010_001_00000005.png"
    _assert_skipped_and_cached(capsys, release, home, relative, "image-too-large",
                               "image is 12000x12000 pixels (144 MP), over the 89 MP limit", FULL - 1)
    _, _, err = _inspect(capsys, release)
    assert not any("DecompressionBomb" in line for line in err)
    _assert_strict_fails(capsys, release, home, relative, "image-too-large")


# -- no home -------------------------------------------------------------------------------------
@pytest.fixture
def no_home(monkeypatch):
    """No INTERP_HOME, XDG_CACHE_HOME or HOME, and a user id /etc/passwd does not know (as in a container)."""
    import pwd

    for name in ("INTERP_HOME", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)

    def unknown_user(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", unknown_user)


def test_without_home_ckplus_runs_without_its_crop_cache(release, no_home, capsys, tmp_path, monkeypatch):
    from interpret_core.api.errors import CacheHomeError
    from interpret_core.util.paths import cache_home

    with pytest.raises(CacheHomeError, match="INTERP_HOME, XDG_CACHE_HOME and HOME are unset") as info:
        cache_home()
    assert "export INTERP_HOME=" in info.value.hint
    monkeypatch.chdir(tmp_path)
    code, out, err = _inspect(capsys, release)
    assert code == 0, err
    assert err[0].startswith("warning: ckplus: no crop cache (cannot find a folder for interp's cache")
    assert "hint: set INTERP_HOME" in err[0]
    summary = json.loads(out)
    assert summary["images"] == FULL and summary["cache"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckplus"]  # nothing written beside the release


def test_without_home_the_default_synthfacs_set_is_a_named_error(no_home, capsys):
    code = main(["data", "inspect", "--dataset", "synthfacs", "--json"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 1
    assert err[0].startswith("error: cannot find a folder for interp's cache: INTERP_HOME, XDG_CACHE_HOME and HOME are unset")
    assert err[1].startswith("hint: set INTERP_HOME to a writable folder")


def test_every_skip_warning_is_documented():
    text = (Path(__file__).resolve().parents[1] / "docs" / "datasets.md").read_text()
    missing = [name for name in WARNINGS if f"`{name}`" not in text]
    assert missing == []
