"""Face geometry: identities, neutral 68-point landmarks, and AU displacements.

Coordinates here are *canonical face coordinates*: the origin is the midpoint
between the eye centres, x points to the image right, y points down, and one
unit is one pixel of a nominal, unrotated face in the 320x245 frame. The
renderer maps them to pixels with the frame's pose (roll, scale, shift).

Landmarks follow the iBUG 300-W / Multi-PIE 68-point layout (0-based):
jaw 0-16 (image left to right), brows 17-21 and 22-26 (outer to inner on the
image-left brow, inner to outer on the image-right one), nose bridge 27-30,
nostrils 31-35, eyes 36-41 (image left) and 42-47 (image right), outer lips
48-59, inner lips 60-67. Every drawn feature is built from these points, so
the landmarks lie exactly on what is drawn.

"Left" below always means the image left (the subject's right).
"""

from __future__ import annotations

import dataclasses

import numpy as np

#: AU number -> what the renderer does with it (used by the docs and the CLI).
AU_DESCRIPTIONS: dict[int, str] = {
    1: "inner brows raised; wrinkles in the centre of the forehead",
    2: "outer brows raised; wrinkles above the outer brows",
    4: "brows lowered and drawn together; vertical furrows between the brows",
    5: "upper lids raised (more sclera above the iris)",
    6: "cheeks raised, lower lids pushed up; crow's feet, infraorbital furrow",
    7: "lids tightened: lower lids raised and straightened, upper lids lowered a little",
    9: "nose wrinkled: nasal wings and upper lip raised, inner brows lowered; wrinkles across the nose",
    10: "upper lip raised; nasolabial folds deepened",
    11: "nasolabial folds deepened",
    12: "lip corners pulled up and out; nasolabial folds deepened",
    14: "lip corners tightened inwards and up a little; dimples beside the corners",
    15: "lip corners pulled down",
    16: "lower lip pulled down",
    17: "chin and lower lip pushed up; chin boss and mentolabial furrow",
    18: "lips puckered (mouth narrowed, lips pushed out)",
    20: "lips stretched sideways and flattened",
    21: "neck tightened: cords on the neck",
    22: "lips funnelled: mouth narrowed and rounded open",
    23: "lips tightened: red of the lips narrowed",
    24: "lips pressed together; bulges above and below the lips",
    25: "lips parted",
    26: "jaw dropped",
    27: "mouth stretched wide open",
}

#: AUs the renderer draws. Any other AU number is accepted but changes nothing.
RENDERED_AUS: tuple[int, ...] = tuple(sorted(AU_DESCRIPTIONS))


@dataclasses.dataclass(frozen=True)
class Identity:
    """One subject's face: geometry in canonical units, grey tones in [0, 1]."""

    scale: float
    eye_sep: float
    eye_w: float
    eye_h: float
    canthal_tilt: float
    iris_r: float
    brow_height: float
    brow_gap: float
    brow_len: float
    brow_arch: float
    brow_thick: float
    nose_len: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip_upper: float
    lip_lower: float
    face_w: float
    face_top: float
    chin_y: float
    jaw_square: float
    hairline: float
    hair_style: int
    hair_volume: float
    skin: float
    hair: float
    brow_tone: float
    lip_tone: float
    iris_tone: float
    background: float
    glasses: bool
    beard: float
    texture_seed: int

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Identity":
        u = rng.uniform
        eye_sep = u(48.0, 56.0)
        nose_len = u(35.0, 44.0)
        mouth_y = nose_len + u(17.0, 23.0)
        skin = u(0.42, 0.80)
        hair = float(np.clip(skin - u(0.25, 0.55), 0.04, 0.55)) if rng.random() < 0.85 else u(0.6, 0.85)
        return cls(
            scale=u(0.92, 1.06),
            eye_sep=eye_sep,
            eye_w=u(22.0, 26.0),
            eye_h=u(9.5, 12.0),
            canthal_tilt=u(-1.0, 1.5),
            iris_r=u(4.8, 5.6),
            brow_height=u(15.0, 20.0),
            brow_gap=u(7.0, 11.0),
            brow_len=u(28.0, 36.0),
            brow_arch=u(1.5, 5.0),
            brow_thick=u(3.6, 6.0),
            nose_len=nose_len,
            nose_w=u(24.0, 32.0),
            mouth_y=mouth_y,
            mouth_w=u(42.0, 52.0),
            lip_upper=u(3.5, 6.0),
            lip_lower=u(4.5, 8.0),
            face_w=u(62.0, 74.0),
            face_top=u(84.0, 96.0),
            chin_y=mouth_y + u(32.0, 42.0),
            jaw_square=u(2.0, 3.2),
            hairline=u(48.0, 66.0),
            hair_style=int(rng.integers(0, 3)),
            hair_volume=u(4.0, 14.0),
            skin=skin,
            hair=hair,
            brow_tone=float(np.clip(min(hair, skin - 0.2) + u(-0.05, 0.05), 0.03, 0.5)),
            lip_tone=u(0.18, 0.30),
            iris_tone=u(0.08, 0.35),
            background=u(0.2, 0.85),
            glasses=bool(rng.random() < 0.18),
            beard=float(u(0.25, 0.5)) if rng.random() < 0.15 else 0.0,
            texture_seed=int(rng.integers(0, 2**31 - 1)),
        )


