"""Fuzzing the CK+ file readers: the text parsers raise nothing but MalformedFile, the frame reader nothing but FrameError.

Bounded: 200 examples per strategy, derandomized (the same examples on every
run), no example database; a few seconds in all.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interp_datasets.ckplus import MalformedFile, read_emotion, read_facs, read_landmarks
from interp_datasets.ckplus.textfiles import FACS_CODES, MAX_COORDINATE

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])



@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ckplus-fuzz")


def _check_landmarks(path: Path) -> None:
    try:
        landmarks = read_landmarks(path)
    except MalformedFile:
        return
    assert landmarks.shape == (68, 2) and landmarks.dtype == np.float64
    assert np.isfinite(landmarks).all() and np.abs(landmarks).max() <= MAX_COORDINATE


def _check_facs(path: Path) -> None:
    try:
        aus = read_facs(path)
    except MalformedFile:
        return
    assert aus and list(aus) == sorted(aus)
    assert all(isinstance(au, int) and au in FACS_CODES for au in aus)
    assert all(isinstance(i, int) and 0 <= i <= 5 for i in aus.values())


def _check_emotion(path: Path) -> None:
    try:
        code = read_emotion(path)
    except MalformedFile:
        return
    assert isinstance(code, int) and 0 <= code <= 7


CHECKS = {"landmarks": _check_landmarks, "facs": _check_facs, "emotion": _check_emotion}


def _feed(folder: Path, kind: str, data: bytes) -> None:
    path = folder / f"x_{kind}.txt"
    path.write_bytes(data)
    CHECKS[kind](path)


_kinds = st.sampled_from(sorted(CHECKS))

# Text that looks like the release's files, so the fuzzer reaches the checks past tokenising.
_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(lambda v: f"{v:.7e}" if math.isfinite(v) else str(v)),
    st.integers(-1000, 1000).map(str),
    st.integers(-3, 110).map(lambda v: f"{float(v):.7e}"),  # AU numbers, intensities, emotion codes
    st.sampled_from(["1e12", "-0", ".5", "5.", "1_0", "0x10", "nan", "inf", "1e999", "\u0661", "+-1", ""]),
)
_space = st.sampled_from([" ", "   ", "\t", "\u00a0", "\u2003", "\x0b", "\x1c"])
_line = st.lists(st.tuples(_space, _number), min_size=0, max_size=3).map(lambda parts: "".join(s + n for s, n in parts))
_newline = st.sampled_from(["\n", "\r\n", "\r", "\u2028", "\x85"])
_release_like = st.lists(st.tuples(_line, _newline), max_size=80).map(lambda rows: "".join(a + b for a, b in rows))


# Files that are nearly right: the checks on values (ranges, duplicates, row counts) get exercised.
_enote = st.integers(-3, 120).map(lambda v: f"   {float(v):.7e}")
_facs_like = st.lists(st.tuples(_enote, _enote), min_size=0, max_size=6).map(
    lambda rows: "".join(a + b + "\n" for a, b in rows))
_coordinate = st.floats(-2e5, 2e5, allow_nan=False).map(lambda v: f"   {v:.7e}")
_landmarks_like = st.lists(st.tuples(_coordinate, _coordinate), min_size=66, max_size=70).map(
    lambda rows: "".join(a + b + "\n" for a, b in rows))
_nearly_right = {"facs": _facs_like, "landmarks": _landmarks_like, "emotion": _enote.map(lambda v: v + "\n")}


@FUZZ
@given(data=st.data())
def test_files_that_are_nearly_right(folder, data):
    kind = data.draw(_kinds)
    _feed(folder, kind, data.draw(_nearly_right[kind]).encode("utf-8"))


@FUZZ
@given(kind=_kinds, data=st.binary(max_size=4096))
def test_random_bytes(folder, kind, data):
    _feed(folder, kind, data)


@FUZZ
@given(kind=_kinds, text=st.text(max_size=2000))
def test_random_text(folder, kind, text):
    _feed(folder, kind, text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(kind=_kinds, text=_release_like)
def test_text_that_looks_like_the_release(folder, kind, text):
    _feed(folder, kind, text.encode("utf-8"))


@pytest.mark.parametrize("kind", sorted(CHECKS))
def test_huge_file_is_refused_without_reading_it_all(folder, kind):
    from interp_datasets.ckplus.textfiles import MAX_TEXT_BYTES

    path = folder / f"big_{kind}.txt"
    path.write_bytes(b"   1.0000000e+00" * (MAX_TEXT_BYTES // 16 + 1))
    with pytest.raises(MalformedFile, match="larger than"):
        {"landmarks": read_landmarks, "facs": read_facs, "emotion": read_emotion}[kind](path)


# -- frames: any bytes behind a PNG signature give a FrameError with a named warning, nothing else --
def _png(width: int, height: int, bit_depth: int, colour: int, rest: bytes) -> bytes:
    import struct
    import zlib

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    ihdr = struct.pack(">I", len(header)) + b"IHDR" + header + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    return b"\x89PNG\r\n\x1a\n" + ihdr + rest


_small_png = st.builds(
    _png,
    st.integers(1, 64), st.integers(1, 64), st.sampled_from([1, 2, 4, 8, 16, 3]), st.sampled_from([0, 2, 3, 4, 6, 5]),
    st.binary(max_size=512),
)


@FUZZ
@given(data=st.one_of(st.binary(max_size=1024), _small_png))
def test_random_image_bytes(folder, data):
    from interp_datasets.ckplus import WARNINGS
    from interp_datasets.ckplus.frames import FrameError, check_frame, read_grey

    path = folder / "x.png"
    path.write_bytes(data)
    problem = check_frame(path)
    assert problem is None or (isinstance(problem, FrameError) and problem.warning in WARNINGS)
    try:
        grey = read_grey(path)
    except FrameError as exc:  # a frame that passed the check must decode later
        assert exc.warning in WARNINGS and problem is not None
    else:
        assert grey.mode == "L"
