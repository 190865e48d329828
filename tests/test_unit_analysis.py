"""interpret_core.analysis.unit_scan: the streaming max/argmax/top-k pass."""

from __future__ import annotations

import numpy as np
import pytest

from interpret_core.api.errors import DataError, UsageError
from interpret_core.api.interfaces import Dataset, Model, Sample
from interpret_core.analysis.unit_scan import UnitScan, annotations, scan_units


class TinyModel(Model):
    name = "tiny-scan-net"
    default_class_names = ("a", "b", "c")

    def build(self):
        import torch
        from torch import nn

        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 5, 3, stride=2), nn.ReLU(),
            nn.Flatten(), nn.Linear(5 * 6 * 6, 3),
        )

    @property
    def layers(self):
        return ["1", "3", "5"]


class ArrayData(Dataset):
    name = "array-data"

    def __init__(self, count=23, bulk=False, seed=0):
        rng = np.random.default_rng(seed)
        self.images = rng.random((count, 16, 16)).astype(np.float32)
        self.aus_list = [{1: int(rng.integers(0, 3))} if rng.random() < 0.5 else {} for _ in range(count)]
        self.decoded = 0
        if bulk:
            self.arrays = lambda indices: (self.images[np.asarray(indices)], np.zeros(len(indices), np.int64))

    @property
    def class_names(self):
        return ["a", "b"]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        self.decoded += 1
        return Sample(self.images[index], index % 2, dict(self.aus_list[index]), None, "s", "q", 1)


def _reference(model, images):
    import torch

    with torch.no_grad():
        x = model.to_input(images)
        out1 = model.module[:2](x).clone()
        out3 = model.module[:4](x)
        out5 = model.module(x)
    return {"1": out1.numpy(), "3": out3.numpy(), "5": out5.numpy()[:, :, None, None]}


@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_maxima_argmax_and_topk_match_a_full_forward_pass(batch_size):
    model, data = TinyModel(input_size=(1, 16, 16)), ArrayData()
    scan = scan_units(model, data, model.layers, batch_size=batch_size, top_k=4)
    reference = _reference(model, data.images)
    assert scan.layers == ["1", "3", "5"] and len(scan) == 23
    assert scan.shapes == {"1": (4, 14, 14), "3": (5, 6, 6), "5": (3, 1, 1)}
    for layer, full in reference.items():
        flat = full.reshape(full.shape[0], full.shape[1], -1)
        # Batch size changes float rounding in the convolutions, not more.
        np.testing.assert_allclose(scan.maxima[layer], flat.max(axis=2), rtol=1e-5, atol=1e-6)
        rows, cols = scan.argmax[layer][..., 0], scan.argmax[layer][..., 1]
        picked = np.take_along_axis(flat, (rows * full.shape[3] + cols)[..., None], axis=2)[..., 0]
        np.testing.assert_allclose(picked, flat.max(axis=2), rtol=1e-5, atol=1e-6)
        # The streaming top-k equals a full stable sort of the recorded maxima.
        expected = np.argsort(-scan.maxima[layer], axis=0, kind="stable")[:4].T
        np.testing.assert_array_equal(scan.topk[layer], expected)
        assert scan.maxima[layer].dtype == np.float32 and scan.argmax[layer].dtype == np.int32
        assert scan.topk[layer].dtype == np.int64
    assert scan.aus == data.aus_list and scan.emotions.tolist() == [i % 2 for i in range(23)]


def test_subset_indices_topk_are_dataset_indices_and_ties_go_to_the_earlier_image():
    model, data = TinyModel(input_size=(1, 16, 16)), ArrayData()
    data.images[7] = data.images[3]  # an exact tie
    indices = np.array([20, 3, 7, 11, 2])
    scan = scan_units(model, data, ["1"], batch_size=2, top_k=9, indices=indices)
    assert scan.topk["1"].shape == (4, 5)  # k = min(top_k, N)
    full = scan_units(model, data, ["1"], batch_size=64)
    np.testing.assert_array_equal(scan.maxima["1"], full.maxima["1"][indices])
    assert set(scan.topk["1"].ravel()) <= set(indices.tolist())
    for unit in range(4):
        order = list(scan.topk["1"][unit])
        if 3 in order and 7 in order:
            assert order.index(3) < order.index(7) or scan.maxima["1"][1, unit] != scan.maxima["1"][2, unit]


def test_bulk_arrays_accessor_is_used_and_annotations_come_separately():
    model = TinyModel(input_size=(1, 16, 16))
    data = ArrayData(bulk=True)
    scan = scan_units(model, data, ["3"], batch_size=8)
    assert data.decoded == 0 and scan.aus is None
    plain = scan_units(model, ArrayData(), ["3"], batch_size=8)
    np.testing.assert_array_equal(scan.maxima["3"], plain.maxima["3"])
    aus, emotions = annotations(data, scan.indices)
    assert aus == data.aus_list and emotions.tolist() == [i % 2 for i in range(23)]


