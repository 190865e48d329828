"""Draw a grey face frame from an identity, a pose and an :class:`Expression`.

Shapes are filled by Pillow on a 4x supersampled canvas cropped to each
shape's bounding box and box-filtered back down (``Image.reduce``), which
gives anti-aliased coverage in [0, 1]; numpy composites the coverages with
grey tones and shading fields. Shading, skin texture, beard stubble and the
chin-boss pattern are fields in canonical face coordinates, so they move with
the head.

A :class:`FrameContext` holds everything that does not depend on the AUs (the
pose, the pixel -> face coordinate grids, the background, the hair behind the
head, the texture fields, the lighting and the sensor noise), so rendering the
same frame again without one AU - for its ground-truth mask - changes nothing
but that AU.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .face import Expression, Identity

#: Frame size (width, height): half of CK+'s 640x490.
FRAME_SIZE: tuple[int, int] = (320, 245)
#: Where the eye midpoint of an unshifted face sits in the frame (pixels).
FACE_ANCHOR: tuple[float, float] = (160.0, 104.0)
SUPERSAMPLE = 4


@dataclasses.dataclass(frozen=True)
class Pose:
    """Head pose of one frame: roll (radians), scale, shift (pixels)."""

    roll: float = 0.0
    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0


@dataclasses.dataclass(frozen=True)
class Lighting:
    """A linear lighting gradient, a global gain and the sensor-noise level."""

    angle: float = 0.0
    strength: float = 0.0
    gain: float = 1.0
    noise: float = 0.01


@functools.lru_cache(maxsize=16)
def _catmull_rom_basis(samples: int) -> np.ndarray:
    """Weights [samples, 4] of the 4 control points at ``samples`` steps of one segment."""
    t = np.linspace(0.0, 1.0, samples, endpoint=False)
    t2, t3 = t * t, t * t * t
    return 0.5 * np.stack([-t + 2 * t2 - t3, 2 - 5 * t2 + 3 * t3, t + 4 * t2 - 3 * t3, -t2 + t3], axis=1)


def catmull_rom(points: np.ndarray, closed: bool, samples: int = 6) -> np.ndarray:
    """A smooth curve through ``points`` [K, 2] (passes through every point)."""
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 3:
        return pts
    if closed:
        ext = np.concatenate([pts[-1:], pts, pts[:2]])
        count = len(pts)
    else:
        ext = np.concatenate([2 * pts[:1] - pts[1:2], pts, 2 * pts[-1:] - pts[-2:-1]])
        count = len(pts) - 1
    controls = np.stack([ext[i : i + count] for i in range(4)], axis=1)  # [count, 4, 2]
    curve = np.einsum("sk,ckd->csd", _catmull_rom_basis(samples), controls).reshape(-1, 2)
    if not closed:
        curve = np.concatenate([curve, pts[-1:]])
    return curve


def _value_noise(rng: np.random.Generator, cells: int) -> np.ndarray:
    """A [cells, cells] random field in [-1, 1] (bilinearly sampled later)."""
    return rng.uniform(-1.0, 1.0, size=(cells, cells)).astype(np.float32)


class FrameContext:
    """Pose, coordinate grids and the AU-independent layers of one frame."""

    def __init__(self, ident: Identity, pose: Pose, lighting: Lighting, noise_seed: int,
                 size: tuple[int, int] = FRAME_SIZE):
        self.ident = ident
        self.width, self.height = size
        scale = ident.scale * pose.scale
        c, s = math.cos(pose.roll), math.sin(pose.roll)
        #: canonical (u, v) -> pixel (x, y): pixel = matrix @ (u, v) + offset
        self.matrix = np.array([[c, -s], [s, c]]) * scale
        self.offset = np.array([FACE_ANCHOR[0] + pose.dx, FACE_ANCHOR[1] + pose.dy])
        self.scale = scale
        inverse = np.linalg.inv(self.matrix)
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        xs -= self.offset[0]
        ys -= self.offset[1]
        #: canonical coordinates of every pixel centre, float32 [H, W]
        self.U = (inverse[0, 0] * xs + inverse[0, 1] * ys).astype(np.float32)
        self.V = (inverse[1, 0] * xs + inverse[1, 1] * ys).astype(np.float32)
        tex = np.random.default_rng(ident.texture_seed)
        self._fields = {
            "skin": _value_noise(tex, 12),
            "fine": _value_noise(tex, 48),
            "stubble": _value_noise(tex, 160),
            "boss": _value_noise(tex, 40),
        }
        self._field_cache: dict[str, np.ndarray] = {}
        self._coverage_cache: dict[tuple, tuple] = {}
        self.lighting = lighting
        self._light: np.ndarray | None = None
        noise_rng = np.random.default_rng(noise_seed)
        self.noise = noise_rng.standard_normal((self.height, self.width)).astype(np.float32) * lighting.noise
        self._base = self._draw_base()

    # -- geometry helpers ---------------------------------------------------
    def to_pixels(self, pts: np.ndarray) -> np.ndarray:
        """Canonical points [K, 2] -> pixel coordinates [K, 2] (pixel centres)."""
        return np.asarray(pts, dtype=np.float64) @ self.matrix.T + self.offset

    def field(self, name: str, sl) -> np.ndarray:
        """Texture field ``name`` at the pixels ``sl``: float32 [h, w], about [-1, 1].

        Sampled over the whole frame once per frame (bilinear in face coordinates).
        """
        full = self._field_cache.get(name)
        if full is None:
            grid = self._fields[name]
            cells = grid.shape[0]
            # The field spans canonical [-110, 110] x [-120, 170].
            gx = np.clip((self.U + 110.0) * ((cells - 1) / 220.0), 0, cells - 1.001)
            gy = np.clip((self.V + 120.0) * ((cells - 1) / 290.0), 0, cells - 1.001)
            x0 = gx.astype(np.int32)
            y0 = gy.astype(np.int32)
            fx = gx - x0
            fy = gy - y0
            top = grid[y0, x0] * (1 - fx) + grid[y0, x0 + 1] * fx
            bottom = grid[y0 + 1, x0] * (1 - fx) + grid[y0 + 1, x0 + 1] * fx
            full = (top * (1 - fy) + bottom * fy).astype(np.float32)
            self._field_cache[name] = full
        return full[sl]

    def coverage(self, shapes, blur: float = 0.0, margin: float = 2.0):
        """Anti-aliased coverage of canonical-space shapes.

        ``shapes``: list of (kind, points, width) with kind "polygon" (filled)
        or "line" (open polyline of ``width`` canonical units).

        Returns (slices, alpha float32 [h, w]) or (None, None) if off-frame.
        """
        # Renders of one frame with and without an AU share most shapes: reuse them.
        key = (blur, margin) + tuple((kind, np.asarray(pts, dtype=np.float64).tobytes(), width) for kind, pts, width in shapes)
        cached = self._coverage_cache.get(key)
        if cached is not None:
            return cached
        result = self._coverage(shapes, blur, margin)
        self._coverage_cache[key] = result
        return result

    def _coverage(self, shapes, blur: float, margin: float):
        pixel_shapes = []
        lo = np.array([np.inf, np.inf])
        hi = -lo
        pad = margin + 3.0 * blur * self.scale
        for kind, pts, width in shapes:
            px = self.to_pixels(pts)
            pixel_shapes.append((kind, px, width * self.scale if width else 0.0))
            extra = pad + (width * self.scale / 2 if width else 0.0)
            lo = np.minimum(lo, px.min(axis=0) - extra)
            hi = np.maximum(hi, px.max(axis=0) + extra)
        x0, y0 = max(0, int(math.floor(lo[0]))), max(0, int(math.floor(lo[1])))
        x1, y1 = min(self.width, int(math.ceil(hi[0])) + 1), min(self.height, int(math.ceil(hi[1])) + 1)
        if x1 <= x0 or y1 <= y0:
            return None, None
        ss = SUPERSAMPLE
        canvas = Image.new("L", ((x1 - x0) * ss, (y1 - y0) * ss), 0)
        draw = ImageDraw.Draw(canvas)
        # pixel centre (x, y) -> supersampled canvas coordinate (x - x0 + 0.5) * ss
        for kind, px, width in pixel_shapes:
            pts = ((px - (x0 - 0.5, y0 - 0.5)) * ss).ravel().tolist()
            if kind == "polygon":
                draw.polygon(pts, fill=255)
            else:
                draw.line(pts, fill=255, width=max(1, int(round(width * ss))), joint="curve")
        canvas = canvas.reduce(ss)
        if blur > 0:
            canvas = canvas.filter(ImageFilter.GaussianBlur(blur * self.scale))
        alpha = np.asarray(canvas, dtype=np.float32) * (1.0 / 255.0)
        alpha.flags.writeable = False  # shared between renders through the cache
        return (slice(y0, y1), slice(x0, x1)), alpha

    # -- the AU-independent layers -----------------------------------------------
    def _draw_base(self) -> np.ndarray:
        ident = self.ident
        img = np.full((self.height, self.width), ident.background, dtype=np.float32)
        # A soft backdrop vignette so the background is not flat.
        img *= 1.0 - 0.12 * ((self.U / 200.0) ** 2 + (self.V / 200.0) ** 2)
        # Neck and shoulders.
        neck_w = ident.face_w * 0.62
        neck = np.array([[-neck_w, 40.0], [neck_w, 40.0], [neck_w * 1.05, 150.0], [ident.face_w * 2.2, 175.0],
                         [ident.face_w * 2.6, 260.0], [-ident.face_w * 2.6, 260.0], [-ident.face_w * 2.2, 175.0],
                         [-neck_w * 1.05, 150.0]])
        sl, alpha = self.coverage([("polygon", neck, 0)])
        if sl is not None:
            shade = ident.skin * (0.78 + 0.06 * self.field("skin", sl))
            paint(img, sl, alpha, shade)
        # Hair behind the head: an ellipse a little larger than the skull.
        hv = ident.hair_volume
        top = -ident.face_top - hv
        theta = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        half_w = ident.face_w + hv
        cy = (top + 30.0) / 2
        back = np.stack([half_w * np.cos(theta), cy + (30.0 - top) / 2 * np.sin(theta)], axis=1)
        if ident.hair_style == 2:  # longer hair down the sides
            back = np.concatenate([back[back[:, 1] < cy], [[half_w, 70.0], [-half_w, 70.0]]])
            back = back[np.argsort(np.arctan2(back[:, 1] - cy, back[:, 0]))]
        sl, alpha = self.coverage([("polygon", back, 0)])
        if sl is not None:
            paint(img, sl, alpha, ident.hair * (1.0 + 0.25 * self.field("fine", sl)))
        # Ears.
        for sign in (-1.0, 1.0):
            ear = np.stack([sign * (ident.face_w - 2 + 7 * np.abs(np.cos(theta))), 14 + 14 * np.sin(theta)], axis=1)
            sl, alpha = self.coverage([("polygon", ear, 0)])
            if sl is not None:
                paint(img, sl, alpha, ident.skin * 0.85)
        return img

    def lighting_field(self) -> np.ndarray:
        """Gain per pixel: a linear gradient across the frame times the global gain."""
        if self._light is not None:
            return self._light
        light = self.lighting
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        t = ((xs - self.width / 2) * math.cos(light.angle) + (ys - self.height / 2) * math.sin(light.angle)) / self.width
        self._light = (light.gain * (1.0 + 2.0 * light.strength * t)).astype(np.float32)
        return self._light


def paint(img: np.ndarray, sl, alpha: np.ndarray, value, opacity: float = 1.0) -> None:
    """Composite ``value`` (scalar or [h, w]) over ``img[sl]`` with coverage ``alpha``."""
    if opacity != 1.0:
        alpha = alpha * opacity
    region = img[sl]
    region += alpha * (value - region)


def darken(img: np.ndarray, sl, alpha: np.ndarray, amount: float) -> None:
    """Multiply ``img[sl]`` by ``1 - amount * alpha`` (shadows and furrows)."""
    img[sl] *= 1.0 - amount * alpha


def lighten(img: np.ndarray, sl, alpha: np.ndarray, amount: float) -> None:
    """Move ``img[sl]`` towards white by ``amount * alpha`` (highlights)."""
    region = img[sl]
    region += amount * alpha * (1.0 - region)


@functools.lru_cache(maxsize=16)
def _unit_circle(n: int) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 28) -> np.ndarray:
    return _unit_circle(n) * (rx, ry) + (cx, cy)


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float, n: int = 10) -> np.ndarray:
    t = np.linspace(start, stop, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def render(ctx: FrameContext, expr: Expression) -> np.ndarray:
    """Render one frame; float32 [H, W] in [0, 1], before sensor noise.

    Add ``ctx.noise`` and quantise to get the stored frame.
    """
    ident = ctx.ident
    pts = expr.landmarks
    img = ctx._base.copy()
    skin = ident.skin

    # --- face ------------------------------------------------------------------
    jaw = pts[0:17]
    psi = np.linspace(np.pi, 2 * np.pi, 15)[1:-1]
    forehead = np.stack([ident.face_w * np.cos(psi) * 1.0, -1.0 + (ident.face_top - 1.0) * np.sin(psi)], axis=1)
    outline = catmull_rom(np.concatenate([jaw, forehead[::-1]]), closed=True, samples=3)
    sl, alpha = ctx.coverage([("polygon", outline, 0)])
    U, V = ctx.U[sl], ctx.V[sl]
    # Rounded shading: darker towards the sides and the bottom of the face.
    r2 = (U / (ident.face_w * 1.05)) ** 2 + ((V - 15.0) / (ident.chin_y + 20.0)) ** 2
    shade = skin * (1.0 - 0.32 * np.clip(r2, 0, 1.3) ** 1.5) * (1.0 + 0.05 * ctx.field("skin", sl) + 0.02 * ctx.field("fine", sl))
    paint(img, sl, alpha, shade)

    # Eye sockets: soft shadows under the brows.
    for cx in (-ident.eye_sep / 2, ident.eye_sep / 2):
        sl, alpha = ctx.coverage([("polygon", _ellipse(cx, -4.0, ident.eye_w * 0.75, 9.0), 0)], blur=3.5)
        if sl is not None:
            darken(img, sl, alpha, 0.12)

    # Cheeks: a highlight that rises with AU6 (and a little with AU12).
    for index, (cheek, cx) in enumerate(zip(expr.cheek_raise, (-ident.eye_sep / 2 - 4, ident.eye_sep / 2 + 4))):
        cy = ident.nose_len * 0.62 - 7.0 * cheek
        sl, alpha = ctx.coverage([("polygon", _ellipse(cx, cy, 13.0, 9.0 + 1.5 * cheek), 0)], blur=3.0)
        if sl is not None:
            lighten(img, sl, alpha, 0.06 + 0.10 * cheek)
        if cheek > 0:
            # Bulge shadow under the raised cheek, and the infraorbital furrow.
            sl, alpha = ctx.coverage([("line", _arc(cx, cy + 2.0, 14.0, 10.0, 0.25 * np.pi, 0.75 * np.pi), 1.6)], blur=1.5)
            if sl is not None:
                darken(img, sl, alpha, 0.35 * cheek)
            eye = pts[36:42] if index == 0 else pts[42:48]
            lower = eye[[3, 4, 5, 0]] if index == 0 else eye[[0, 5, 4, 3]]
            furrow = lower + [0.0, 4.5]
            sl, alpha = ctx.coverage([("line", catmull_rom(furrow, closed=False, samples=4), 1.2)], blur=0.7)
            if sl is not None:
                darken(img, sl, alpha, 0.55 * cheek)

    # Forehead wrinkles: AU1 in the centre, AU2 above the outer brows.
    if expr.forehead_inner > 0:
        y_top = min(pts[19, 1], pts[24, 1])
        lines = [("line", _arc(0.0, y_top - 4.0 - 5.0 * j + 30.0, 16.0 - 2.0 * j, 30.0, 1.25 * np.pi, 1.75 * np.pi, 9), 1.3) for j in range(3)]
        sl, alpha = ctx.coverage(lines, blur=0.6)
        if sl is not None:
            darken(img, sl, alpha, 0.42 * expr.forehead_inner)
    if expr.forehead_outer > 0:
        for brow in (pts[17:20], pts[24:27]):
            cx = float(brow[:, 0].mean())
            y_top = float(brow[:, 1].min())
            lines = [("line", _arc(cx, y_top - 4.0 - 5.0 * j + 25.0, 11.0, 25.0, 1.3 * np.pi, 1.7 * np.pi, 8), 1.3) for j in range(2)]
            sl, alpha = ctx.coverage(lines, blur=0.6)
            if sl is not None:
                darken(img, sl, alpha, 0.42 * expr.forehead_outer)

    # Glabella furrows (AU4): vertical lines between the lowered brows.
    if expr.furrow > 0:
        y0 = float(min(pts[21, 1], pts[22, 1])) - 2.0
        lines = [("line", np.array([[sx * 2.5, y0], [sx * 3.5, 4.0]]), 1.4) for sx in (-1.0, 1.0)]
        lines.append(("line", np.array([[-6.0, y0 + 3.0], [6.0, y0 + 3.0]]) , 1.0))
        sl, alpha = ctx.coverage(lines, blur=0.7)
        if sl is not None:
            darken(img, sl, alpha, 0.55 * expr.furrow)

    # --- nose -----------------------------------------------------------------------
    L = ident.nose_len
    bridge_side = np.array([[-5.0, 4.0], [-6.5, 0.5 * L], [-9.0, 0.9 * L]])
    sl, alpha = ctx.coverage([("line", bridge_side, 3.0), ("line", bridge_side * [-1, 1], 2.0)], blur=2.0)
    if sl is not None:
        darken(img, sl, alpha, 0.16)
    tip = pts[30]
    sl, alpha = ctx.coverage([("polygon", _ellipse(tip[0], tip[1] - 2.0, 5.0, 4.0), 0)], blur=1.5)
    if sl is not None:
        lighten(img, sl, alpha, 0.18)
    nostril_line = pts[31:36]
    wings = []
    for side, (a, b) in ((-1.0, (31, 32)), (1.0, (35, 34))):
        wing = np.array([pts[a] + [0.0, 0.0], pts[a] + [side * 2.5, -5.5], pts[a] + [-side * 1.5, -9.0]])
        wings.append(("line", catmull_rom(wing, closed=False, samples=4), 1.2))
    sl, alpha = ctx.coverage([("line", catmull_rom(nostril_line, closed=False, samples=4), 1.3)] + wings, blur=0.6)
    if sl is not None:
        darken(img, sl, alpha, 0.42)
    for a in (32, 34):
        sl, alpha = ctx.coverage([("polygon", _ellipse(pts[a, 0], pts[a, 1] - 1.6, 3.2, 1.6, 12), 0)], blur=0.4)
        if sl is not None:
            darken(img, sl, alpha, 0.55)
    if expr.nose_wrinkle > 0:
        lines = []
        for j in range(3):
            y = pts[27, 1] + L * (0.18 + 0.13 * j)
            lines.append(("line", _arc(0.0, y + 8.0, 7.5 + j, 8.0, 1.2 * np.pi, 1.8 * np.pi, 7), 1.2))
        sl, alpha = ctx.coverage(lines, blur=0.5)
        if sl is not None:
            darken(img, sl, alpha, 0.5 * expr.nose_wrinkle)

    # Nasolabial folds: from the nose wings to beyond the lip corners.
    for side, depth, wing, corner in ((-1.0, expr.nasolabial[0], pts[31], pts[48]), (1.0, expr.nasolabial[1], pts[35], pts[54])):
        start = wing + [side * 4.0, -3.0]
        end = corner + [side * 5.0, 7.0]
        mid = (start + end) / 2 + [side * 4.0, 0.0]
        fold = catmull_rom(np.array([start, mid, end]), closed=False, samples=5)
        sl, alpha = ctx.coverage([("line", fold, 1.5 + 1.0 * min(depth, 1.5))], blur=1.0)
        if sl is not None:
            darken(img, sl, alpha, 0.10 + 0.35 * min(depth, 1.5))

    # --- chin and neck -------------------------------------------------------------
    lower_lip = pts[57]
    chin = pts[8]
    if expr.chin_boss > 0:
        cy = (lower_lip[1] + chin[1]) / 2 + 2.0
        sl, alpha = ctx.coverage([("polygon", _ellipse(chin[0], cy, 14.0, (chin[1] - lower_lip[1]) * 0.38), 0)], blur=1.5)
        if sl is not None:
            pattern = np.clip(ctx.field("boss", sl), 0.0, 1.0)
            darken(img, sl, alpha * (0.25 + pattern), 0.45 * expr.chin_boss)
        crease = np.array([[-10.0, 0.0], [0.0, 2.0], [10.0, 0.0]]) + [chin[0], lower_lip[1] + 5.0]
        sl, alpha = ctx.coverage([("line", catmull_rom(crease, closed=False, samples=4), 1.5)], blur=0.8)
        if sl is not None:
            darken(img, sl, alpha, 0.5 * expr.chin_boss)
    if expr.neck_cords > 0:
        cords = [("line", np.array([[sx * 14.0, chin[1] + 8.0], [sx * 22.0, chin[1] + 60.0]]), 2.2) for sx in (-1.0, 1.0)]
        sl, alpha = ctx.coverage(cords, blur=1.5)
        if sl is not None:
            darken(img, sl, alpha, 0.35 * expr.neck_cords)
            lighten(img, sl, np.roll(alpha, 2, axis=1), 0.2 * expr.neck_cords)
    if ident.beard > 0:
        beard = np.concatenate([pts[3:14], [pts[54] + [4.0, -8.0], pts[33] + [0.0, 3.0], pts[48] + [-4.0, -8.0]]])
        sl, alpha = ctx.coverage([("polygon", catmull_rom(beard, closed=True, samples=3), 0)], blur=2.0)
        if sl is not None:
            stubble = np.clip(0.5 + 0.8 * ctx.field("stubble", sl), 0.0, 1.0)
            darken(img, sl, alpha * stubble, ident.beard)

    # --- mouth ----------------------------------------------------------------------
    _draw_mouth(ctx, img, expr)
    if expr.lip_bulge > 0:
        for y, ry in ((pts[51, 1] - 5.0, 4.0), (pts[57, 1] + 5.0, 4.0)):
            sl, alpha = ctx.coverage([("polygon", _ellipse(pts[51, 0], y, ident.mouth_w * 0.35, ry), 0)], blur=1.5)
            if sl is not None:
                lighten(img, sl, alpha, 0.18 * expr.lip_bulge)
        line = np.array([pts[48] + [-2.0, 0.0], pts[54] + [2.0, 0.0]])
        sl, alpha = ctx.coverage([("line", line, 1.2)], blur=0.4)
        if sl is not None:
            darken(img, sl, alpha, 0.3 * expr.lip_bulge)
    for side, depth, corner in ((-1.0, expr.dimple[0], pts[48]), (1.0, expr.dimple[1], pts[54])):
        if depth > 0:
            dimple = _arc(corner[0] + side * 4.0, corner[1], 3.0, 6.0, -0.5 * np.pi, 0.5 * np.pi, 7)
            if side < 0:
                dimple[:, 0] = 2 * (corner[0] + side * 4.0) - dimple[:, 0]
            sl, alpha = ctx.coverage([("line", dimple, 2.0)], blur=0.9)
            if sl is not None:
                darken(img, sl, alpha, 0.8 * depth)

    # --- eyes and brows ------------------------------------------------------------
    for eye, side in ((pts[36:42], -1.0), (pts[42:48], 1.0)):
        _draw_eye(ctx, img, eye, side)
    for brow in (pts[17:22], pts[22:27][::-1]):  # both outer -> inner
        _draw_brow(ctx, img, brow)
    if expr.crows_feet[0] > 0 or expr.crows_feet[1] > 0:
        for strength, corner, side in ((expr.crows_feet[0], pts[36], -1.0), (expr.crows_feet[1], pts[45], 1.0)):
            if strength <= 0:
                continue
            lines = []
            for angle in (-0.45, 0.0, 0.45):
                direction = np.array([side * math.cos(angle), math.sin(angle)])
                start = corner + direction * 4.0
                lines.append(("line", np.array([start, start + direction * 7.0]), 1.1))
            sl, alpha = ctx.coverage(lines, blur=0.5)
            if sl is not None:
                darken(img, sl, alpha, 0.55 * strength)
    if ident.glasses:
        _draw_glasses(ctx, img, pts)

    # --- hair over the forehead -------------------------------------------------------
    _draw_hairline(ctx, img)

    img *= ctx.lighting_field()
    return img


def _draw_hairline(ctx: FrameContext, img: np.ndarray) -> None:
    ident = ctx.ident
    top = -ident.face_top - ident.hair_volume
    xs = np.linspace(-ident.face_w - ident.hair_volume, ident.face_w + ident.hair_volume, 15)
    rel = xs / (ident.face_w + ident.hair_volume)
    if ident.hair_style == 0:  # rounded hairline
        ys = -ident.hairline - 6.0 * (1 - rel**2) + 18.0 * rel**4
    elif ident.hair_style == 1:  # a fringe, lower in the middle
        ys = -ident.hairline + 8.0 - 4.0 * np.abs(np.sin(5 * rel)) + 24.0 * rel**4
    else:  # receding temples
        ys = -ident.hairline - 4.0 + 14.0 * np.abs(rel) ** 1.5
    edge = np.stack([xs, ys], axis=1)
    cap = _arc(0.0, ys[0], ident.face_w + ident.hair_volume, ys[0] - top, np.pi, 2 * np.pi, 16)
    shape = np.concatenate([edge[::-1], cap[1:-1]])
    sl, alpha = ctx.coverage([("polygon", shape, 0)], blur=0.8)
    if sl is not None:
        paint(img, sl, alpha, ident.hair * (1.0 + 0.3 * ctx.field("fine", sl)))


def _draw_brow(ctx: FrameContext, img: np.ndarray, brow: np.ndarray) -> None:
    """A tapered brow along 5 landmarks (outer -> inner): thin outer tail, full inner head."""
    ident = ctx.ident
    curve = catmull_rom(brow, closed=False, samples=4)
    thickness = ident.brow_thick * np.linspace(0.45, 1.0, len(curve))
    tangent = np.gradient(curve, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-9
    normal *= np.sign(normal[:, 1:2] + 1e-9)  # point downwards
    upper = curve - normal * thickness[:, None] * 0.5
    lower = curve + normal * thickness[:, None] * 0.5
    shape = np.concatenate([upper, lower[::-1]])
    sl, alpha = ctx.coverage([("polygon", shape, 0)], blur=0.5)
    if sl is not None:
        tone = ident.brow_tone * (1.0 + 0.4 * ctx.field("fine", sl))
        paint(img, sl, alpha, tone, opacity=0.92)


def _draw_eye(ctx: FrameContext, img: np.ndarray, eye: np.ndarray, side: float) -> None:
    """Sclera, iris and pupil clipped to the lids, lash line, lid crease."""
    ident = ctx.ident
    outline = catmull_rom(eye, closed=True, samples=5)
    sl, sclera = ctx.coverage([("polygon", outline, 0)], margin=6.0)
    if sl is None:
        return
    centre = eye.mean(axis=0)
    U, V = ctx.U[sl], ctx.V[sl]
    # The iris looks straight ahead: its centre stays at the neutral eye centre height.
    iris_c = np.array([centre[0], 0.0])
    dist = np.sqrt((U - iris_c[0]) ** 2 + (V - iris_c[1]) ** 2)
    px = 1.0 / ctx.scale
    iris = np.clip((ident.iris_r - dist) / px + 0.5, 0.0, 1.0)
    pupil = np.clip((ident.iris_r * 0.45 - dist) / px + 0.5, 0.0, 1.0)
    white = 0.82 + 0.1 * ident.skin
    value = white * (1 - iris) + ident.iris_tone * iris * (1 - pupil) + 0.03 * pupil
    # Shade the sclera near the corners.
    value = value * (1.0 - 0.18 * np.clip(np.abs(U - centre[0]) / (ident.eye_w / 2), 0, 1) ** 2)
    paint(img, sl, sclera, value)
    # Both eyes list corner, two upper-lid points, corner, two lower-lid points.
    upper = eye[[0, 1, 2, 3]]
    lower = eye[[3, 4, 5, 0]]
    lash = catmull_rom(upper, closed=False, samples=5)
    sl2, alpha = ctx.coverage([("line", lash, 1.6)], blur=0.3)
    if sl2 is not None:
        paint(img, sl2, alpha, 0.06, opacity=0.9)
    sl2, alpha = ctx.coverage([("line", catmull_rom(lower, closed=False, samples=5), 0.8)], blur=0.3)
    if sl2 is not None:
        darken(img, sl2, alpha, 0.35)
    # Lid crease: follows the upper lid, a few units above it.
    crease = upper + [0.0, -4.0]
    crease[[0, 3], 1] += 3.0
    sl2, alpha = ctx.coverage([("line", catmull_rom(crease, closed=False, samples=5), 1.0)], blur=0.6)
    if sl2 is not None:
        darken(img, sl2, alpha, 0.3)


def _draw_mouth(ctx: FrameContext, img: np.ndarray, expr: Expression) -> None:
    ident = ctx.ident
    pts = expr.landmarks
    outer = catmull_rom(pts[48:60], closed=True, samples=4)
    lip_value = ident.skin * (1.0 - ident.lip_tone)
    sl, alpha = ctx.coverage([("polygon", outer, 0)], margin=3.0)
    if sl is None:
        return
    U, V = ctx.U[sl], ctx.V[sl]
    inner = pts[60:68]
    mouth_line = np.interp(U, inner[[0, 1, 2, 3, 4], 0], inner[[0, 1, 2, 3, 4], 1])
    # Upper lip a little darker than the lower (light from above).
    value = np.where(V < mouth_line, lip_value * 0.88, lip_value * 1.02)
    paint(img, sl, alpha, value)
    gap = float(np.max(inner[[7, 6, 5], 1] - inner[[1, 2, 3], 1]))
    if gap > 0.35:
        inner_curve = catmull_rom(inner, closed=True, samples=4)
        sl_i, mouth = ctx.coverage([("polygon", inner_curve, 0)], margin=3.0)
        if sl_i is not None:
            U, V = ctx.U[sl_i], ctx.V[sl_i]
            px = 1.0 / ctx.scale
            upper_y = np.interp(U, inner[[0, 1, 2, 3, 4], 0], inner[[0, 1, 2, 3, 4], 1])
            lower_y = np.interp(U, inner[[0, 7, 6, 5, 4], 0], inner[[0, 7, 6, 5, 4], 1])
            tooth_h = 4.5
            upper_teeth = np.clip((upper_y + tooth_h - V) / px + 0.5, 0.0, 1.0)
            lower_teeth = np.clip((V - (lower_y - 2.5)) / px + 0.5, 0.0, 1.0) * 0.85
            width = max(ident.mouth_w * 0.42, 1.0)
            fade = np.clip(1.0 - np.abs(U) / width, 0.0, 1.0) ** 0.5
            teeth = np.clip(upper_teeth + lower_teeth, 0.0, 1.0) * fade
            # Gaps between the teeth.
            tooth_edges = np.abs(np.sin(U * np.pi / 4.2)) > 0.12
            value = 0.06 * (1 - teeth) + 0.86 * teeth * tooth_edges + 0.5 * teeth * ~tooth_edges
            paint(img, sl_i, mouth, value)
    # The line between the lips (or the lips' inner edge when open).
    # Two halves meeting at the midline, so one lip corner moving (contempt)
    # leaves the other half of the line where it was.
    halves = [("line", catmull_rom(inner[[0, 1, 2]], closed=False, samples=4), 1.0),
              ("line", catmull_rom(inner[[2, 3, 4]], closed=False, samples=4), 1.0)]
    sl, alpha = ctx.coverage(halves, blur=0.4)
    if sl is not None:
        darken(img, sl, alpha, 0.6)
    # Lower-lip highlight.
    highlight = _ellipse(pts[57, 0], (pts[57, 1] + pts[66, 1]) / 2, ident.mouth_w * 0.14, 1.3, 12)
    sl, alpha = ctx.coverage([("polygon", highlight, 0)], blur=0.8)
    if sl is not None:
        lighten(img, sl, alpha, 0.16)


def _draw_glasses(ctx: FrameContext, img: np.ndarray, pts: np.ndarray) -> None:
    ident = ctx.ident
    shapes = []
    for cx in (-ident.eye_sep / 2, ident.eye_sep / 2):
        rim = _ellipse(cx, 1.0, ident.eye_w * 0.78, 11.0, 24)
        shapes.append(("line", np.concatenate([rim, rim[:1]]), 1.4))
        outer = cx + np.sign(cx) * ident.eye_w * 0.78
        shapes.append(("line", np.array([[outer, -2.0], [np.sign(cx) * (ident.face_w - 1.0), -3.0]]), 1.4))
    shapes.append(("line", np.array([[-ident.eye_sep / 2 + ident.eye_w * 0.78, -1.0], [0.0, -3.0],
                                     [ident.eye_sep / 2 - ident.eye_w * 0.78, -1.0]]), 1.4))
    sl, alpha = ctx.coverage(shapes, blur=0.3)
    if sl is not None:
        paint(img, sl, alpha, 0.08, opacity=0.9)
