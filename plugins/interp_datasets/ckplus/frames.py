"""The release's image files: checking, decoding to grey, and the frame size.

Frames are grey or RGB PNGs (8 or 16 bit); every frame is read as 8-bit grey.
Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``, 89 MP by
default; CK+ frames are 0.3 MP) is enforced here with a named error instead of
Pillow's raw ``DecompressionBombWarning``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image

from .problems import os_reason, os_warning


class FrameError(Exception):
    """An image that cannot be used; ``warning`` names why (a key of ``problems.WARNINGS``)."""

    def __init__(self, warning: str, reason: str):
        super().__init__(reason)
        self.warning = warning
        self.reason = reason


@contextmanager
def open_frame(path: str | os.PathLike) -> Iterator[Image.Image]:
    """Open an image (header only) or raise FrameError; the size limit is checked before any decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below, with a name
            picture = Image.open(path)
    except FileNotFoundError:
        raise FrameError("missing-image", "image file disappeared") from None
    except Image.DecompressionBombError as exc:
        raise FrameError("image-too-large", f"image is too large to decode safely ({exc})") from None
    except OSError as exc:
        if exc.errno is not None:  # the file system refused; Pillow's own OSErrors carry no errno
            raise FrameError(os_warning(exc), os_reason(exc, "image")) from None
        raise FrameError("undecodable-image", f"image does not decode ({exc})") from None
    except Exception as exc:
        raise FrameError("undecodable-image", f"image does not decode ({exc or type(exc).__name__})") from None
    with picture:
        limit = Image.MAX_IMAGE_PIXELS
        width, height = picture.size
        if limit is not None and width * height > limit:
            raise FrameError(
                "image-too-large",
                f"image is {width}x{height} pixels ({width * height / 1e6:.0f} MP), "
                f"over the {limit / 1e6:.0f} MP limit (PIL.Image.MAX_IMAGE_PIXELS)",
            )
        yield picture


def check_frame(path: str | os.PathLike) -> FrameError | None:
    """None if the image decodes completely, else why not.

    Chunk checksums (Pillow's ``verify``) and then the pixel data itself: a
    PNG whose checksums are valid but whose compressed data is corrupt fails
    only when decoded, and it must be found before anyone indexes the data set.
    """
    try:
        with open_frame(path) as picture:
            picture.verify()
        with open_frame(path) as picture:
            picture.load()
    except FrameError as exc:
        return exc
    except Exception as exc:
        return FrameError("undecodable-image", f"image does not decode ({str(exc) or type(exc).__name__})")
    return None


def read_grey(path: str | os.PathLike) -> Image.Image:
    """Decode an image to 8-bit grey ('L'); raises FrameError."""
    with open_frame(path) as picture:
        try:
            picture.load()
            return to_grey(picture)
        except Exception as exc:
            raise FrameError("undecodable-image", f"image does not decode ({str(exc) or type(exc).__name__})") from None


def frame_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image from its header; raises FrameError."""
    with open_frame(path) as picture:
        return picture.size


def to_grey(picture: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit grey ('L'); RGB uses ITU-R 601-2 luma, 16-bit is scaled down."""
    if picture.mode == "L":
        return picture
    if picture.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(picture, dtype=np.float64)
        top = 65535.0 if picture.mode.startswith("I;16") or array.max() > 255 else 255.0
        return Image.fromarray(np.clip(np.rint(array / top * 255.0), 0, 255).astype(np.uint8))
    if picture.mode in ("P", "PA"):
        picture = picture.convert("RGBA")
    return picture.convert("L")