def _jaw(ident: Identity, drop: float = 0.0, chin_up: float = 0.0) -> np.ndarray:
    """17 jaw points from the left ear, round the chin, to the right ear."""
    y0 = -1.0
    phi = np.linspace(0.0, np.pi, 17)
    exponent = 2.0 / ident.jaw_square
    c, s = np.cos(phi), np.sin(phi)
    x = -ident.face_w * np.sign(c) * np.abs(c) ** exponent
    height = ident.chin_y - y0
    y = y0 + height * np.abs(s) ** exponent
    # Narrow the jaw towards the chin (faces are egg-shaped, not elliptical).
    x *= 1.0 - 0.18 * np.abs(s) ** 2
    # Jaw drop (AU26/27) swings the lower jaw down; most at the chin.
    lower = np.clip((y - y0) / height, 0.0, 1.0) ** 1.5
    y = y + (drop - chin_up) * lower
    return np.stack([x, y], axis=1)


def neutral_landmarks(ident: Identity) -> np.ndarray:
    """The identity's neutral 68 landmarks, float64 [68, 2], canonical units."""
    pts = np.zeros((68, 2))
    pts[0:17] = _jaw(ident)
    # Brows: 17 (outer) -> 21 (inner) on the left, mirrored on the right.
    t = np.linspace(1.0, 0.0, 5)  # 1 = outer end, 0 = inner end
    bx = ident.brow_gap / 2 + ident.brow_len * t
    by = -ident.brow_height - ident.brow_arch * np.sin(np.pi * (0.25 + 0.6 * t)) + 3.0 * t
    pts[17:22] = np.stack([-bx, by], axis=1)
    pts[22:27] = np.stack([bx[::-1], by[::-1]], axis=1)
    # Nose bridge and tip, then the lower nostril line.
    L = ident.nose_len
    pts[27:31] = np.stack([np.zeros(4), np.array([0.05, 0.36, 0.68, 1.0]) * L + 1.0], axis=1)
    nx = ident.nose_w / 2 * np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    ny = L + np.array([0.0, 3.0, 4.5, 3.0, 0.0])
    pts[31:36] = np.stack([nx, ny], axis=1)
    # Eyes: corner, two upper-lid points, corner, two lower-lid points.
    w, h, tilt = ident.eye_w, ident.eye_h, ident.canthal_tilt
    for start, cx, sign in ((36, -ident.eye_sep / 2, -1.0), (42, ident.eye_sep / 2, 1.0)):
        outer = (cx + sign * w / 2, 0.6 - tilt)
        inner = (cx - sign * w / 2, 0.6)
        up_o = (cx + sign * w / 6, -h / 2)
        up_i = (cx - sign * w / 6, -h / 2)
        lo_o = (cx + sign * w / 6, h * 0.42)
        lo_i = (cx - sign * w / 6, h * 0.42)
        if sign < 0:  # 36 outer, 37, 38, 39 inner, 40, 41
            pts[start : start + 6] = [outer, up_o, up_i, inner, lo_i, lo_o]
        else:  # 42 inner, 43, 44, 45 outer, 46, 47
            pts[start : start + 6] = [inner, up_i, up_o, outer, lo_o, lo_i]
    # Lips: outer contour 48-59 clockwise from the left corner, inner 60-67.
    hw, my, lu, ll = ident.mouth_w / 2, ident.mouth_y, ident.lip_upper, ident.lip_lower
    outer_x = hw * np.array([-1.0, -0.62, -0.25, 0.0, 0.25, 0.62, 1.0, 0.62, 0.25, 0.0, -0.25, -0.62])
    outer_y = my + np.array([0.0, -0.85 * lu, -1.1 * lu, -0.8 * lu, -1.1 * lu, -0.85 * lu, 0.0,
                             0.8 * ll, 1.0 * ll, 1.05 * ll, 1.0 * ll, 0.8 * ll])
    pts[48:60] = np.stack([outer_x, outer_y], axis=1)
    inner_x = hw * np.array([-0.86, -0.42, 0.0, 0.42, 0.86, 0.42, 0.0, -0.42])
    inner_y = my + np.array([0.0, -0.25, -0.25, -0.25, 0.0, 0.25, 0.25, 0.25])
    pts[60:68] = np.stack([inner_x, inner_y], axis=1)
    return pts


