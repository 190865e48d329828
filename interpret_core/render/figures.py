"""Figures drawn with matplotlib: every function returns PNG bytes.

Deterministic for the same arrays: the Agg backend, one fixed font (DejaVu
Sans, which matplotlib ships), no timestamps and no ``Software`` entry in the
PNG metadata. Signed maps use a diverging colour map centred on zero
(``RdBu_r``); one-sided quantities use a perceptually uniform one
(``viridis``/``magma``). Every figure has a title, labelled axes or a colour
bar, and says in its title which definition it shows.

Shapes: images and maps are float [H, W] in the model input's pixel grid;
masks are bool [H, W]; positions are (row, col) in pixels.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "Tile",
    "OUTLINE_COLOUR",
    "VERDICT_COLOURS",
    "au_tiles_figure",
    "distance_heatmap",
    "agreement_chart",
    "layer_summary",
    "unit_density",
    "metric_bars",
    "rank_heatmap",
    "method_examples",
    "cluster_order",
]

#: colour of the AU region outline on every face (yellow: distinct from the red/blue projection colours)
OUTLINE_COLOUR = "#ffd400"
#: verdict -> colour, shared by every chart
VERDICT_COLOURS = {
    "localised": "#1a9850",
    "elsewhere": "#fdae61",
    "none": "#bdbdbd",
    "untestable": "#756bb1",
}
_DPI = 100


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "axes.titlesize": 10,
        "figure.dpi": _DPI,
        "savefig.dpi": _DPI,
        "svg.hashsalt": "interp",
        "path.simplify": False,
    })
    return plt


def _png(fig) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None}, bbox_inches=None)
    plt.close(fig)
    return buffer.getvalue()


@dataclasses.dataclass
class Tile:
    """One face of a per-AU figure.

    Attributes:
        image: float [H, W] in [0, 1], what the network saw.
        projection: float [H, W], the unit's projection (signed).
        mask: bool [H, W] where the AU is (ground truth or landmark region), or None.
        activation: the unit's maximal activation on this image.
        caption: a short text under the tile (e.g. subject and sequence).
    """

    image: np.ndarray
    projection: np.ndarray
    mask: np.ndarray | None
    activation: float
    caption: str = ""


#: enlargement of each face in the tile figures (outlines stay one pixel thin at this scale)
_ZOOM = 3


def _tile_rgb(tile: Tile, zoom: int = _ZOOM) -> tuple[np.ndarray, bool]:
    """(uint8 RGB [H*zoom, W*zoom, 3], whether the map was finite) of one tile, composited in numpy.

    The projection is scaled by its own maximum |value| onto ``RdBu_r`` centred
    on 0; its opacity follows its magnitude (the face shows through where it is
    weak); the AU region's boundary pixels are painted :data:`OUTLINE_COLOUR`.
    One image per tile keeps a figure of a dozen faces to one axes per row.
    """
    import matplotlib
    from matplotlib.colors import to_rgb
    from scipy.ndimage import binary_erosion

    projection = np.asarray(tile.projection, dtype=np.float64)
    finite = np.isfinite(projection)
    projection = np.where(finite, projection, 0.0)  # an undefined map (NaN/inf) is drawn blank and labelled
    peak = float(np.abs(projection).max()) if projection.size else 0.0
    scaled = projection / peak if peak > 0 else np.zeros_like(projection)
    alpha = np.clip(np.abs(scaled) * 3.0, 0, 0.9)[..., None]
    colours = matplotlib.colormaps["RdBu_r"]((scaled + 1) / 2)[..., :3]
    face = np.repeat(np.clip(np.asarray(tile.image, dtype=np.float64), 0, 1)[..., None], 3, axis=2)
    rgb = face * (1 - alpha) + colours * alpha
    rgb = np.repeat(np.repeat(rgb, zoom, axis=0), zoom, axis=1)
    if tile.mask is not None and tile.mask.any():
        mask = np.repeat(np.repeat(np.asarray(tile.mask, dtype=bool), zoom, axis=0), zoom, axis=1)
        edge = mask & ~binary_erosion(mask, iterations=1, border_value=0)
        rgb[edge] = to_rgb(OUTLINE_COLOUR)
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8), bool(finite.all())


def _draw_tile(ax, tile: Tile) -> None:
    """One tile on its own axes (the bench's example grid)."""
    rgb, finite = _tile_rgb(tile)
    ax.imshow(rgb, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if not finite:
        ax.text(0.5, 0.5, "non-finite map", ha="center", va="center", fontsize=6, color="#a40000", transform=ax.transAxes)


def au_tiles_figure(title: str, with_au: Sequence[Tile], without_au: Sequence[Tile], *, method: str = "projection") -> bytes:
    """The per-AU figure: the unit's top faces with the AU (row 1) and without it (row 2, the contrast).

    Each tile: the face, the unit's ``method`` projection over it (scaled by its
    own maximum |value|, diverging map centred on 0, one colour bar for all), the
    AU's region outlined in :data:`OUTLINE_COLOUR`, the unit's activation above
    and the tile's caption (subject, sequence) below.
    """
    from matplotlib.colors import Normalize

    plt = _pyplot()
    columns = max(len(with_au), len(without_au), 1)
    rows = [("with the AU", list(with_au)), ("without the AU\n(contrast)", list(without_au))]
    fig, axes = plt.subplots(2, 1, figsize=(1.35 * columns + 1.6, 3.9), squeeze=False)
    gap = 6
    for r, (label, tiles) in enumerate(rows):
        ax = axes[r][0]
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, fontsize=8)
        for side in ax.spines.values():
            side.set_visible(False)
        if not tiles:
            ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
            continue
        images = [_tile_rgb(tile) for tile in tiles]
        height, width = images[0][0].shape[:2]
        strip = np.full((height, columns * width + (columns - 1) * gap, 3), 255, dtype=np.uint8)
        for c, (rgb, finite) in enumerate(images):
            x = c * (width + gap)
            strip[:, x : x + width] = rgb
            ax.text(x + width / 2, -3, f"act {tiles[c].activation:.3g}", ha="center", va="bottom", fontsize=7)
            ax.text(x + width / 2, height + 3, tiles[c].caption, ha="center", va="top", fontsize=6)
            if not finite:
                ax.text(x + width / 2, height / 2, "non-finite map", ha="center", fontsize=6, color="#a40000")
        ax.imshow(strip, interpolation="nearest")
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.08, right=0.87, top=0.86, bottom=0.07, hspace=0.42)
    norm = Normalize(-1, 1)
    bar_axes = fig.add_axes([0.9, 0.15, 0.02, 0.62])
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="RdBu_r"), cax=bar_axes)
    bar.set_label(f"{method} / max |{method}|", fontsize=7)
    return _png(fig)


