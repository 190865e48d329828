"""``interp data preview``: a grid of samples of any data set with their landmarks and AU masks.

Ground-truth masks where the data set has them, landmark regions otherwise,
so a person can see what the data looks like. (``interp data generate`` comes
from the data set plugin that can generate, through the commands hook.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from interpret_core.api.errors import UsageError

from . import params
from .output import emit, info

# -- preview ------------------------------------------------------------------------------------
#: Distinct colours for AU masks (RGB), assigned in AU order.
PALETTE = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (200, 140, 60), (255, 250, 200), (255, 80, 80), (170, 255, 195), (190, 190, 40), (255, 215, 180),
    (110, 110, 255), (180, 180, 180), (255, 255, 255), (140, 200, 255), (255, 150, 100),
)


def au_colour(au: int, aus: list[int]) -> tuple[int, int, int]:
    """The colour of ``au`` among the sorted AU list ``aus`` (stable within a picture)."""
    return PALETTE[aus.index(au) % len(PALETTE)]


def draw_sample(sample, scale: int, aus: list[int], caption: str) -> "Any":
    """One tile: the crop with its landmarks (left), the crop with its AU masks (right), a caption.

    Masks are tinted with their AU's colour and outlined; the caption lists
    the AUs in those colours.
    """
    import numpy as np
    from PIL import Image, ImageDraw

    from interpret_core.render.imaging import grey_to_rgb, upscale

    face = upscale(grey_to_rgb(sample.image), scale)
    rgb = face.astype(np.float32)
    masks = sample.localisation_masks() or {}
    for au, mask in sorted(masks.items()):
        big = upscale(mask.astype(np.uint8)[..., None], scale)[..., 0].astype(bool)
        colour = np.array(au_colour(au, aus), dtype=np.float32)
        rgb[big] = rgb[big] * 0.6 + colour * 0.4
        edge = big & ~(np.roll(big, 1, 0) & np.roll(big, -1, 0) & np.roll(big, 1, 1) & np.roll(big, -1, 1))
        rgb[edge] = colour
    left = Image.fromarray(face)
    draw = ImageDraw.Draw(left)
    if sample.landmarks is not None:
        for x, y in np.asarray(sample.landmarks, dtype=np.float64):
            cx, cy = (x + 0.5) * scale, (y + 0.5) * scale
            draw.ellipse([cx - 1.5, cy - 1.5, cx + 1.5, cy + 1.5], fill=(0, 255, 0))
    right = Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))
    gap = 2
    width = left.width * 2 + gap
    strip = Image.new("RGB", (width, 26), (32, 32, 32))
    text = ImageDraw.Draw(strip)
    text.text((3, 1), caption, fill=(255, 255, 255))
    x = 3
    for au in sorted(masks):
        label = f"AU{au}"
        text.text((x, 13), label, fill=au_colour(au, aus))
        x += int(text.textlength(label)) + 5
    tile = Image.new("RGB", (width, left.height + strip.height), (32, 32, 32))
    tile.paste(left, (0, 0))
    tile.paste(right, (left.width + gap, 0))
    tile.paste(strip, (0, left.height))
    return np.asarray(tile)


def choose_samples(dataset, count: int, seed: int) -> list[int]:
    """``count`` sample indices spread over the classes, drawn with ``seed``, in draw order (one of each class first)."""
    from interpret_core.analysis.sampling import stratified_indices

    if count < 1:
        return []
    return stratified_indices(list(dataset.emotions), count, seed, sort=False).tolist()


def preview(dataset, out: Path, count: int = 16, seed: int = 0, scale: int = 4, columns: int | None = None) -> dict[str, Any]:
    """Write a PNG grid of ``count`` samples of ``dataset``; returns what was drawn."""
    from interpret_core.render.imaging import grid, save_png

    indices = choose_samples(dataset, count, seed)
    if not indices:
        raise UsageError(f"dataset {dataset.name!r} has no samples to preview", "check its --data-root with `interp data inspect`")
    samples = [dataset[i] for i in indices]
    aus = sorted({au for s in samples for au in (s.localisation_masks() or {})})
    names = dataset.class_names
    tiles = []
    rows = []
    for index, sample in zip(indices, samples):
        label = "-" if sample.emotion is None else names[sample.emotion]
        tiles.append(draw_sample(sample, scale, aus, f"{sample.sequence}#{sample.frame} {label}"))
        rows.append({
            "index": index, "subject": sample.subject, "sequence": sample.sequence, "frame": sample.frame,
            "emotion": label, "aus": {str(k): v for k, v in sample.aus.items()},
            "masks": sorted((sample.localisation_masks() or {}).keys()),
        })
    columns = columns or min(len(tiles), 4)
    picture = grid(tiles, columns=columns, pad=4)
    save_png(out, picture)
    return {
        "out": str(out),
        "dataset": dataset.name,
        "width": int(picture.shape[1]),
        "height": int(picture.shape[0]),
        "masks": "ground truth" if any(sample.au_masks is not None for sample in samples) else "landmark regions",
        "samples": rows,
    }


def _check_png_out(out: Path) -> None:
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out {out} must name a .png file", "e.g. --out preview.png")
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder", "name a .png file, e.g. --out preview.png")
    # A file output goes into an existing folder (as with cp): a typo must not create folders, at / or elsewhere.
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist", "create it first, or choose an existing folder")


def preview_command(
    dataset: params.DatasetName = ...,
    out: params.Out = ...,
    data_root: params.DataRoot = None,
    dataset_option: params.DatasetOption = [],
    legacy_option: params.LegacyDatasetOption = [],
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="Number of samples to draw.")] = 16,
    seed: params.Seed = 0,
    scale: Annotated[int, typer.Option("--scale", min=1, max=16, help="Enlargement of each crop (pixels per crop pixel, 1-16).")] = 4,
    as_json: params.Json = False,
) -> None:
    """Draw a grid of samples with their landmarks and AU masks into the PNG file --out.

    --seed picks which samples are drawn (spread over the classes).
    """
    from interpret_core.workflows.setup import choices_from_flags, load_dataset

    _check_png_out(out)
    _, choice = choices_from_flags(
        dataset=dataset, data_root=data_root, dataset_option=params.merge_legacy(dataset_option, legacy_option)
    )
    data = load_dataset(choice)
    result = preview(data, out, count=count, seed=seed, scale=scale)
    info(f"wrote {result['width']}x{result['height']} preview of {len(result['samples'])} samples to {out}")

    def render(r: dict[str, Any]):
        from rich.table import Table

        table = Table(title=f"{r['dataset']} preview -> {r['out']} ({r['masks']})", title_justify="left")
        for column in ("sequence", "frame", "emotion", "AUs"):
            table.add_column(column)
        for row in r["samples"]:
            table.add_row(row["sequence"], str(row["frame"]), row["emotion"], " ".join(f"AU{a}" for a in row["aus"]) or "-")
        return table

    emit(result, as_json, render)


def register(app: typer.Typer) -> None:
    """Add ``preview`` to the ``interp data`` sub-app."""
    from .plugin_commands import add_command

    add_command(app, "data preview", preview_command)
