"""Turning arrays into pictures: colour maps, overlays, grids and PNG output.

Arrays are numpy; RGB images are uint8 [H, W, 3]. Every map is normalised on
its own, signed maps use a diverging blue-white-red colour map centred on 0.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np

from interpret_core.util.io import write_bytes


def grey_to_rgb(image: np.ndarray) -> np.ndarray:
    """Float [H, W] in [0, 1] -> uint8 [H, W, 3]."""
    grey = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    return np.repeat((grey * 255.0 + 0.5).astype(np.uint8)[..., None], 3, axis=2)


def unit_range(images: np.ndarray) -> np.ndarray:
    """Each image of float [..., H, W] scaled to [0, 1] on its own (min to max), for display; a flat image becomes 0.

    A model's input may be standardised; figures show what it saw on a grey scale.
    """
    images = np.asarray(images, dtype=np.float64)
    low = images.min(axis=(-2, -1), keepdims=True)
    high = images.max(axis=(-2, -1), keepdims=True)
    return np.where(high > low, (images - low) / np.maximum(high - low, 1e-12), 0.0)


def normalise_signed(values: np.ndarray) -> np.ndarray:
    """Scale by the maximum absolute value into [-1, 1]; an all-zero map stays 0."""
    values = np.asarray(values, dtype=np.float32)
    peak = float(np.abs(values).max()) if values.size else 0.0
    return values / peak if peak > 0 else np.zeros_like(values)


def diverging_rgb(values: np.ndarray) -> np.ndarray:
    """Signed map [H, W] -> uint8 RGB: blue (negative), white (0), red (positive)."""
    t = normalise_signed(values)
    pos = np.clip(t, 0, 1)[..., None]
    neg = np.clip(-t, 0, 1)[..., None]
    white = np.ones(t.shape + (3,), dtype=np.float32)
    red = np.array([0.70, 0.05, 0.10], dtype=np.float32)
    blue = np.array([0.05, 0.25, 0.70], dtype=np.float32)
    rgb = white * (1 - pos - neg) + red * pos + blue * neg
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def heat_rgb(values: np.ndarray) -> np.ndarray:
    """Non-negative map [H, W] -> uint8 RGB on a black-red-yellow-white ramp."""
    t = np.asarray(values, dtype=np.float32)
    t = t - t.min() if t.size else t
    peak = float(t.max()) if t.size else 0.0
    t = t / peak if peak > 0 else np.zeros_like(t)
    rgb = np.stack([np.clip(3 * t, 0, 1), np.clip(3 * t - 1, 0, 1), np.clip(3 * t - 2, 0, 1)], axis=-1)
    return (rgb * 255 + 0.5).astype(np.uint8)


def overlay(image: np.ndarray, values: np.ndarray, alpha: float = 0.55, signed: bool = True) -> np.ndarray:
    """Blend a map's colours over a grey image; both [H, W]; returns uint8 RGB."""
    base = grey_to_rgb(image).astype(np.float32)
    colour = (diverging_rgb(values) if signed else heat_rgb(np.abs(values))).astype(np.float32)
    weight = np.abs(normalise_signed(values))[..., None] * alpha
    return (base * (1 - weight) + colour * weight + 0.5).astype(np.uint8)


def upscale(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer ``factor`` (keeps pixels crisp)."""
    if factor <= 1:
        return rgb
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def grid(tiles: Sequence[np.ndarray], columns: int, pad: int = 2, background: int = 255) -> np.ndarray:
    """Lay uint8 RGB tiles of one size out in rows of ``columns``."""
    if not tiles:
        raise ValueError("grid needs at least one tile")
    height, width = tiles[0].shape[:2]
    rows = (len(tiles) + columns - 1) // columns
    canvas = np.full(
        (rows * height + (rows + 1) * pad, columns * width + (columns + 1) * pad, 3), background, dtype=np.uint8
    )
    for index, tile in enumerate(tiles):
        r, c = divmod(index, columns)
        y, x = pad + r * (height + pad), pad + c * (width + pad)
        canvas[y : y + height, x : x + width] = tile
    return canvas


def encode_png(rgb: np.ndarray) -> bytes:
    """uint8 [H, W] or [H, W, 3] -> PNG bytes (deterministic: no timestamps)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def save_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an image atomically as PNG."""
    write_bytes(path, encode_png(rgb))