def cluster_order(matrix: np.ndarray) -> np.ndarray:
    """Column order that puts similar columns (units) side by side: average-linkage leaves on correlation distance."""
    from scipy.cluster.hierarchy import leaves_list, linkage

    columns = np.asarray(matrix, dtype=np.float64).T
    if columns.shape[0] < 3:
        return np.arange(columns.shape[0])
    columns = np.nan_to_num(columns)
    flat = columns.std(axis=1) == 0
    if flat.all():
        return np.arange(columns.shape[0])
    # constant columns have no correlation distance: order the others, append them
    order = leaves_list(linkage(columns[~flat] + 0.0, method="average", metric="euclidean"))
    kept = np.flatnonzero(~flat)[order]
    return np.concatenate([kept, np.flatnonzero(flat)])


def distance_heatmap(
    matrix: np.ndarray,
    au_labels: Sequence[str],
    unit_labels: Sequence[str],
    *,
    title: str,
    value_label: str,
    selected: Sequence[tuple[int, int]] = (),
    signed: bool = True,
) -> bytes:
    """AU x unit heatmap (rows AUs, columns units) of one layer's distance; ``selected`` (row, col) cells are boxed."""
    from matplotlib.colors import Normalize

    plt = _pyplot()
    values = np.asarray(matrix, dtype=np.float64)
    rows, cols = values.shape
    fig, ax = plt.subplots(figsize=(min(2.0 + 0.16 * cols, 14.0), 1.2 + 0.22 * rows))
    peak = float(np.nanmax(np.abs(values))) if values.size and np.isfinite(values).any() else 1.0
    peak = peak or 1.0
    norm = Normalize(-peak, peak) if signed else Normalize(0, peak)
    image = ax.imshow(values, aspect="auto", cmap="RdBu_r" if signed else "viridis", norm=norm, interpolation="nearest")
    ax.set_yticks(range(rows), labels=list(au_labels), fontsize=7)
    step = max(1, cols // 32)
    ax.set_xticks(range(0, cols, step), labels=[unit_labels[i] for i in range(0, cols, step)], rotation=90, fontsize=6)
    ax.set_xlabel("unit (clustered by their AU profiles)")
    ax.set_ylabel("AU (by face region)")
    for r, c in selected:
        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.4))
    bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label(value_label)
    ax.set_title(title)
    fig.tight_layout()
    return _png(fig)


