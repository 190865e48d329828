"""``interp explain PHOTO...``: from photos to an explanation of the model's prediction.

For every photo: the face is found and aligned by the photo data-set plugin
(the configured default, ``default("photo-dataset")``), the model (by
default ``default("explain-model")``, a model trained on real faces)
predicts its expression, the attribution method maps the evidence for the
explained class over the aligned face, and every AU region (from the
landmarks, the CK+ reader's rules) gets its share of the map's relevance.

Share of relevance of a region R: ``sum(|map| in R) / sum(|map|)``, over the
aligned crop at the model's input resolution. A map that ignored the face's
structure would give each region about its share of the crop's area; that
is the region's **chance level**, reported beside it (``area_fraction``), and
``ratio = share / area_fraction`` (> 1: relevance concentrates there).
Regions overlap (e.g. AU1 and AU2), so shares do not add up to 1.

Writes into ``out``: ``<photo stem>.png`` (the aligned face | the map over it
| the map alone with the five AU regions of largest share outlined and
named), ``<photo stem>.json`` (every region's share), and
``explain.json`` with every photo and every skipped file. All writes are atomic.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from interpret_core.api.errors import DataError, UsageError
from interpret_core.util.io import to_jsonable, write_json

if TYPE_CHECKING:  # pragma: no cover
    from interpret_core.api.interfaces import Attribution, Dataset, Model

__all__ = ["ExplainConfig", "explain_photos", "region_shares", "outline"]

#: Pixels per crop pixel in the PNG.
SCALE = 4
#: AU regions outlined in the PNG: those with the largest shares of relevance.
DRAWN_REGIONS = 5


@dataclasses.dataclass
class ExplainConfig:
    """What ``interp explain`` does; the defaults are the CLI's."""

    photos: Sequence[str]
    out: str
    method: str | None = None  # attribution spec; None: the default method
    method_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    model: str | None = None  # None: the model of --weights' card, else the configured explain model
    weights: str | None = None
    model_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    dataset_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    target: str = "predicted"  # "predicted" or a class name of the model
    device: str = "cpu"  # where the model runs (``--device``, :func:`interpret_core.nn.device.resolve_device`)


def region_shares(relevance: np.ndarray, regions: dict[int, np.ndarray]) -> dict[int, dict[str, float]]:
    """{AU: share, area_fraction, ratio} of ``|relevance|`` [H, W] in each bool [H, W] region."""
    magnitude = np.abs(np.asarray(relevance, dtype=np.float64))
    total = float(magnitude.sum())
    shares: dict[int, dict[str, float]] = {}
    for au, mask in sorted(regions.items()):
        mask = np.asarray(mask, dtype=bool)
        area = float(mask.mean())
        share = float(magnitude[mask].sum() / total) if total > 0 else float("nan")
        shares[au] = {"share": share, "area_fraction": area, "ratio": share / area if area > 0 else float("nan")}
    return shares


def outline(mask: np.ndarray) -> np.ndarray:
    """The boundary pixels of a bool [H, W] mask (inside, with an outside 4-neighbour)."""
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~interior


_PALETTE = [(0, 200, 255), (0, 255, 120), (255, 220, 0), (255, 120, 255), (120, 160, 255), (255, 160, 60)]


def _figure(image: np.ndarray, relevance: np.ndarray, regions: dict[int, np.ndarray], title: str, signed: bool) -> np.ndarray:
    """[aligned face | map over the face | map alone, ``regions`` outlined and named], uint8 RGB."""
    from PIL import Image, ImageDraw

    from interpret_core.render.imaging import diverging_rgb, grey_to_rgb, heat_rgb, overlay, upscale

    face = upscale(grey_to_rgb(image), SCALE)
    over = upscale(overlay(image, relevance, signed=signed), SCALE)
    alone = upscale(diverging_rgb(relevance) if signed else heat_rgb(np.abs(relevance)), SCALE)
    colours = {au: _PALETTE[number % len(_PALETTE)] for number, au in enumerate(regions)}
    for au, mask in regions.items():
        edge = upscale(outline(mask)[..., None].astype(np.uint8), SCALE)[..., 0] > 0
        alone[edge] = colours[au]
    gap = np.full((face.shape[0], 6, 3), 255, np.uint8)
    body = np.concatenate([face, gap, over, gap, alone], axis=1)
    canvas = Image.new("RGB", (body.shape[1], body.shape[0] + 18), (255, 255, 255))
    canvas.paste(Image.fromarray(body), (0, 18))
    draw = ImageDraw.Draw(canvas)
    draw.text((2, 3), title, fill=(0, 0, 0))
    offset = 2 * (face.shape[1] + 6)
    for au, mask in regions.items():
        rows, cols = np.nonzero(mask)
        if rows.size:
            draw.text((offset + int(cols.min()) * SCALE + 2, 18 + int(rows.min()) * SCALE + 1), f"AU{au}", fill=colours[au])
    return np.asarray(canvas)


