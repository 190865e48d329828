"""Held-out AU -> unit mapping: selection on some subjects, evidence on others.

The default ``selection`` of ``au-distance`` (docs/metrics.md, section 4):

1. frames become observations of the statistical unit (sequence by default,
   :func:`interpret_core.analysis.unit_scan.observations`), each unit's maxima
   are averaged per observation;
2. subjects are split into k folds (subject-disjoint, seeded); for each fold
   the unit is **selected on the other folds** by the declared rule: among the
   ``candidates`` units with the largest distance that reach at least
   ``candidate_share`` of the top distance, the one whose projection peak lies
   inside the AU's (dilated) mask most often above chance;
3. its **evidence is taken on the held-out fold only**: Cliff's delta and van
   Elteren's test stratified by fold (each fold ranks its own selected unit),
   spatial agreement of the projection peak against the dilated-mask chance and
   against a cross-subject shuffled-mask null;
4. a subject bootstrap repeats 2-3 on resampled subjects (weights, no copies)
   for the selection frequency and percentile intervals.

No torch at import time.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from interpret_core.api.errors import CapabilityError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from interpret_core.analysis.unit_scan import Observations, UnitScan
    from interpret_core.api.interfaces import Attribution, Dataset, Model

__all__ = ["HeldOutPlan", "heldout_mapping", "VERDICTS"]

#: verdict -> meaning (every output shows one per AU).
VERDICTS: dict[str, str] = {
    "localised": "held-out delta significant (q < alpha, detector direction) and held-out agreement significantly "
    "above the dilated-mask chance (q < alpha)",
    "elsewhere": "held-out delta significant, but the unit's peak is not significantly inside the AU's region",
    "none": "no significant held-out delta: no unit detects the AU on held-out subjects",
    "untestable": "too few sequences or subjects with or without the AU, or the AU cannot be separated from its partner",
}


@dataclasses.dataclass
class HeldOutPlan:
    """The options of the held-out selection (see ``AUDistance``)."""

    folds: int
    seed: int
    candidates: int
    candidate_share: float
    localise_per_fold: int
    bootstrap: int
    null_draws: int
    tolerance: int | None  # None: from the layer's stride
    locate: str  # "peak" or "receptive-field"
    alpha: float
    batch_size: int
    pool: str = "candidates"  # "candidates" (the folds' candidates and the top-delta unit) or "all" (every unit)


def _tolerance(model: Model, layer: str, input_size: tuple[int, int, int], mask_height: int, fixed: int | None) -> int:
    """Pixels (of the mask) by which a located peak may miss the mask: ceil(stride / 2), at least 1.

    A unit's response is only known on its layer's grid: neighbouring output
    positions are ``stride`` input pixels apart, so a peak is uncertain by
    half that spacing. Masks are a few pixels thin, so at least 1 pixel.
    """
    if fixed is not None:
        return fixed
    from interpret_core.nn.receptive_field import receptive_field

    try:
        stride = max(receptive_field(model.module, layer, tuple(input_size)).stride)
    except (CapabilityError, UsageError):
        return 1
    return max(1, math.ceil(stride * mask_height / input_size[1] / 2))


def _dilate(masks: np.ndarray, tolerance: int) -> np.ndarray:
    """bool [n, H, W]: every pixel within ``tolerance`` (Chebyshev distance) of the mask."""
    from scipy.ndimage import maximum_filter

    if tolerance <= 0:
        return masks
    size = 2 * tolerance + 1
    return maximum_filter(masks.astype(np.uint8), size=(1, size, size), mode="constant", cval=0).astype(bool)


class _Localiser:
    """Peaks (mask pixels) of (layer, unit) on frames, computed once and cached.

    :meth:`locate` projects every (frame, unit) pair it is given for one layer
    through :meth:`Attribution.attribute_unit_pairs`, in a few calls, instead
    of one projection call per unit: the per-call cost of a projection method
    (a forward pass to the layer, hooks, memory sizing) is what dominates when
    each unit has only some tens of frames.
    """

    #: bytes of projections [P, C, H, W] held at once (pairs per call follow from it).
    max_bytes: int = 256 * 2**20

    def __init__(self, model, dataset, scan, method, locate: str, batch_size: int):
        self.model, self.dataset, self.scan = model, dataset, scan
        self.method, self.locate, self.batch_size = method, locate, batch_size
        self.cache: dict[tuple[str, int], dict[int, tuple[int, int]]] = {}
        self.projections = 0
        self._centres: dict[str, np.ndarray | None] = {}

    def peaks(self, layer: str, unit: int, frames: list[int], mask_shape: tuple[int, int]) -> dict[int, tuple[int, int]]:
        """{frame: (y, x)} mask pixel of the unit's peak on each of ``frames``."""
        known = self.cache.get((layer, unit), {})
        if any(f not in known for f in frames):
            self.locate_all({(layer, unit): frames}, mask_shape)
            known = self.cache[(layer, unit)]
        return {f: known[f] for f in frames}

    def locate_all(self, needs: dict[tuple[str, int], Any], mask_shape: tuple[int, int], report: Any = None) -> None:
        """Locate every (layer, unit) of ``needs`` on its frames; ``report(pairs done)`` after each call."""
        missing: dict[str, list[tuple[int, int]]] = {}  # layer -> (frame, unit), frame-major
        for (layer, unit), frames in needs.items():
            known = self.cache.setdefault((layer, unit), {})
            missing.setdefault(layer, []).extend((f, unit) for f in frames if f not in known)
        done = 0
        for layer, pairs in missing.items():
            pairs = sorted(set(pairs))
            parts = [pairs] if self.locate == "receptive-field" else self._parts(pairs)
            for part in parts:
                if self.locate == "receptive-field":
                    self._locate_centres(layer, part, mask_shape)
                else:
                    self._locate_peaks(layer, part, mask_shape)
                done += len(part)
                if report is not None:
                    report(done)

    def _parts(self, pairs: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
        channels, in_h, in_w = tuple(self.scan.input_size or self.model.input_size)
        per_pair = max(1, channels * in_h * in_w * 4)
        size = max(1, self.max_bytes // per_pair)
        return [pairs[start : start + size] for start in range(0, len(pairs), size)]

    def _locate_centres(self, layer: str, pairs: list[tuple[int, int]], mask_shape: tuple[int, int]) -> None:
        from .au_distance import AUDistance

        input_size = tuple(self.scan.input_size or self.model.input_size)
        if layer not in self._centres:
            self._centres.update(AUDistance._centres(self.model, self.scan, {layer}))
        table = self._centres[layer]
        if table is None:
            return
        for frame, unit in pairs:
            self.cache[(layer, unit)][frame] = AUDistance._locate(
                table, self.scan.argmax[layer][frame, unit], mask_shape, input_size
            )

    def _locate_peaks(self, layer: str, pairs: list[tuple[int, int]], mask_shape: tuple[int, int]) -> None:
        """One projection call for ``pairs`` (frame, unit) of ``layer``: the peak of each |projection|."""
        _, in_h, in_w = tuple(self.scan.input_size or self.model.input_size)
        frames = sorted({frame for frame, _ in pairs})
        position = {frame: i for i, frame in enumerate(frames)}
        inputs = self.model.to_input(_bulk_images(self.dataset, self.scan.indices[frames]))
        frame_of = np.asarray([f for f, _ in pairs], dtype=np.int64)
        unit_of = np.asarray([u for _, u in pairs], dtype=np.int64)
        # The scan already knows where each unit peaks: start the projections there.
        cells = self.scan.argmax[layer][frame_of, unit_of]  # [P, 2]
        starts = (cells[:, 0], cells[:, 1], self.scan.maxima[layer][frame_of, unit_of])
        projection = self.method.attribute_unit_pairs(
            self.model.module, inputs, layer, [position[f] for f in frame_of.tolist()], unit_of.tolist(), starts
        )
        self.projections += len(pairs)
        strength = projection.detach().abs().sum(dim=1).cpu().numpy()  # [P, H, W]
        flat = strength.reshape(len(pairs), -1).argmax(axis=1)
        ys, xs = np.divmod(flat, strength.shape[2])
        for (frame, unit), y, x in zip(pairs, ys.tolist(), xs.tolist()):
            # The model input may be a resized copy of the image: map pixel centres across.
            my = min(max(round((y + 0.5) * mask_shape[0] / in_h - 0.5), 0), mask_shape[0] - 1)
            mx = min(max(round((x + 0.5) * mask_shape[1] / in_w - 0.5), 0), mask_shape[1] - 1)
            self.cache[(layer, unit)][frame] = (my, mx)


def _mask_shape(masks: dict) -> tuple[int, int]:
    """The (H, W) of the masks read so far (one data set has one crop size)."""
    for found in masks.values():
        if found is not None:
            return found.shape
    raise ValueError("no masks")  # pragma: no cover - callers only locate frames with masks


def _bulk_images(dataset, indices) -> np.ndarray:
    from interpret_core.analysis.unit_scan import load_batch

    images, _, _ = load_batch(dataset, np.asarray(indices, dtype=np.int64))
    return images


@dataclasses.dataclass
class _AUPool:
    """Localisation of one AU's unit pool on its sampled observations."""

    units: list[int]  # global unit ids (index into the concatenated layers)
    sample: np.ndarray  # int64 [S] observations localised (each held out in its fold)
    hits: np.ndarray  # float [P, S]
    chance: np.ndarray  # float [P, S] dilated-mask area fraction
    null: np.ndarray  # float [P, S] hit rate against other subjects' masks


def heldout_mapping(
    metric: Any,
    model: Model,
    dataset: Dataset,
    scan: UnitScan,
    layers: list[str],
    obs: Observations,
    values: dict[str, np.ndarray],
    au_numbers: list[int],
    presence: np.ndarray,
    distance_of: Any,
    partners: np.ndarray | None,
    plan: HeldOutPlan,
    method: Attribution | None,
    progress: Any = None,
) -> dict[str, Any]:
    """Fold-wise selection, held-out evidence, oracle and bootstrap for every eligible AU.

    Args:
        obs: the observations.
        values: {layer: float [G, U]} per-observation maxima.
        au_numbers, presence: the AUs to map and bool [A, G] their presence per observation.
        distance_of: callable(values [G, U], presence [A, G]) -> distance [A, U] (the metric's distance).
        partners: int [A] partner row per AU (-1 none), or None.

    Returns:
        {"rows": {au: mapping-row fields}, "folds": fold of each observation, "projections": count}.
    """
    from interpret_core.analysis import stats
    from interpret_core.analysis.splits import subject_kfold

    if plan.locate == "peak" and (method is None or not getattr(method, "supports_units", False)):
        raise CapabilityError(
            "au-distance locate=peak needs an attribution method with unit projections",
            "pass --method deconv (or another method with supports_units), or use locate=receptive-field",
        )
    unit_ids = [(layer, u) for layer in layers for u in range(values[layer].shape[1])]
    table = np.concatenate([values[layer] for layer in layers], axis=1)  # [G, Utot]
    count = len(obs)
    fold_of = np.full(count, -1, dtype=np.int64)
    n_subjects = len(set(obs.subjects))
    k = min(plan.folds, n_subjects)
    if k < 2:
        raise UsageError(
            f"au-distance: held-out selection needs at least 2 subjects, the data have {n_subjects}",
            "use more images or --metric-option selection=paper",
        )
    for fold in subject_kfold(obs.subjects, k=k, seed=plan.seed):
        fold_of[fold.test] = fold.index
    rng = np.random.default_rng(plan.seed)

    # Selection-fold distances and candidates of each fold (only other folds' observations).
    selection_distance = np.empty((k, presence.shape[0], table.shape[1]))
    for f in range(k):
        rows = fold_of != f
        selection_distance[f] = distance_of(table[rows], presence[:, rows])
    full_distance = distance_of(table, presence)

    def candidates_of(d: np.ndarray) -> list[int]:
        finite = np.where(np.isfinite(d), d, -np.inf)
        order = np.lexsort((np.arange(d.size), -finite))  # largest first, ties: lower id (shallower layer)
        top = finite[order[0]]
        if not np.isfinite(top):
            return []
        keep = [int(u) for u in order if finite[u] >= plan.candidate_share * top] if top > 0 else [int(order[0])]
        return keep[: plan.candidates]

    frames_of = [[] for _ in range(count)]
    for n, g in enumerate(obs.of_frame.tolist()):
        if g >= 0:
            frames_of[g].append(n)
    frame_values = {layer: scan.maxima[layer] for layer in layers}
    localiser = _Localiser(model, dataset, scan, method, plan.locate, plan.batch_size)
    input_size = tuple(scan.input_size or model.input_size)
    tolerance_cache: dict[str, int] = {}
    mask_cache: dict[tuple[int, int], np.ndarray | None] = {}
    frame_masks: dict[int, dict | None] = {}  # a frame is decoded once, whichever of its AUs asks first

    def mask(frame: int, au: int) -> np.ndarray | None:
        key = (frame, au)
        if key not in mask_cache:
            if frame not in frame_masks:
                frame_masks[frame] = dataset[int(scan.indices[frame])].localisation_masks()
            masks = frame_masks[frame]
            found = None if masks is None else masks.get(au)
            mask_cache[key] = None if found is None else np.asarray(found, dtype=bool)
        return mask_cache[key]

    eligible_rows = np.arange(len(au_numbers))
    out_rows: dict[int, dict[str, Any]] = {}
    pools: dict[int, _AUPool] = {}
    fold_candidates: dict[int, list[list[int]]] = {}
    order = rng.permutation(count)
    def located_frames_of(uid: int, sample: np.ndarray) -> list[int]:
        """Each observation of ``sample`` is located on its frame where the unit fires most."""
        layer, unit = unit_ids[uid]
        return [max(frames_of[g], key=lambda n: (frame_values[layer][n, unit], -n)) for g in sample.tolist()]

    # Pass 1: each AU's pool, sample, located frames and masks; what needs locating.
    plans: dict[int, tuple[list[int], np.ndarray, list[list[int]]]] = {}
    extras: dict[int, tuple[list[int], list[list[int]]]] = {}  # pool=all: the units outside the pool
    needs: dict[tuple[str, int], set[int]] = {}
    for a in eligible_rows.tolist():
        au = au_numbers[a]
        fold_candidates[a] = [candidates_of(selection_distance[f, a]) for f in range(k)]
        top_unit = candidates_of(full_distance[a])[:1]
        pool = sorted({u for c in fold_candidates[a] for u in c} | set(top_unit))
        # A seeded sample of each fold's observations with the AU is localised.
        # One seeded order of all observations serves every AU, so AUs that co-occur share located frames.
        sample_parts = []
        for f in range(k):
            members = order[np.flatnonzero(presence[a, order] & (fold_of[order] == f))][: plan.localise_per_fold]
            sample_parts.append(np.sort(members))
        sample = np.concatenate(sample_parts).astype(np.int64)
        located_frames = [located_frames_of(uid, sample) for uid in pool]
        plans[a] = (pool, sample, located_frames)
        if plan.pool == "all":  # every other unit too, for the oracle and the bootstrap only
            extra = sorted(set(range(len(unit_ids))) - set(pool))
            extras[a] = (extra, [located_frames_of(uid, sample) for uid in extra])
    # The masks of every located frame in one bulk read (the data set need not decode whole samples).
    every_located = [located for _, _, located in plans.values()] + [located for _, located in extras.values()]
    to_read = sorted({fr for located in every_located for frames in located for fr in frames} - set(frame_masks))
    frame_masks.update(zip(to_read, dataset.localisation_masks(scan.indices[to_read]) if to_read else []))
    for a, (pool, _, located_frames) in plans.items():
        extra, extra_frames = extras.get(a, ([], []))
        for uid, frames in zip([*pool, *extra], [*located_frames, *extra_frames]):
            wanted = needs.setdefault(unit_ids[uid], set())
            wanted.update(fr for fr in frames if mask(fr, au_numbers[a]) is not None)
    # Every (frame, unit) pair of a layer in a few projection calls (see _Localiser).
    from interpret_core.util.progress import start_task

    wanted_pairs = sum(len(frames) for frames in needs.values())
    if wanted_pairs:
        report = start_task(progress, "locating unit peaks", wanted_pairs).set
        localiser.locate_all(needs, _mask_shape(mask_cache), report)

    # Pass 2: hits, chance and the shuffled-mask null per AU and pool unit.
    dilated_cache: dict[tuple[int, int, int], np.ndarray] = {}

    def score(au: int, units: list[int], located: list[list[int]], subjects: np.ndarray, size: int,
              draws: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """hits, chance and null, float [len(units), size] (NaN: not located), of ``units`` on one AU's sample."""
        hits = np.full((len(units), size), np.nan)
        chance = np.full((len(units), size), np.nan)
        null = np.full((len(units), size), np.nan)
        for p, uid in enumerate(units):
            layer, unit = unit_ids[uid]
            frames = located[p]
            masks = [mask(fr, au) for fr in frames]
            have = [i for i, m in enumerate(masks) if m is not None]
            if not have:
                continue
            shape = masks[have[0]].shape
            if layer not in tolerance_cache:
                tolerance_cache[layer] = _tolerance(model, layer, input_size, shape[0], plan.tolerance)
            tolerance = tolerance_cache[layer]
            # Pool units of an AU mostly peak on the same frames: each (frame, AU, tolerance) is dilated once.
            fresh = sorted({frames[i] for i in have if (frames[i], au, tolerance) not in dilated_cache})
            if fresh:
                grown = _dilate(np.stack([mask(fr, au) for fr in fresh]), tolerance)
                dilated_cache.update(((fr, au, tolerance), m) for fr, m in zip(fresh, grown))
            dilated = np.stack([dilated_cache[(frames[i], au, tolerance)] for i in have])
            peaks = localiser.peaks(layer, unit, [frames[i] for i in have], shape)
            ys = np.asarray([peaks[frames[i]][0] for i in have])
            xs = np.asarray([peaks[frames[i]][1] for i in have])
            positions = np.asarray(have)
            hits[p, positions] = dilated[np.arange(len(have)), ys, xs]
            chance[p, positions] = dilated.reshape(len(have), -1).mean(axis=1)
            # Null: the same peaks against the masks of other subjects' observations of this AU.
            own = subjects[positions]
            if len(set(own.tolist())) > 1:
                partner = draws.integers(0, len(have), size=(plan.null_draws, len(have)))
                clash = own[partner] == own[None]
                for _retry in range(16):  # redraw pairings with the same subject
                    if not clash.any():
                        break
                    partner[clash] = draws.integers(0, len(have), size=int(clash.sum()))
                    clash = own[partner] == own[None]
                draw = dilated[partner, ys[None], xs[None]].astype(np.float64)
                draw[clash] = np.nan
                null[p, positions] = _nanmean(draw, axis=0)
        return hits, chance, null

    # pool=all: the other units' nulls draw from their own stream, so the pool's numbers (and the
    # default's) do not depend on whether they are computed.
    extra_draws = np.random.default_rng([plan.seed, 1])
    for a, (pool, sample, located_frames) in plans.items():
        au = au_numbers[a]
        subjects = np.asarray([obs.subjects[g] for g in sample.tolist()], dtype=object)
        hits, chance, null = score(au, pool, located_frames, subjects, sample.size, rng)
        units = list(pool)
        if a in extras and extras[a][0]:
            extra, extra_frames = extras[a]
            more = score(au, extra, extra_frames, subjects, sample.size, extra_draws)
            ids = np.asarray(pool + extra)
            by_id = np.argsort(ids, kind="stable")  # one pool in unit-id order, as the default's
            units = [int(u) for u in ids[by_id]]
            hits, chance, null = (np.concatenate([mine, theirs])[by_id] for mine, theirs in zip((hits, chance, null), more))
        pools[a] = _AUPool(units=units, sample=sample, hits=hits, chance=chance, null=null)

    sample_fold = {a: fold_of[pools[a].sample] for a in pools}
    selected: dict[int, list[int]] = {}
    for a, pool in pools.items():
        index = {u: p for p, u in enumerate(pool.units)}
        chosen = []
        for f in range(k):
            if not fold_candidates[a][f]:
                # No unit has a defined distance on this fold's selection folds: they hold no
                # observation with the AU or none without it. Only lowered minimums get here.
                raise UsageError(
                    f"au-distance: AU{au_numbers[a]} cannot be selected for held-out fold {f}: the other folds have "
                    "no observation with it or none without it",
                    "use fewer folds (--metric-option folds=N), more images, or keep the default "
                    "min_observations and min_subjects, which leave out AUs too rare to split",
                )
            chosen.append(_choose(fold_candidates[a][f], index, pool, sample_fold[a] != f, selection_distance[f, a]))
        selected[a] = chosen

    heldout_p = {}
    for a, pool in pools.items():
        column = table[np.arange(count), np.asarray(selected[a])[fold_of]]  # each observation: its fold's unit
        test = stats.stratified_rank_test(column[:, None], presence[a][None], fold_of)
        row: dict[str, Any] = {
            "delta": _finite(test.delta[0, 0]),
            "p_value": _finite(test.p[0, 0]),
            "folds_used": int(test.strata_used[0]),
        }
        if metric.controls:
            emotions = obs.emotions
            strata = fold_of * (int(emotions.max(initial=0)) + 2) + (emotions + 1)
            by_emotion = stats.stratified_rank_test(column[:, None], presence[a][None], strata)
            row["delta_within_emotion"] = _finite(by_emotion.delta[0, 0])
            row["p_within_emotion"] = _finite(by_emotion.p[0, 0])
            if partners is not None and partners[a] >= 0:
                strata = fold_of * 2 + presence[partners[a]].astype(np.int64)
                given = stats.stratified_rank_test(column[:, None], presence[a][None], strata)
                row["delta_given_partner"] = _finite(given.delta[0, 0])
                row["p_given_partner"] = _finite(given.p[0, 0])
        index = {u: p for p, u in enumerate(pool.units)}
        picks = np.asarray([index[selected[a][f]] for f in sample_fold[a]], dtype=np.int64)
        positions = np.arange(pool.sample.size)
        hit = pool.hits[picks, positions]
        chance = pool.chance[picks, positions]
        null = pool.null[picks, positions]
        located = np.isfinite(hit)
        if located.any():
            row["spatial_agreement"] = float(hit[located].mean())
            row["chance"] = float(chance[located].mean())
            row["null_agreement"] = _finite(_nanmean(null[located])) if np.isfinite(null[located]).any() else None
            row["agreement_p"] = stats.chance_excess_p(hit[located], chance[located])
        else:
            row.update(spatial_agreement=None, chance=None, null_agreement=None, agreement_p=None)
        row["agreement_observations"] = int(located.sum())
        # Oracle: the best held-out agreement (excess over chance) any unit of the pool reaches.
        excess = _nanmean(pool.hits - pool.chance, axis=1) if pool.sample.size else np.full(len(pool.units), np.nan)
        if np.isfinite(excess).any():
            best = int(np.nanargmax(excess))
            layer, unit = unit_ids[pool.units[best]]
            finite = np.isfinite(pool.hits[best])
            row["oracle"] = {"layer": layer, "unit": unit, "spatial_agreement": float(pool.hits[best][finite].mean()),
                             "chance": float(pool.chance[best][finite].mean()), "pool_size": len(pool.units),
                             # does the best-placed unit discriminate the AU at all? (in-sample, all observations)
                             "distance": _finite(full_distance[a, pool.units[best]])}
        else:
            row["oracle"] = None
        top = candidates_of(full_distance[a])[:1]
        if top:
            layer, unit = unit_ids[top[0]]
            p = index[top[0]]
            finite = np.isfinite(pool.hits[p])
            row["top_delta"] = {
                "layer": layer, "unit": unit, "distance": _finite(full_distance[a, top[0]]),
                "spatial_agreement": float(pool.hits[p][finite].mean()) if finite.any() else None,
                "chance": float(pool.chance[p][finite].mean()) if finite.any() else None,
            }
        row["fold_units"] = [{"fold": f, "layer": unit_ids[u][0], "unit": unit_ids[u][1]} for f, u in enumerate(selected[a])]
        row["stability"] = _bootstrap(pools[a], selected[a], fold_candidates[a], table, presence[a], fold_of, obs, plan,
                                      rng, distance_of, a)
        heldout_p[a] = row["p_value"]
        out_rows[a] = row

    # One BH family per question: held-out deltas over the AUs, held-out agreements over the AUs.
    rows_order = sorted(out_rows)
    q = stats.bh_qvalues(np.asarray([np.nan if out_rows[a]["p_value"] is None else out_rows[a]["p_value"] for a in rows_order]))
    qa = stats.bh_qvalues(np.asarray([np.nan if out_rows[a]["agreement_p"] is None else out_rows[a]["agreement_p"] for a in rows_order]))
    for a, q_value, q_agreement in zip(rows_order, q, qa):
        out_rows[a]["q_value"] = _finite(q_value)
        out_rows[a]["agreement_q"] = _finite(q_agreement)
    # The selected unit, for figures and tables: the one most folds chose (ties: the lowest id).
    for a in rows_order:
        counts = np.bincount(np.asarray(selected[a]))
        uid = int(np.argmax(counts))
        out_rows[a]["layer"], out_rows[a]["unit"] = unit_ids[uid]
        out_rows[a]["folds_agreeing"] = int(counts[uid])
    for a in rows_order:
        layer = out_rows[a]["layer"]
        out_rows[a]["tolerance_px"] = tolerance_cache.get(layer)
    return {"rows": {au_numbers[a]: out_rows[a] for a in rows_order}, "fold_of": fold_of, "folds": k,
            "projections": localiser.projections, "tolerances": dict(tolerance_cache)}


def _choose(candidates: list[int], index: dict[int, int], pool: _AUPool, rows: np.ndarray, distance: np.ndarray) -> int:
    """The declared rule: largest mean (hit - chance) on the selection folds' sample; ties: larger distance."""
    best, best_key = candidates[0], None
    for u in candidates:
        p = index[u]
        excess = pool.hits[p, rows] - pool.chance[p, rows]
        score = float(_nanmean(excess)) if np.isfinite(excess).any() else -np.inf
        key = (score, float(distance[u]))
        if best_key is None or key > best_key:
            best, best_key = u, key
    return best


def _bootstrap(pool, selected, fold_candidates, table, in_group, fold_of, obs, plan, rng, distance_of, a) -> dict[str, Any]:
    """Subject bootstrap of the selection within the pool: frequency and percentile intervals."""
    from interpret_core.analysis import stats

    if plan.bootstrap <= 0 or not pool.units:
        return {"resamples": 0, "selection_frequency": None, "delta_interval": None, "agreement_interval": None}
    subjects = sorted(set(obs.subjects))
    subject_index = {s: i for i, s in enumerate(subjects)}
    owner = np.asarray([subject_index[s] for s in obs.subjects], dtype=np.int64)
    draws = rng.integers(0, len(subjects), size=(plan.bootstrap, len(subjects)))
    offsets = len(subjects) * np.arange(plan.bootstrap)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=draws.size).reshape(draws.shape).astype(np.float64)  # [B, S]
    weights = counts[:, owner]  # [B, G]
    values = table[:, pool.units]  # [G, P]
    k = int(fold_of.max()) + 1
    index = {u: p for p, u in enumerate(pool.units)}
    sample_weights = weights[:, pool.sample]  # [B, S]
    sample_fold = fold_of[pool.sample]
    excess = np.nan_to_num(pool.hits - pool.chance, nan=0.0)  # [P, S]
    located = np.isfinite(pool.hits).astype(np.float64)
    same = np.zeros((plan.bootstrap, k), dtype=bool)
    delta_num = np.zeros(plan.bootstrap)
    delta_den = np.zeros(plan.bootstrap)
    hit_num = np.zeros(plan.bootstrap)
    hit_den = np.zeros(plan.bootstrap)
    hits = np.nan_to_num(pool.hits, nan=0.0)
    fold_masks = np.stack([(fold_of == f) for f in range(k)]).astype(np.float64)  # [k, G]
    b_count = plan.bootstrap
    # Per fold, the AUCs of every resample on the selection folds and on the held-out fold, each over
    # its own subjects only: folds are subject-disjoint, so both are blocks of one quadratic form in
    # the subject counts (stats.subject_bootstrap_auc), the same numbers as the AUC of the repeated
    # sample, exactly.
    block_of = np.zeros(len(subjects), dtype=np.int64)
    block_of[owner] = fold_of
    held_out = np.eye(k, dtype=bool)
    aucs = stats.subject_bootstrap_auc(values, in_group, owner, counts, block_of, np.concatenate([~held_out, held_out]))
    auc_selection, auc_held = aucs[:k], aucs[k:]  # [k, B, P] each
    for f in range(k):
        delta = 2 * auc_selection[f] - 1  # [B, P]
        top = np.nanmax(np.where(np.isfinite(delta), delta, -np.inf), axis=1, keepdims=True)
        rank = np.argsort(np.argsort(-np.nan_to_num(delta, nan=-np.inf), axis=1, kind="stable"), axis=1)
        eligible = (np.nan_to_num(delta, nan=-np.inf) >= plan.candidate_share * np.maximum(top, 0)) & (rank < plan.candidates)
        eligible |= rank == 0
        rows = (sample_fold != f).astype(np.float64)
        w = sample_weights * rows[None]  # [B, S]
        with np.errstate(invalid="ignore", divide="ignore"):
            score = (w @ excess.T) / (w @ located.T)  # [B, P]
        score = np.where(np.isfinite(score), score, -np.inf)
        # Lexicographic (score, delta) maximum among the eligible units.
        key = np.where(eligible, score * 1e6 + np.nan_to_num(delta, nan=-1.0), -np.inf)
        choice = np.argmax(key, axis=1)  # [B]
        same[:, f] = choice == index[selected[f]]
        held_weights = weights * fold_masks[f][None]
        picked = auc_held[f][np.arange(b_count), choice]
        w1 = held_weights @ in_group.astype(np.float64)
        w0 = held_weights.sum(axis=1) - w1
        vw = w1 * w0 / (w1 + w0 + 1)  # van Elteren weight of the fold
        ok = np.isfinite(picked)
        delta_num += np.where(ok, vw * (2 * picked - 1), 0.0)
        delta_den += np.where(ok, vw, 0.0)
        hw = sample_weights * (sample_fold == f)[None] * located[choice]  # [B, S]
        hit_num += (hw * hits[choice]).sum(axis=1)
        hit_den += hw.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        deltas = delta_num / delta_den
        agreements = hit_num / hit_den
    return {
        "resamples": plan.bootstrap,
        "selection_frequency": float(same.mean()),
        "delta_interval": list(stats.percentile_interval(deltas)),
        "agreement_interval": list(stats.percentile_interval(agreements)),
    }


def verdict(row: dict[str, Any], alpha: float) -> tuple[str, str]:
    """(verdict, reason) of a held-out mapping row; see :data:`VERDICTS`."""
    if row.get("partner_au") is not None and row.get("delta_given_partner") is None:
        return "untestable", f"no observations differ in AU{row['au']} while agreeing on AU{row['partner_au']}"
    q, delta = row.get("q_value"), row.get("delta")
    if q is None or delta is None or q >= alpha or delta <= 0:
        return "none", f"held-out delta {_text(delta)}, q {_text(q)} (alpha {alpha})"
    agreement, chance, agreement_q = row.get("spatial_agreement"), row.get("chance"), row.get("agreement_q")
    if agreement is None:
        return "elsewhere", "discriminates on held-out subjects; no masks to localise it"
    if agreement > chance and agreement_q is not None and agreement_q < alpha:
        return "localised", f"held-out agreement {agreement:.2f} > chance {chance:.2f} (q {_text(agreement_q)})"
    return "elsewhere", f"held-out agreement {agreement:.2f} vs chance {chance:.2f} (q {_text(agreement_q)})"


def _nanmean(values: np.ndarray, axis: int | None = None) -> Any:
    """np.nanmean without the warning for all-NaN slices (they are NaN, as intended)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.2g}" if abs(value) < 0.01 else f"{value:.2f}"


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