def agreement_chart(rows: Sequence[Mapping[str, Any]], *, title: str) -> bytes:
    """Per AU: held-out spatial agreement (dot, with its interval) against chance (black tick), coloured by verdict.

    Each row: ``label``, ``agreement`` (or None), ``low``/``high`` (interval or None),
    ``chance`` (or None), ``null`` (shuffled-mask null or None), ``verdict``.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.0, 1.1 + 0.26 * max(len(rows), 1)))
    for y, row in enumerate(rows):
        colour = VERDICT_COLOURS.get(str(row.get("verdict")), "#636363")
        value = row.get("agreement")
        if value is not None:
            low, high = row.get("low"), row.get("high")
            if low is not None and high is not None:
                ax.plot([low, high], [y, y], color=colour, linewidth=2.2, solid_capstyle="butt")
            ax.plot([value], [y], "o", color=colour, markersize=5, markeredgecolor="black", markeredgewidth=0.5)
        if row.get("chance") is not None:
            ax.plot([row["chance"]], [y], "|", color="black", markersize=11, markeredgewidth=1.6)
        if row.get("null") is not None:
            ax.plot([row["null"]], [y], "x", color="#555555", markersize=5)
    ax.set_yticks(range(len(rows)), labels=[str(row.get("label")) for row in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("held-out spatial agreement (share of images whose unit peak falls in the AU region)")
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=c, label=v) for v, c in VERDICT_COLOURS.items()]
    handles += [plt.Line2D([], [], marker="|", linestyle="", color="black", markersize=10, label="chance"),
                plt.Line2D([], [], marker="x", linestyle="", color="#555555", label="shuffled-mask null")]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title)
    fig.tight_layout()
    return _png(fig)


def layer_summary(per_layer: Mapping[str, Sequence[float]], counts: Mapping[str, int], *, title: str, value_label: str) -> bytes:
    """Per layer: the distribution over AUs of the layer's best distance (box), and how many AUs select a unit there."""
    plt = _pyplot()
    layers = list(per_layer)
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.2, 2.8), gridspec_kw={"width_ratios": [3, 2]})
    data = [np.asarray(per_layer[layer], dtype=float) for layer in layers]
    if layers:
        left.boxplot(data, tick_labels=layers, showfliers=True)
        for x, values in enumerate(data, start=1):
            jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(len(values))
            left.plot(x + jitter, values, ".", color="#3182bd", alpha=0.7)
    left.set_ylabel(value_label)
    left.set_xlabel("layer")
    left.set_title("best unit per AU, by layer")
    right.bar(layers, [counts.get(layer, 0) for layer in layers], color="#6baed6")
    right.set_ylabel("AUs whose selected unit is here")
    right.set_xlabel("layer")
    right.set_title("selected units")
    fig.suptitle(title)
    fig.tight_layout()
    return _png(fig)


def unit_density(
    mean_face: np.ndarray,
    positions: np.ndarray,
    regions: Mapping[str, np.ndarray],
    *,
    title: str,
    bandwidth: float = 1.5,
) -> bytes:
    """Where a unit fires across the data set: density of its peak positions (rows, cols; [n, 2]) over the mean face.

    ``regions``: label -> bool [H, W] (e.g. the share of images in which each AU's
    region covers a pixel, thresholded at one half), outlined and labelled.
    """
    from scipy.ndimage import gaussian_filter

    plt = _pyplot()
    height, width = mean_face.shape
    density = np.zeros((height, width), dtype=np.float64)
    points = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
    inside = (points[:, 0] >= 0) & (points[:, 0] < height) & (points[:, 1] >= 0) & (points[:, 1] < width)
    np.add.at(density, (points[inside, 0], points[inside, 1]), 1.0)
    density = gaussian_filter(density, bandwidth)
    density /= max(density.sum(), 1e-12)
    fig, ax = plt.subplots(figsize=(3.6, 3.3))
    ax.imshow(mean_face, cmap="gray", vmin=0, vmax=1)
    image = ax.imshow(density, cmap="magma", alpha=np.clip(density / (density.max() or 1) * 1.2, 0, 0.85))
    palette = ["#ffd400", "#00e5ff", "#7CFC00", "#ff66cc", "#ffffff", "#ff8c00"]
    for n, (label, mask) in enumerate(regions.items()):
        if mask.any():
            colour = palette[n % len(palette)]
            ax.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=1.0)
            ys, xs = np.nonzero(mask)
            ax.text(float(xs.mean()), float(ys.min()) - 1, label, color=colour, fontsize=6, ha="center", va="bottom")
    ax.set_xticks([])
    ax.set_yticks([])
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    bar.set_label("share of peaks (smoothed)")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return _png(fig)


