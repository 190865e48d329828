"""Write a SynthFACS release in the CK+ layout, with ground-truth AU masks.

Layout (as CK+, plus ``AUMasks`` and a manifest)::

    ROOT/cohn-kanade-images/S001/001/S001_001_00000001.png    every frame (grey PNG)
    ROOT/Landmarks/S001/001/S001_001_00000001_landmarks.txt   every frame: 68 rows "x y"
    ROOT/FACS/S001/001/S001_001_00000007_facs.txt             last (apex) frame: "AU intensity" rows
    ROOT/Emotion/S001/001/S001_001_00000007_emotion.txt       last (apex) frame: CK+ emotion code
    ROOT/AUMasks/S001/001/S001_001_00000002_aumasks.npz       every frame showing an AU
    ROOT/SYNTHFACS.json                                       manifest, written last

Determinism: everything random is drawn from ``numpy.random.SeedSequence``
streams keyed by (seed, subject, sequence), so the same seed gives the same
bytes whatever the number of worker processes. PNGs are written by Pillow
with fixed options and the mask archives with fixed zip timestamps.

Interruptions: every file is written to a temporary name and renamed; a
sequence's emotion file is written last, so a sequence with an emotion file
is complete and a re-run skips it. The manifest is written at the very end;
a folder without it is an unfinished release.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import shutil
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from interpret_core.api.errors import DataError, UsageError
from ..emotions import EMOTIONS
from interpret_core.util.io import write_bytes
from interpret_core.util.paths import cache_home

from . import aus as au_stats
from .face import Identity, express
from .render import FRAME_SIZE, FrameContext, Lighting, Pose, render

#: Bump when the output for a given seed changes; part of the cache folder name.
GENERATOR_VERSION = "1"
MANIFEST = "SYNTHFACS.json"
PARTIAL_MARKER = ".synthfacs-partial.json"
#: A pixel belongs to an AU's mask when removing the AU changes its grey level
#: (in [0, 1], after lighting, before noise) by more than this: 4 of 255 levels.
MASK_THRESHOLD = 4.0 / 255.0
#: Frames per sequence (first neutral, last at apex), inclusive range.
FRAMES_PER_SEQUENCE = (6, 8)
#: Sequences per subject, inclusive range (CK+ has about 4.8 per subject).
SEQUENCES_PER_SUBJECT = (3, 7)
DEFAULT_SUBJECTS = 120
DEFAULT_SEED = 0
MAX_SUBJECTS = 999


@dataclasses.dataclass(frozen=True)
class SequencePlan:
    """Everything needed to render one sequence (small and picklable)."""

    subject: str
    number: int
    identity: Identity
    emotion: str
    apex: tuple[tuple[int, int], ...]  # (AU, intensity 1-5)
    sides: tuple[tuple[int, float, float], ...]  # (AU, left weight, right weight)
    frames: int
    seed: tuple[int, ...]

    @property
    def sequence(self) -> str:
        return f"{self.number:03d}"

    @property
    def folder(self) -> str:
        return f"{self.subject}/{self.sequence}"

    def stem(self, frame: int) -> str:
        """File stem of 1-based ``frame``: ``S001_001_00000003``."""
        return f"{self.subject}_{self.sequence}_{frame:08d}"


def plan_release(subjects: int, seed: int) -> list[SequencePlan]:
    """The sequences of a release, in order; depends only on (subjects, seed)."""
    return [plan for index in range(1, subjects + 1) for plan in plan_subject(index, seed)]


def plan_subject(index: int, seed: int) -> list[SequencePlan]:
    """The sequences of subject ``index`` (1-based), in order; depends only on (index, seed)."""
    subject = f"S{index:03d}"
    identity = Identity.sample(np.random.default_rng([seed, index, 0]))
    rng = np.random.default_rng([seed, index, 1])
    count = int(rng.integers(SEQUENCES_PER_SUBJECT[0], SEQUENCES_PER_SUBJECT[1] + 1))
    plans: list[SequencePlan] = []
    for number, emotion in enumerate(au_stats.sample_emotions(rng, count), start=1):
        apex = au_stats.sample_apex(rng, emotion)
        sides: list[tuple[int, float, float]] = []
        if emotion == "contempt":
            # Contempt is unilateral: AU12/AU14 act on one side of the face only.
            left = bool(rng.random() < 0.5)
            for au in (12, 14):
                if au in apex:
                    sides.append((au, 1.0 if left else 0.0, 0.0 if left else 1.0))
        frames = int(rng.integers(FRAMES_PER_SEQUENCE[0], FRAMES_PER_SEQUENCE[1] + 1))
        plans.append(
            SequencePlan(
                subject=subject,
                number=number,
                identity=identity,
                emotion=emotion,
                apex=tuple(sorted(apex.items())),
                sides=tuple(sides),
                frames=frames,
                seed=(seed, index, number, 2),
            )
        )
    return plans


# -- file formats ----------------------------------------------------------------------
def _enotation(values: np.ndarray) -> str:
    """Rows of floats as CK+ writes them: ``%16.7e`` per value (3 leading spaces for positives)."""
    rows = np.atleast_2d(np.asarray(values, dtype=np.float64))
    return "".join("".join(f"{v:16.7e}" for v in row) + "\n" for row in rows)


def _png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image, mode="L").save(buffer, format="PNG", compress_level=6, optimize=False)
    return buffer.getvalue()


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` (zip of ``.npy``) with fixed timestamps, so the bytes are reproducible."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> None:
    """Write one file of the release atomically.

    (No fsync per file: thousands of small files; the manifest, written last
    with :func:`interpret_core.util.io.write_json`, is the durable commit point.)
    """
    write_bytes(path, data, durable=False)


# -- rendering a sequence ------------------------------------------------------------------
def ramp(frame: int, frames: int) -> float:
    """AU amplitude factor of 0-based ``frame``: 0 at the first frame, ~1 over the last three."""
    if frame <= 0:
        return 0.0
    return math.sin(0.5 * math.pi * min(1.0, frame / max(1, frames - 2)))


@dataclasses.dataclass(frozen=True)
class FrameSetup:
    """What one frame of a sequence is rendered from (everything drawn from the sequence's seed)."""

    pose: Pose
    lighting: Lighting
    noise_seed: int
    #: {AU: amplitude} acting in this frame (none in the neutral first frame)
    amplitudes: dict[int, float]


def frame_setups(plan: SequencePlan) -> list[FrameSetup]:
    """Pose, lighting, noise seed and AU amplitudes of every frame of ``plan``, in order.

    Only a few random draws per frame, so rendering one frame
    (:func:`render_frame`) needs no other frame rendered.
    """
    rng = np.random.default_rng(list(plan.seed))
    # Head pose and lighting: per sequence, plus a little jitter per frame.
    roll = float(np.clip(rng.normal(0.0, 0.05), -0.12, 0.12))
    scale = float(rng.uniform(0.94, 1.06))
    dx, dy = float(rng.uniform(-9.0, 9.0)), float(rng.uniform(-6.0, 6.0))
    light_angle = float(rng.uniform(0, 2 * math.pi))
    light_strength = float(rng.uniform(0.0, 0.22))
    gain = float(rng.uniform(0.85, 1.12))
    noise = float(rng.uniform(0.006, 0.018))
    # Per-AU onset: some AUs lead, some lag (exponent on the common ramp).
    lag = {au: float(rng.uniform(0.7, 1.4)) for au, _ in plan.apex}
    setups: list[FrameSetup] = []
    for frame in range(plan.frames):
        pose = Pose(
            roll=roll + float(rng.normal(0.0, 0.01)),
            scale=scale * (1.0 + float(rng.normal(0.0, 0.008))),
            dx=dx + float(rng.normal(0.0, 0.8)),
            dy=dy + float(rng.normal(0.0, 0.8)),
        )
        lighting = Lighting(angle=light_angle, strength=light_strength, gain=gain * (1.0 + float(rng.normal(0.0, 0.01))), noise=noise)
        noise_seed = int(rng.integers(0, 2**63 - 1))
        r = ramp(frame, plan.frames)
        amplitudes = {au: au_stats.INTENSITY_AMPLITUDE[level] * r ** lag[au] for au, level in plan.apex if r > 0}
        setups.append(FrameSetup(pose, lighting, noise_seed, amplitudes))
    return setups


def render_frame(plan: SequencePlan, setup: FrameSetup, with_masks: bool = True):
    """One frame: (image uint8 [H, W], landmarks [68, 2] pixels, masks {AU: bool [H, W]})."""
    ident = plan.identity
    sides = {au: (left, right) for au, left, right in plan.sides}
    amplitudes = setup.amplitudes
    ctx = FrameContext(ident, setup.pose, setup.lighting, setup.noise_seed)
    expr = express(ident, amplitudes, sides)
    clean = render(ctx, expr)
    image = np.clip((clean + ctx.noise) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    masks: dict[int, np.ndarray] = {}
    if with_masks:
        for au in sorted(amplitudes):
            without = dict(amplitudes)
            del without[au]
            other = render(ctx, express(ident, without, sides))
            masks[au] = np.abs(clean - other) > MASK_THRESHOLD
    return image, ctx.to_pixels(expr.landmarks), masks


def sequence_frames(plan: SequencePlan, with_masks: bool = True):
    """Yield, per frame: (image uint8 [H, W], landmarks [68, 2] pixels, masks {AU: bool [H, W]})."""
    for setup in frame_setups(plan):
        yield render_frame(plan, setup, with_masks)


def write_sequence(root: str | os.PathLike, plan: SequencePlan) -> int:
    """Render and write one sequence under ``root``; returns the number of frames written."""
    root = Path(root)
    emotion_path = root / "Emotion" / plan.folder / f"{plan.stem(plan.frames)}_emotion.txt"
    if emotion_path.is_file():  # written last: the sequence is complete
        return 0
    for index, (image, landmarks, masks) in enumerate(sequence_frames(plan)):
        stem = plan.stem(index + 1)
        _write(root / "cohn-kanade-images" / plan.folder / f"{stem}.png", _png_bytes(image))
        _write(root / "Landmarks" / plan.folder / f"{stem}_landmarks.txt", _enotation(landmarks).encode())
        if masks:
            _write(root / "AUMasks" / plan.folder / f"{stem}_aumasks.npz",
                   _npz_bytes({f"AU{au}": mask for au, mask in masks.items()}))
    last = plan.stem(plan.frames)
    facs = np.array([[au, level] for au, level in plan.apex], dtype=np.float64)
    _write(root / "FACS" / plan.folder / f"{last}_facs.txt", _enotation(facs).encode())
    _write(emotion_path, _enotation(np.array([[EMOTIONS.index(plan.emotion)]])).encode())
    return plan.frames


def _write_subject_task(plans: list[SequencePlan], root: str) -> int:
    """One subject's sequences, as an executor task (the shard of a sharded generation); returns frames written."""
    return sum(write_sequence(root, plan) for plan in plans)


# -- the release -------------------------------------------------------------------------------
def _parameters(subjects: int, seed: int) -> dict[str, Any]:
    return {"generator": "synthfacs", "version": GENERATOR_VERSION, "seed": seed, "subjects": subjects}


def _check_out_dir(out: Path, params: dict[str, Any]) -> None:
    """Refuse to mix releases: ``out`` must be empty, unfinished with the same parameters, or ours."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"output {out} exists and is not a folder", "choose a new folder for --out")
    for marker in (out / MANIFEST, out / PARTIAL_MARKER):
        if marker.is_file():
            try:
                found = json.loads(marker.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                found = {}
            if {k: found.get(k) for k in params} != params:
                raise UsageError(
                    f"{out} holds a SynthFACS release made with other settings "
                    f"(seed {found.get('seed')}, {found.get('subjects')} subjects, version {found.get('version')})",
                    "choose an empty folder for --out, or delete that one",
                )
            return
    if out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir()):
        raise UsageError(f"output folder {out} is not empty and holds no SynthFACS release",
                         "choose a new or empty folder for --out")


def default_workers() -> int:
    """Worker processes: the CPUs this process may use, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def generate(
    out_dir: str | os.PathLike,
    subjects: int = DEFAULT_SUBJECTS,
    seed: int = DEFAULT_SEED,
    progress: Any = None,
    workers: int | None = None,
    executor: Any = None,
) -> dict[str, Any]:
    """Generate a SynthFACS release into ``out_dir`` (created if needed).

    Args:
        out_dir: an empty or new folder, or an unfinished release with the
            same settings (it is resumed).
        subjects: number of identities, 1-999 (CK+ has 123).
        seed: the release's seed; the same seed gives byte-identical files.
        progress: None, a rich ``Progress`` (a task counting frames is added),
            or a callable ``progress(frames_done, frames_total)``.
        workers: processes rendering subjects in parallel (default: the
            available CPUs, at most 8; releases of under 16 sequences render
            in-process).
            The output does not depend on it.
        executor: an :class:`interpret_core.workflows.executors.ExecutorChoice`
            (``--executor``; None: local processes). With ``dask`` each
            subject is a task that writes its files under ``out_dir``, which
            the workers must see (a shared file system); the same bytes as a
            local generation.

    Returns:
        Summary dict: root, subjects, sequences, frames, frame_size, seed,
        version, seconds, emotions (name -> sequences).
    """
    start = time.perf_counter()
    if isinstance(subjects, bool) or not isinstance(subjects, (int, np.integer)) or not 1 <= subjects <= MAX_SUBJECTS:
        raise UsageError(f"subjects must be an integer from 1 to {MAX_SUBJECTS}, got {subjects!r}", "e.g. --subjects 120")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UsageError(f"seed must be a non-negative integer, got {seed!r}", "e.g. --seed 0")
    subjects, seed = int(subjects), int(seed)
    out = Path(out_dir).expanduser()
    if workers is not None:
        from interpret_core.workflows.executors import ExecutorChoice

        executor = dataclasses.replace(executor or ExecutorChoice("local"), workers=int(workers))
    params = _parameters(subjects, seed)
    _check_out_dir(out, params)
    plans = plan_release(subjects, seed)
    total = sum(p.frames for p in plans)
    summary = {
        "root": str(out),
        "subjects": subjects,
        "sequences": len(plans),
        "frames": total,
        "frame_size": list(FRAME_SIZE),
        "seed": seed,
        "version": GENERATOR_VERSION,
        "emotions": {name: sum(p.emotion == name for p in plans) for name in au_stats.SEQUENCE_EMOTIONS},
    }
    if (out / MANIFEST).is_file():  # finished; a run killed just after writing the manifest left the marker
        (out / PARTIAL_MARKER).unlink(missing_ok=True)
        summary["seconds"] = round(time.perf_counter() - start, 3)
        return summary
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output folder {out}: {exc.strerror or exc}", "choose a writable folder for --out") from None
    from interpret_core.util.io import write_json

    write_json(out / PARTIAL_MARKER, params)
    from interpret_core.util.progress import start_task

    advance = start_task(progress, "SynthFACS frames", total).advance
    from interpret_core.workflows.executors import ExecutorChoice, open_executor

    choice = executor or ExecutorChoice("local")
    if choice.kind == "local" and choice.workers is None:  # small releases: starting processes costs more than it saves
        choice = dataclasses.replace(choice, workers=default_workers() if len(plans) >= 16 else 1)
    by_subject: dict[str, list[SequencePlan]] = {}
    for plan in plans:
        by_subject.setdefault(plan.subject, []).append(plan)
    shards = list(by_subject.values())
    with open_executor(choice) as runner:
        for position, _ in runner.map(_write_subject_task, shards, shared=(str(out),), name="SynthFACS subject"):
            advance(sum(plan.frames for plan in shards[position]))
    seconds = round(time.perf_counter() - start, 3)
    manifest = {
        **params,
        "sequences": len(plans),
        "frames": total,
        "frame_size": list(FRAME_SIZE),
        "frames_per_sequence": list(FRAMES_PER_SEQUENCE),
        "mask_threshold": MASK_THRESHOLD,
        "emotions": summary["emotions"],
        "au_statistics": "Lucey et al. 2010 (CK+), peak FACS codes via NetFACS emotions_set",
    }
    write_json(out / MANIFEST, manifest)
    os.chmod(out / MANIFEST, 0o644)  # atomic writes create 0600 files; a release is meant to be shared
    (out / PARTIAL_MARKER).unlink(missing_ok=True)
    summary["seconds"] = seconds
    return summary


def default_root(seed: int = DEFAULT_SEED) -> Path:
    """Where the default release lives: ``<cache>/datasets/synthfacs-v<version>-s<seed>``.

    ``<cache>`` is ``$INTERP_HOME``, else ``$XDG_CACHE_HOME/interp``, else ``~/.cache/interp``.
    """
    return cache_home() / "datasets" / f"synthfacs-v{GENERATOR_VERSION}-s{seed}"


def ensure_default(progress: Any = None) -> Path:
    """The default release (120 subjects, seed 0), generated on first use.

    It is generated into ``<root>.partial`` (resumed if an earlier run was
    interrupted) and renamed onto :func:`default_root` when complete, so a
    half-written release is never used. Two processes racing write the same
    bytes; the first rename wins and the other process uses its result.
    Shows a progress bar on stderr unless ``progress`` is given.
    """
    root = default_root()
    if (root / MANIFEST).is_file():
        return root
    partial = root.with_name(root.name + ".partial")
    try:
        partial.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the data cache {partial.parent}: {exc.strerror or exc}",
                        "set INTERP_HOME to a writable folder") from None
    if progress is None:
        from interpret_core.util.progress import progress_bar

        with progress_bar() as bar:
            generate(partial, DEFAULT_SUBJECTS, DEFAULT_SEED, progress=bar)
    else:
        generate(partial, DEFAULT_SUBJECTS, DEFAULT_SEED, progress=progress)
    try:
        os.rename(partial, root)
    except OSError:
        if not (root / MANIFEST).is_file():
            if root.exists():  # a stale, unfinished folder in the way (not ours to trust)
                stale = root.with_name(f"{root.name}.stale-{uuid.uuid4().hex[:8]}")
                os.rename(root, stale)
                shutil.rmtree(stale, ignore_errors=True)
            os.rename(partial, root)
        else:
            shutil.rmtree(partial, ignore_errors=True)
    return root