def test_progress_callback_and_save_load_round_trip(tmp_path):
    model, data = TinyModel(input_size=(1, 16, 16)), ArrayData()
    seen = []
    scan = scan_units(model, data, ["1", "3"], batch_size=10, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(10, 23), (20, 23), (23, 23)]
    scan.meta = {"model": "tiny"}
    scan.save(tmp_path / "scan.npz")
    loaded = UnitScan.load(tmp_path / "scan.npz")
    assert loaded.layers == scan.layers and loaded.shapes == scan.shapes and loaded.meta == {"model": "tiny"}
    assert loaded.aus == scan.aus and loaded.input_size == (1, 16, 16)
    for layer in scan.layers:
        np.testing.assert_array_equal(loaded.maxima[layer], scan.maxima[layer])
        np.testing.assert_array_equal(loaded.argmax[layer], scan.argmax[layer])
        np.testing.assert_array_equal(loaded.topk[layer], scan.topk[layer])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="bad.npz"):
        UnitScan.load(tmp_path / "bad.npz")


def test_bad_input_gets_clear_errors():
    model, data = TinyModel(input_size=(1, 16, 16)), ArrayData()
    with pytest.raises(UsageError, match="conv9"):
        scan_units(model, data, ["conv9"])
    with pytest.raises(UsageError, match="no layers"):
        scan_units(model, data, [])
    with pytest.raises(DataError, match="nothing to scan"):
        scan_units(model, data, ["1"], indices=[])
    with pytest.raises(UsageError, match="indices"):
        scan_units(model, data, ["1"], indices=[0, 99])
    assert model.module.training is False


def test_cached_scan_reuses_only_a_matching_scan_and_recomputes_a_broken_file(tmp_path, monkeypatch):
    from interpret_core.analysis import unit_scan

    model, data, path = TinyModel(input_size=(1, 16, 16)), ArrayData(), tmp_path / "scan.npz"
    calls = []
    real_scan = unit_scan.scan_units
    monkeypatch.setattr(unit_scan, "scan_units", lambda *a, **k: calls.append(k["indices"].tolist()) or real_scan(*a, **k))
    meta = {"model": "tiny", "weights_sha256": "abc", "top_k": 3}
    first, reused = unit_scan.cached_scan(path, model, data, ["1"], indices=np.arange(10), meta=meta, resume=True, top_k=3)
    assert not reused and path.is_file() and len(calls) == 1 and first.meta.items() >= meta.items()  # plus weights, data content, code
    again, reused = unit_scan.cached_scan(path, model, data, ["1"], indices=np.arange(10), meta=meta, resume=True, top_k=3)
    assert reused and len(calls) == 1
    np.testing.assert_array_equal(again.maxima["1"], first.maxima["1"])
    # Anything that makes it another scan recomputes it: no resume, other weights, layers or images.
    for changes in ({"resume": False}, {"meta": {**meta, "weights_sha256": "def"}}, {"layers": ["1", "3"]},
                    {"indices": np.arange(1, 11)}):
        first.save(path)  # the matching scan again
        arguments = {"layers": ["1"], "indices": np.arange(10), "meta": meta, "resume": True, **changes}
        layers = arguments.pop("layers")
        _, reused = unit_scan.cached_scan(path, model, data, layers, top_k=3, **arguments)
        assert not reused, changes
    first.save(path)
    assert unit_scan.cached_scan(path, model, data, ["1"], indices=np.arange(10), meta=meta, resume=True, top_k=3)[1]
    path.write_bytes(b"not a scan")
    _, reused = unit_scan.cached_scan(path, model, data, ["1"], indices=np.arange(10), meta=meta, resume=True, top_k=3)
    assert not reused and UnitScan.load(path).meta.items() >= meta.items()


def test_observations_group_frames_of_a_sequence_that_share_labels():
    from interpret_core.analysis.unit_scan import observations

    subjects = ["S1", "S1", "S1", "S1", "S2", "S2"]
    sequences = ["S1_1", "S1_1", "S1_1", "S1_2", "S2_1", "S2_1"]
    presence = np.array([[1, 1, 0, 1, 0, 0], [0, 0, 0, 0, 1, 1]], dtype=bool)  # frame 2: the neutral frame of S1_1
    emotions = np.array([3, 3, 0, 3, 5, 5])
    obs = observations("sequence", subjects, sequences, presence, emotions)
    assert obs.unit == "sequence" and obs.of_frame.tolist() == [0, 0, 1, 2, 3, 3]
    assert obs.subjects == ["S1", "S1", "S1", "S2"] and obs.frames.tolist() == [2, 1, 1, 2]
    np.testing.assert_array_equal(obs.presence, [[1, 0, 1, 0], [0, 0, 0, 1]])
    values = np.arange(12, dtype=float).reshape(6, 2)
    np.testing.assert_allclose(obs.means(values), [[1, 2], [4, 5], [6, 7], [9, 10]])
    # Leaving the neutral frame out; the subject level merges S1's two sequences (same labels).
    kept = observations("sequence", subjects, sequences, presence, emotions, keep=emotions != 0)
    assert kept.of_frame.tolist() == [0, 0, -1, 1, 2, 2]
    by_subject = observations("subject", subjects, sequences, presence, emotions, keep=emotions != 0)
    assert by_subject.of_frame.tolist() == [0, 0, -1, 0, 1, 1] and by_subject.unit == "subject"
    assert observations("frame", subjects, sequences, presence, emotions).of_frame.tolist() == list(range(6))
    # No sequence ids: the subject is the observation.
    assert observations("sequence", subjects, None, presence, emotions).unit == "subject"
    with pytest.raises(UsageError, match="statistical unit"):
        observations("clip", subjects, sequences, presence, emotions)