@dataclasses.dataclass
class Expression:
    """Landmarks plus the texture strengths the AUs add (all strengths >= 0).

    ``aus`` maps AU -> amplitude in [0, 1]; ``sides`` gives per-AU weights
    (left, right) so unilateral AUs (contempt) act on one side only.
    """

    landmarks: np.ndarray
    furrow: float = 0.0  # AU4 glabellar furrows
    forehead_inner: float = 0.0  # AU1 forehead wrinkles, centre
    forehead_outer: float = 0.0  # AU2 forehead wrinkles, sides
    nose_wrinkle: float = 0.0  # AU9
    crows_feet: tuple[float, float] = (0.0, 0.0)  # AU6, per side
    cheek_raise: tuple[float, float] = (0.0, 0.0)  # AU6 (+ some AU12), per side
    nasolabial: tuple[float, float] = (0.0, 0.0)  # AU9/10/11/12, per side
    dimple: tuple[float, float] = (0.0, 0.0)  # AU14, per side
    chin_boss: float = 0.0  # AU17
    lip_bulge: float = 0.0  # AU24
    neck_cords: float = 0.0  # AU21
    jaw_drop: float = 0.0  # AU26/27, canonical units


def _side_weights(x: np.ndarray, left: float, right: float, softness: float = 6.0) -> np.ndarray:
    """Blend per-side weights by landmark x (midline points get the mean)."""
    t = np.clip(0.5 + x / (2 * softness), 0.0, 1.0)
    return left * (1 - t) + right * t