def explain_sample(model: Model, method: Attribution, image: np.ndarray, landmarks: np.ndarray, regions: dict[int, np.ndarray],
                   target: str = "predicted") -> dict[str, Any]:
    """Prediction, map and region shares for one aligned grey crop [H, W] in [0, 1]."""
    import torch
    import torch.nn.functional as F

    from interpret_core.api.class_names import canonical_emotion

    inputs = model.to_input(image[None])
    with torch.no_grad():
        probabilities = torch.softmax(model.module(inputs), dim=1)[0]
    predicted = int(probabilities.argmax())
    if target == "predicted":
        index = predicted
    elif str(target).isdigit():
        index = int(target)
        if index >= len(model.class_names):
            raise UsageError(f"--target {target}: model {model.name!r} has classes 0..{len(model.class_names) - 1}", "use a class index or name")
    else:
        wanted = canonical_emotion(target)
        matches = [i for i, name in enumerate(model.class_names) if canonical_emotion(name) == wanted]
        if not matches:
            raise UsageError(f"--target {target!r} is not a class of model {model.name!r}", f"its classes: {', '.join(model.class_names)}")
        index = matches[0]
    attribution = method.attribute(model.module, inputs, index).detach()
    relevance = attribution.sum(dim=1, keepdim=True)  # [1, 1, h, w]: channels summed
    if relevance.shape[-2:] != image.shape:
        relevance = F.interpolate(relevance, size=image.shape, mode="bilinear", align_corners=False)
    relevance_map = relevance[0, 0].cpu().numpy().astype(np.float32)
    return {
        "predicted": model.class_names[predicted],
        "probability": float(probabilities[predicted]),
        "probabilities": {name: float(p) for name, p in zip(model.class_names, probabilities.tolist())},
        "explained_class": model.class_names[index],
        "relevance": relevance_map,
        "au_regions": region_shares(relevance_map, regions),
    }


def explain_photos(config: ExplainConfig, model: Model | None = None, warn: Any = None) -> dict[str, Any]:
    """Run the explanation of every photo of ``config``; returns what ``explain.json`` holds."""
    from interpret_core.registry.loader import get_attribution, open_dataset
    from interpret_core.registry.options import parse_method_spec
    from interpret_core.render.imaging import save_png
    from interpret_core.registry.defaults import default
    from interpret_core.workflows.setup import ModelChoice, load_model

    photos = [os.fspath(p) for p in config.photos]
    if not photos:
        raise UsageError("no photos given", "e.g. interp explain face.jpg --out explained/")
    missing = [p for p in photos if not Path(p).is_file()]
    if missing:
        raise UsageError(f"photo {missing[0]} not found", "give image files (png, jpg, ...)")
    spec = config.method or default("method")
    name, options = parse_method_spec(spec)
    method = get_attribution(name, **{**options, **config.method_options})
    if model is None:
        model = load_model(ModelChoice(name=config.model or (None if config.weights else default("explain-model")),
                                       weights=config.weights, options=dict(config.model_options), device=config.device))
    dataset: Dataset = open_dataset(default("photo-dataset"), None,
                                    {"files": photos, "all_regions": True, **config.dataset_options})
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    stems: dict[str, int] = {}
    for index in range(len(dataset)):
        sample = dataset[index]
        explained = explain_sample(model, method, sample.image, sample.landmarks, sample.au_regions or {}, config.target)
        stem = Path(sample.path or f"photo{index}").stem
        stems[stem] = stems.get(stem, 0) + 1
        if stems[stem] > 1:
            stem = f"{stem}-{stems[stem]}"
        ranked = sorted(explained["au_regions"].items(), key=lambda item: -item[1]["share"])
        # The PNG outlines the regions with the largest shares (all of them would hide the map); the JSON has every one.
        drawn = {au: (sample.au_regions or {})[au] for au, _ in ranked[:DRAWN_REGIONS]}
        top = ", ".join(f"AU{au} {v['share']:.2f} (chance {v['area_fraction']:.2f})" for au, v in ranked[:3])
        title = f"{stem}: {explained['predicted']} {explained['probability']:.2f} | {spec} for {explained['explained_class']} | {top}"
        save_png(out / f"{stem}.png", _figure(sample.image, explained.pop("relevance"), drawn, title, method.signed))
        record = {
            "photo": sample.path,
            "png": f"{stem}.png",
            **explained,
            "au_regions": {f"AU{au}": values for au, values in ranked},
            "landmarks": sample.landmarks,
        }
        write_json(out / f"{stem}.json", to_jsonable(record))
        results.append(record)
    summary = {
        "command": "explain",
        "out": str(out),
        "model": {"name": model.name, "weights": config.weights, "trained": model.card is not None},
        "method": spec,
        "target": config.target,
        "relevance": "share of |map| per AU region of the aligned crop; area_fraction = the region's share of the crop (chance level); ratio = share / area_fraction",
        "photos": results,
        "skipped": list(getattr(dataset, "skipped", [])),
        "notes": list(getattr(dataset, "notes", [])),
    }
    write_json(out / "explain.json", to_jsonable(summary))
    if not results:
        raise DataError(f"no face found in any of the {len(photos)} photo(s)", f"see {out / 'explain.json'} for why each was skipped")
    return summary