def metric_bars(
    methods: Sequence[str],
    means: Sequence[float | None],
    lows: Sequence[float | None],
    highs: Sequence[float | None],
    baselines: Mapping[str, float],
    *,
    title: str,
    value_label: str,
) -> bytes:
    """One bench metric: a bar per method (mean, 95% CI whiskers); baselines as dashed reference lines."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(methods) + 1.8) + 1.6, 3.1))
    xs = np.arange(len(methods))
    values = np.array([np.nan if m is None else m for m in means], dtype=float)
    errors = np.array([[0 if (m is None or lo is None) else m - lo for m, lo in zip(means, lows)],
                       [0 if (m is None or hi is None) else hi - m for m, hi in zip(means, highs)]], dtype=float)
    ax.bar(xs, np.nan_to_num(values), yerr=errors, color="#6baed6", edgecolor="#08519c", capsize=2)
    for n, (name, value) in enumerate(baselines.items()):
        ax.axhline(value, linestyle="--", color=["#d62728", "#2ca02c", "#9467bd", "#8c564b"][n % 4], linewidth=1, label=f"{name}")
    ax.set_xticks(xs, labels=list(methods), rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(value_label)
    if baselines:
        ax.legend(fontsize=7, title="baselines", title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _png(fig)


def rank_heatmap(ranks: np.ndarray, methods: Sequence[str], metrics: Sequence[str], *, title: str) -> bytes:
    """Method x metric ranks (1 = best in that metric's direction; NaN = undefined), numbers written in the cells."""
    plt = _pyplot()
    values = np.asarray(ranks, dtype=float)
    fig, ax = plt.subplots(figsize=(1.6 + 0.55 * len(metrics), 1.0 + 0.3 * len(methods)))
    image = ax.imshow(values, cmap="viridis_r", aspect="auto", interpolation="nearest")
    for r in range(values.shape[0]):
        for c in range(values.shape[1]):
            if np.isfinite(values[r, c]):
                ax.text(c, r, f"{values[r, c]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if values[r, c] <= np.nanmax(values) / 2 else "black")
    ax.set_xticks(range(len(metrics)), labels=list(metrics), rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(methods)), labels=list(methods), fontsize=7)
    bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label("rank (1 = best)")
    ax.set_title(title)
    fig.tight_layout()
    return _png(fig)


def method_examples(
    images: Sequence[np.ndarray],
    maps: Mapping[str, Sequence[np.ndarray]],
    masks: Sequence[np.ndarray | None],
    *,
    title: str,
    captions: Sequence[str] = (),
) -> bytes:
    """Attribution maps of every method (rows) on the same faces (columns), AU regions outlined."""
    from matplotlib.colors import Normalize

    plt = _pyplot()
    methods = list(maps)
    columns = len(images)
    fig, axes = plt.subplots(len(methods) + 1, columns, figsize=(1.15 * columns + 1.6, 1.15 * (len(methods) + 1) + 0.6),
                             squeeze=False)
    norm = Normalize(-1, 1)
    for c, image in enumerate(images):
        ax = axes[0][c]
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        if masks[c] is not None and masks[c].any():
            ax.contour(masks[c].astype(float), levels=[0.5], colors=[OUTLINE_COLOUR], linewidths=1.0)
        ax.set_xticks([])
        ax.set_yticks([])
        if c < len(captions):
            ax.set_title(captions[c], fontsize=6)
    axes[0][0].set_ylabel("face", fontsize=7)
    for r, method in enumerate(methods, start=1):
        for c in range(columns):
            _draw_tile(axes[r][c], Tile(images[c], np.asarray(maps[method][c], dtype=float), masks[c], float("nan")))
        axes[r][0].set_ylabel(method, fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.22, right=0.88, top=0.9, bottom=0.03, wspace=0.05, hspace=0.12)
    bar_axes = fig.add_axes([0.9, 0.1, 0.02, 0.7])
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="RdBu_r"), cax=bar_axes)
    bar.set_label("attribution / max |attribution| (per map)", fontsize=7)
    return _png(fig)