def express(ident: Identity, aus: dict[int, float], sides: dict[int, tuple[float, float]] | None = None) -> Expression:
    """Move the neutral landmarks by each AU's amplitude (0..1) as FACS describes.

    Displacements add up; a few constraints afterwards keep lids and lips
    from crossing.
    """
    sides = sides or {}
    base = neutral_landmarks(ident)
    pts = base.copy()
    expr = Expression(landmarks=pts)

    def amp(au: int) -> float:
        return float(aus.get(au, 0.0))

    def side(au: int) -> tuple[float, float]:
        left, right = sides.get(au, (1.0, 1.0))
        return amp(au) * left, amp(au) * right

    L_BROW, R_BROW = np.arange(17, 22), np.arange(22, 27)
    inner_w = np.array([0.0, 0.08, 0.35, 0.8, 1.0])  # 17..21, outer -> inner
    outer_w = np.array([1.0, 0.85, 0.5, 0.15, 0.0])
    brows = np.concatenate([L_BROW, R_BROW])
    w_inner = np.concatenate([inner_w, inner_w[::-1]])
    w_outer = np.concatenate([outer_w, outer_w[::-1]])
    towards_mid = -np.sign(base[brows, 0])

    # --- upper face -------------------------------------------------------
    a = amp(1)
    if a:
        pts[brows, 1] -= 8.0 * a * w_inner
        expr.forehead_inner = a
    a = amp(2)
    if a:
        pts[brows, 1] -= 8.0 * a * w_outer
        expr.forehead_outer = a
    a = amp(4)
    if a:
        pts[brows, 1] += a * (3.0 + 4.0 * w_inner)
        pts[brows, 0] += towards_mid * 4.5 * a * w_inner
        # Lowered brows push the upper lids down a little.
        pts[[37, 38, 43, 44], 1] += 1.2 * a
        expr.furrow = a
    upper_lids = [37, 38, 43, 44]
    lower_lids = [40, 41, 46, 47]
    a = amp(5)
    if a:
        pts[upper_lids, 1] -= 3.8 * a
        pts[[36, 39, 42, 45], 1] -= 0.4 * a
    a6l, a6r = side(6)
    if a6l or a6r:
        weights = _side_weights(base[lower_lids, 0], a6l, a6r)
        pts[lower_lids, 1] -= 2.6 * weights
        # Cheeks push up the outer eye corners slightly.
        pts[[36, 45], 1] -= 0.8 * np.array([a6l, a6r])
        expr.crows_feet = (a6l, a6r)
        expr.cheek_raise = (a6l, a6r)
    a = amp(7)
    if a:
        pts[lower_lids, 1] -= 3.2 * a
        pts[upper_lids, 1] += 1.2 * a
        pts[[36, 39, 42, 45], 1] -= 0.3 * a
    # --- nose and mid face -------------------------------------------------
    a = amp(9)
    if a:
        pts[31:36, 1] -= 3.0 * a
        pts[[31, 35], 0] += np.array([-1.5, 1.5]) * a  # nostrils flare
        pts[[29, 30], 1] -= np.array([1.0, 2.0]) * a
        pts[[21, 22], 1] += 3.0 * a
        pts[[20, 23], 1] += 1.5 * a
        pts[[21, 22], 0] += np.array([1.5, -1.5]) * a
        pts[[49, 50, 51, 52, 53], 1] -= 2.0 * a
        pts[[61, 62, 63], 1] -= 1.2 * a
        pts[lower_lids, 1] -= 1.0 * a
        expr.nose_wrinkle = a
        expr.nasolabial = (expr.nasolabial[0] + 0.6 * a, expr.nasolabial[1] + 0.6 * a)
    a = amp(10)
    if a:
        lift = np.array([0.7, 1.0, 0.9, 1.0, 0.7])
        pts[49:54, 1] -= 5.0 * a * lift
        pts[61:64, 1] -= 3.5 * a
        pts[31:36, 1] -= 1.0 * a
        expr.nasolabial = (expr.nasolabial[0] + 0.8 * a, expr.nasolabial[1] + 0.8 * a)
    a = amp(11)
    if a:
        expr.nasolabial = (expr.nasolabial[0] + 0.7 * a, expr.nasolabial[1] + 0.7 * a)
    # --- lip corners --------------------------------------------------------
    corners_l = np.array([48, 60])
    corners_r = np.array([54, 64])
    near_l = np.array([49, 59, 61, 67])
    near_r = np.array([53, 55, 63, 65])

    def move_corners(dx_out: float, dy: float, left: float, right: float, near: float = 0.45) -> None:
        for idx, nidx, sgn, k in ((corners_l, near_l, -1.0, left), (corners_r, near_r, 1.0, right)):
            pts[idx, 0] += sgn * dx_out * k
            pts[idx, 1] += dy * k
            pts[nidx, 0] += sgn * dx_out * k * near
            pts[nidx, 1] += dy * k * near

    a12l, a12r = side(12)
    if a12l or a12r:
        move_corners(5.0, -6.5, a12l, a12r)
        # The lower lip follows the corners up and flattens into a smile.
        pts[[56, 57, 58], 1] -= 1.0 * (a12l + a12r) / 2
        expr.nasolabial = (expr.nasolabial[0] + a12l, expr.nasolabial[1] + a12r)
        expr.cheek_raise = (expr.cheek_raise[0] + 0.4 * a12l, expr.cheek_raise[1] + 0.4 * a12r)
    a14l, a14r = side(14)
    if a14l or a14r:
        move_corners(-3.5, -4.5, a14l, a14r, near=0.45)
        expr.dimple = (a14l, a14r)
    a = amp(15)
    if a:
        l15, r15 = side(15)
        move_corners(0.5, 7.0, l15, r15, near=0.5)
        pts[[55, 59], 1] += 1.5 * a
    a = amp(16)
    if a:
        pts[[56, 57, 58], 1] += 4.0 * a
        pts[[55, 59], 1] += 2.5 * a
        pts[[65, 66, 67], 1] += 3.5 * a
    a = amp(17)
    if a:
        pts[[55, 56, 57, 58, 59], 1] -= np.array([1.5, 2.5, 3.0, 2.5, 1.5]) * a
        pts[[65, 66, 67], 1] -= 2.0 * a
        pts[[48, 54], 1] += 1.0 * a  # the raised lower lip bends the mouth down
        expr.chin_boss = a
    a = amp(18)
    if a:
        move_corners(-8.0, 0.0, a, a, near=0.6)
        pts[[50, 51, 52], 1] -= 1.0 * a
        pts[[56, 57, 58], 1] += 1.0 * a
    a = amp(20)
    if a:
        move_corners(7.0, 1.0, a, a, near=0.55)
        pts[[50, 51, 52], 1] += 1.3 * a
        pts[[56, 57, 58], 1] -= 1.6 * a
    a = amp(21)
    if a:
        expr.neck_cords = a
    a = amp(22)
    if a:
        move_corners(-6.0, 0.0, a, a, near=0.5)
        pts[[61, 62, 63], 1] -= 2.0 * a
        pts[[65, 66, 67], 1] += 2.0 * a
        pts[[50, 51, 52], 1] -= 1.5 * a
        pts[[56, 57, 58], 1] += 1.5 * a
    a = amp(23)
    if a:
        pts[[49, 50, 51, 52, 53], 1] += np.array([0.8, 1.6, 1.4, 1.6, 0.8]) * a
        pts[[55, 56, 57, 58, 59], 1] -= np.array([1.0, 2.0, 2.0, 2.0, 1.0]) * a
        move_corners(-2.0, 0.0, a, a, near=0.3)
    a = amp(24)
    if a:
        pts[[49, 50, 51, 52, 53], 1] += np.array([1.0, 2.0, 1.8, 2.0, 1.0]) * a
        pts[[55, 56, 57, 58, 59], 1] -= np.array([1.2, 2.4, 2.4, 2.4, 1.2]) * a
        expr.lip_bulge = a
    # --- opening the mouth --------------------------------------------------
    a = amp(25)
    if a:
        pts[[61, 62, 63], 1] -= 1.5 * a
        pts[[65, 66, 67], 1] += 3.0 * a
        pts[[55, 56, 57, 58, 59], 1] += np.array([2.0, 3.0, 3.0, 3.0, 2.0]) * a
        pts[[49, 50, 51, 52, 53], 1] -= 0.8 * a
    drop = 9.0 * amp(26) + 18.0 * amp(27)
    if drop:
        lower = np.array([55, 56, 57, 58, 59, 65, 66, 67])
        shape = np.array([0.75, 0.95, 1.0, 0.95, 0.75, 0.9, 1.0, 0.9])
        pts[lower, 1] += drop * shape
        pts[[48, 54, 60, 64], 1] += 0.2 * drop
        narrow = 0.22 * drop * (amp(27) > 0) + 0.05 * drop
        move_corners(-narrow, 0.0, 1.0, 1.0, near=0.5)
        pts[[61, 62, 63], 1] -= 0.06 * drop
        expr.jaw_drop = drop
    chin_up = 3.5 * amp(17)
    if drop or chin_up:
        pts[0:17] = _jaw(ident, drop=drop, chin_up=chin_up)
    _constrain(pts)
    return expr


