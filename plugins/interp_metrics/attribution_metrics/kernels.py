"""Vectorised numeric kernels shared by the attribution metrics (torch, batched).

Imported lazily by the metric classes, so this module may import torch.
All functions work on a batch: the first dimension is the image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import SALIENCY_MODES


def saliency_maps(attributions: torch.Tensor, mode: str = "abs") -> torch.Tensor:
    """Attributions [N, C, H, W] (or [N, H, W]) -> importance maps float64 [N, H, W].

    Channels are summed first (the signed evidence of a pixel), then ``mode``
    applies: ``abs`` = |map|, ``positive`` = max(map, 0), ``signed`` = map.
    """
    maps = attributions.detach().to(torch.float64)
    if maps.ndim == 4:
        maps = maps.sum(dim=1)
    if maps.ndim != 3:
        raise ValueError(f"attributions must be [N, C, H, W] or [N, H, W], got {tuple(attributions.shape)}")
    if mode == "abs":
        return maps.abs()
    if mode == "positive":
        return maps.clamp(min=0)
    if mode == "signed":
        return maps
    raise ValueError(f"saliency mode must be one of {SALIENCY_MODES}, got {mode!r}")


def defined_maps(attributions: torch.Tensor) -> torch.Tensor:
    """bool [N]: the map can be scored: every value finite and the channel-summed map not constant.

    A constant map (all zero, say) orders no pixel before another and points
    nowhere, and a NaN or inf pixel makes every sum, rank and correlation
    meaningless; such maps are *undefined* for every metric (see :mod:`.base`).
    """
    values = attributions.detach()
    flat = values.reshape(values.shape[0], -1)
    finite = torch.isfinite(flat).all(dim=1)
    summed = saliency_maps(torch.where(torch.isfinite(values), values, torch.zeros_like(values)), "signed")
    return finite & has_variation(summed)


def row_generators(rows: torch.Tensor, seed: int = 0) -> list[torch.Generator]:
    """One torch.Generator per row of ``rows`` [N, ...], seeded from sha256(seed, the row's float64 bytes).

    So a row (a map, an image) gets the same draws whatever batch or position
    it is in, and different rows get independent draws.
    """
    import numpy as np

    from interpret_core.util.fingerprint import content_seed

    flat = rows.detach().reshape(rows.shape[0], -1).to(torch.float64).cpu()
    return [torch.Generator().manual_seed(content_seed(np.ascontiguousarray(flat[i].numpy()).tobytes(), seed))
            for i in range(flat.shape[0])]


def tie_keys(maps: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Uniform [0, 1) keys float64 [N, H*W] that order tied pixels at random, seeded per map (:func:`row_generators`)."""
    pixels = maps[0].numel() if maps.shape[0] else 0
    keys = [torch.rand(pixels, generator=g, dtype=torch.float64) for g in row_generators(maps, seed)]
    return (torch.stack(keys) if keys else torch.zeros(0, pixels, dtype=torch.float64)).to(maps.device)


def descending_order(maps: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Pixel indices [N, H*W] from most to least important; ties in a seeded random order.

    Raster order for ties would let the image layout decide (a map that is
    zero on 94 % of its pixels deletes its zeros top row first); the order
    among tied pixels is drawn with :func:`tie_keys` instead.
    """
    flat = maps.reshape(maps.shape[0], -1)
    shuffle = torch.argsort(tie_keys(maps, seed), dim=1)  # a random permutation per map
    shuffled = torch.gather(flat, 1, shuffle)
    order = torch.sort(shuffled, dim=1, descending=True, stable=True).indices
    return torch.gather(shuffle, 1, order)


def expected_top_k_inside(values: torch.Tensor, inside: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Expected count float64 [N] of ``inside`` pixels among the ``k`` largest ``values``, ties in random order.

    Args:
        values: [N, P] importance per pixel.
        inside: bool [N, P] pixels of the region.
        k: int [N] how many pixels are taken (0 <= k <= P).

    Pixels above the k-th largest value are all taken; the tied group at it
    fills the remaining ``k - above`` places, each tied pixel with the same
    chance, so it adds ``(k - above) * tied_inside / tied``: exact, no sampling.
    """
    values = values.to(torch.float64)
    n, p = values.shape
    k = k.to(torch.int64).clamp(0, p)
    ordered = torch.sort(values, dim=1, descending=True).values
    kth = ordered.gather(1, (k - 1).clamp(min=0).view(-1, 1))  # [N, 1]
    above = values > kth
    tied = values == kth
    places = (k - above.sum(dim=1)).to(torch.float64)
    tied_inside = (tied & inside).sum(dim=1).to(torch.float64)
    expected = (above & inside).sum(dim=1).to(torch.float64) + places * tied_inside / tied.sum(dim=1).clamp(min=1)
    return torch.where(k > 0, expected, torch.zeros_like(expected))


def dilate(masks: torch.Tensor, radius: float) -> torch.Tensor:
    """bool [N, H, W]: pixels within Euclidean distance ``radius`` px of a ``True`` pixel of ``masks``."""
    masks = masks.to(torch.bool)
    reach = int(math.floor(float(radius)))
    if reach < 1:
        return masks.clone()
    offsets = torch.arange(-reach, reach + 1, dtype=torch.float64)
    disk = (offsets.view(-1, 1) ** 2 + offsets.view(1, -1) ** 2 <= float(radius) ** 2).to(torch.float32)
    grown = F.conv2d(masks[:, None].to(torch.float32), disk[None, None].to(masks.device), padding=reach)
    return grown[:, 0] > 0.5


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..P of each row of ``values`` [N, P], ties sharing their average rank (float64).

    Matches ``scipy.stats.rankdata(method="average")`` row by row.
    """
    values = values.to(torch.float64)
    n, p = values.shape
    sorted_values, order = torch.sort(values, dim=1, stable=True)
    # A new tie group starts where a sorted value differs from its left neighbour.
    starts = torch.ones_like(sorted_values, dtype=torch.bool)
    starts[:, 1:] = sorted_values[:, 1:] != sorted_values[:, :-1]
    group = torch.cumsum(starts.to(torch.int64), dim=1) - 1  # [N, P], 0-based group id per row
    group = group + torch.arange(n, device=values.device)[:, None] * p  # unique across rows
    position = torch.arange(1, p + 1, dtype=torch.float64, device=values.device).expand(n, p)
    flat_group = group.reshape(-1)
    first = torch.full((n * p,), float(p + 1), dtype=torch.float64, device=values.device)
    last = torch.zeros(n * p, dtype=torch.float64, device=values.device)
    first = first.scatter_reduce(0, flat_group, position.reshape(-1), reduce="amin")
    last = last.scatter_reduce(0, flat_group, position.reshape(-1), reduce="amax")
    mean_rank_sorted = ((first + last) / 2)[flat_group].reshape(n, p)
    ranks = torch.empty_like(mean_rank_sorted)
    ranks.scatter_(1, order, mean_rank_sorted)
    return ranks


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Pearson correlation of [N, P] tensors; NaN where a row is constant."""
    a = a.to(torch.float64)
    b = b.to(torch.float64)
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    denominator = torch.sqrt((a * a).sum(dim=1) * (b * b).sum(dim=1))
    numerator = (a * b).sum(dim=1)
    out = numerator / denominator
    return torch.where(denominator > 0, out, torch.full_like(out, float("nan")))


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Spearman rank correlation of [N, ...] tensors -> float64 [N].

    Average ranks for ties (as ``scipy.stats.spearmanr``); NaN where a row is constant.
    """
    a = a.reshape(a.shape[0], -1)
    b = b.reshape(b.shape[0], -1)
    return pearson(average_ranks(a), average_ranks(b))


def gaussian_kernel1d(sigma: float, truncate: float = 4.0, dtype=torch.float64) -> torch.Tensor:
    """Normalised 1-D Gaussian of radius ``int(truncate * sigma + 0.5)`` (as scipy.ndimage)."""
    radius = int(truncate * float(sigma) + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=dtype)
    kernel = torch.exp(-0.5 * (x / float(sigma)) ** 2)
    return kernel / kernel.sum()


def _separable(images: torch.Tensor, kernel: torch.Tensor, padding_mode: str | None) -> torch.Tensor:
    """Convolve [N, C, H, W] with ``kernel`` along H then W, channel by channel."""
    n, c, h, w = images.shape
    radius = kernel.numel() // 2
    flat = images.reshape(n * c, 1, h, w)
    kernel = kernel.to(dtype=flat.dtype, device=flat.device)
    if padding_mode is not None:
        flat = F.pad(flat, (radius, radius, radius, radius), mode=padding_mode)
    flat = F.conv2d(flat, kernel.view(1, 1, -1, 1))
    flat = F.conv2d(flat, kernel.view(1, 1, 1, -1))
    return flat.reshape(n, c, flat.shape[-2], flat.shape[-1])


def gaussian_blur(images: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Gaussian blur of [N, C, H, W] with mirror borders (``scipy.ndimage`` mode ``"mirror"``).

    Where the kernel is wider than the image, borders are replicated instead
    (mirror padding needs the image to be larger than the radius).
    """
    kernel = gaussian_kernel1d(sigma, truncate, dtype=images.dtype)
    radius = kernel.numel() // 2
    mode = "reflect" if radius < min(images.shape[-2:]) else "replicate"
    return _separable(images, kernel, mode)


def ssim(
    a: torch.Tensor,
    b: torch.Tensor,
    data_range: float = 1.0,
    window: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Mean structural similarity (Wang et al. 2004) of image pairs [N, H, W] -> float64 [N].

    Gaussian window of ``window`` px and ``sigma`` px; statistics over the
    positions where the window fits inside the image (no padding). Images
    smaller than the window use a window as large as the image allows.
    """
    a = a.to(torch.float64)[:, None]
    b = b.to(torch.float64)[:, None]
    size = min(window, a.shape[-2], a.shape[-1])
    size -= 1 - size % 2  # odd
    x = torch.arange(size, dtype=torch.float64) - size // 2
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()

    def blur(t: torch.Tensor) -> torch.Tensor:
        return _separable(t, kernel, None)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return index.mean(dim=(1, 2, 3))


def normalise_unit_range(maps: torch.Tensor) -> torch.Tensor:
    """Scale each non-negative map [N, H, W] by its maximum into [0, 1]; all-zero maps stay 0."""
    peak = maps.reshape(maps.shape[0], -1).amax(dim=1).clamp(min=torch.finfo(maps.dtype).tiny)
    return maps / peak.view(-1, *([1] * (maps.ndim - 1)))


def has_variation(maps: torch.Tensor) -> torch.Tensor:
    """bool [N]: the map is not constant."""
    flat = maps.reshape(maps.shape[0], -1)
    return flat.amax(dim=1) > flat.amin(dim=1)


def trapezoid(curve: torch.Tensor) -> torch.Tensor:
    """Area under curves [N, K+1] sampled at x = 0, 1/K, ..., 1 -> [N]."""
    steps = curve.shape[1] - 1
    return (curve[:, 1:] + curve[:, :-1]).sum(dim=1) / (2 * steps)



def target_outputs(model, total: int, make_batch, image_of, targets: torch.Tensor, forward_batch: int,
                   probability: bool) -> torch.Tensor:
    """The explained class's output float64 [total] for ``total`` perturbed images made batch by batch.

    Args:
        make_batch: index LongTensor [b] -> images [b, C, H, W] (built lazily, one forward batch at a time).
        image_of: LongTensor [total]: which input (row of ``targets``) each perturbed image comes from.
        probability: softmax probability (True) or logit (False).
    """
    device = next((p.device for p in model.parameters()), None)
    out = torch.empty(total, dtype=torch.float64)
    with torch.no_grad():
        for first in range(0, total, forward_batch):
            index = torch.arange(first, min(first + forward_batch, total))
            batch = make_batch(index)
            logits = model(batch if device is None else batch.to(device)).to(torch.float64)
            values = torch.softmax(logits, dim=1) if probability else logits
            chosen = targets[image_of[index]].to(values.device).view(-1, 1)
            out[index] = values.gather(1, chosen).view(-1).cpu()
    return out


def gini(values: torch.Tensor) -> torch.Tensor:
    """Gini index float64 [N] of non-negative rows [N, P] (Hurley & Rickard 2009): 0 = uniform, -> 1 = one pixel."""
    values = torch.sort(values.to(torch.float64), dim=1).values
    p = values.shape[1]
    rank = torch.arange(1, p + 1, dtype=torch.float64, device=values.device)
    return ((2 * rank - p - 1) * values).sum(dim=1) / (p * values.sum(dim=1))


def entropy(values: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) float64 [N] of non-negative rows [N, P] as distributions (normalised to sum 1)."""
    values = values.to(torch.float64)
    share = values / values.sum(dim=1, keepdim=True)
    return -torch.special.xlogy(share, share).sum(dim=1)


def roc_auc(values: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """ROC AUC float64 [N] of scores [N, P] for labels ``positive`` bool [N, P]; ties count 1/2 (Mann-Whitney).

    NaN where a row has no positive or no negative pixel.
    """
    ranks = average_ranks(values)
    n_pos = positive.sum(dim=1).to(torch.float64)
    n_neg = positive.shape[1] - n_pos
    u = (ranks * positive).sum(dim=1) - n_pos * (n_pos + 1) / 2
    auc = u / (n_pos * n_neg)
    return torch.where((n_pos > 0) & (n_neg > 0), auc, torch.full_like(auc, float("nan")))