def _constrain(pts: np.ndarray) -> None:
    """Keep lids and lips from crossing (in place)."""
    for upper, lower in (((37, 41), (38, 40)), ((43, 47), (44, 46))):
        for u, lo in (upper, lower):
            gap = pts[lo, 1] - pts[u, 1]
            if gap < 1.2:  # eyes never close completely in this model
                mid = (pts[lo, 1] + pts[u, 1]) / 2
                pts[u, 1], pts[lo, 1] = mid - 0.6, mid + 0.6
    for u, lo in ((61, 67), (62, 66), (63, 65)):
        if pts[lo, 1] < pts[u, 1]:
            mid = (pts[lo, 1] + pts[u, 1]) / 2
            pts[u, 1] = pts[lo, 1] = mid
    # The outer lip contour stays outside the inner one.
    for outer, inner in ((50, 61), (51, 62), (52, 63)):
        pts[outer, 1] = min(pts[outer, 1], pts[inner, 1] - 1.0)
    for outer, inner in ((58, 67), (57, 66), (56, 65)):
        pts[outer, 1] = max(pts[outer, 1], pts[inner, 1] + 1.0)
    # The inner lip corners sit level with the outer ones.
    pts[60, 1], pts[64, 1] = pts[48, 1], pts[54, 1]
