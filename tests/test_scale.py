"""Real-world size: the ResNet-18 model plugin at 224x224 and the streaming SynthFACS set."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from interpret_core import UsageError, get_attribution, get_dataset, get_model
from interpret_core.analysis.unit_scan import scan_units
from interpret_core.nn.hooks import capture_outputs

#: torchvision's ``resnet18()`` has 11,689,512 parameters for 3 input channels and 1000
#: classes; one grey channel saves 7*7*2*64 stem weights and 8 classes save (1000-8)*(512+1)
#: classifier weights and biases.
TORCHVISION_RESNET18 = 11_689_512
GREY_AND_EIGHT_CLASSES = TORCHVISION_RESNET18 - 7 * 7 * 2 * 64 - (1000 - 8) * (512 + 1)


@pytest.fixture(scope="module")
def resnet():
    return get_model("fer-resnet18")


@pytest.fixture(scope="module")
def faces224():
    """Four streamed 224x224 faces (two sequences' neutral + first apex frames)."""
    data = get_dataset("synthfacs-stream", images=8, size=224)
    images, _ = data.arrays([0, 1, 4, 5])
    return images


# -- the model -------------------------------------------------------------------------------
def test_fer_resnet18_has_resnet18_topology_and_size(resnet):
    assert sum(p.numel() for p in resnet.module.parameters()) == GREY_AND_EIGHT_CLASSES
    assert resnet.input_size == (1, 224, 224)
    assert resnet.layers == ["stem", "layer1", "layer2", "layer3", "layer4"]
    blocks = [name for name, module in resnet.module.named_modules() if type(module).__name__ == "BasicBlock"]
    assert blocks == [f"layer{stage}.{i}" for stage in range(1, 5) for i in range(2)]
    with torch.no_grad(), capture_outputs(resnet.module, resnet.layers) as captured:
        logits = resnet.module(torch.rand(1, 1, 224, 224))
    assert logits.shape == (1, 8)
    shapes = {layer: tuple(captured[layer].shape[1:]) for layer in resnet.layers}
    assert shapes == {"stem": (64, 112, 112), "layer1": (64, 56, 56), "layer2": (128, 28, 28),
                      "layer3": (256, 14, 14), "layer4": (512, 7, 7)}


def test_fer_resnet18_says_it_is_untrained():
    from interpret_core.cli.models_cmd import model_rows
    from interpret_core.nn.weights import state_dict_sha256

    row = next(r for r in model_rows() if r["name"] == "fer-resnet18")
    assert row["status"] == "ok" and row["trained"] is False and row["weights_path"] is None
    assert "UNTRAINED" in row["description"] and row["input_size"] == [1, 224, 224]
    first, second = get_model("fer-resnet18", seed=3), get_model("fer-resnet18", seed=3)
    assert first.card is None
    assert state_dict_sha256(first.module) == state_dict_sha256(second.module)  # seeded: the same network
    assert state_dict_sha256(get_model("fer-resnet18", seed=4).module) != state_dict_sha256(first.module)


@pytest.mark.parametrize("method", ["deconv", "guided-backprop"])
def test_attributions_run_on_fer_resnet18_at_224(resnet, faces224, method):
    import captum.attr as captum_attr
    x = resnet.to_input(faces224[1:2])  # one apex face: at 224x224 every pass costs
    maps = get_attribution(method).attribute(resnet.module, x, 3)
    assert maps.shape == x.shape and torch.isfinite(maps).all() and maps.abs().amax() > 0
    # Unit projections through the residual blocks equal Captum's one-unit loop.
    units = [1]
    ours = get_attribution(method).attribute_units(resnet.module, x, "layer4", units)
    name = "NeuronDeconvolution" if method == "deconv" else "NeuronGuidedBackprop"
    reference = getattr(captum_attr, name)(resnet.module, dict(resnet.module.named_modules())["layer4"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = torch.stack([
            reference.attribute(x, neuron_selector=lambda out, u=u: out[:, u].flatten(1).max(dim=1).values)
            for u in units
        ], dim=1)
    assert expected.abs().amax() > 0
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-4)


def test_deep_pairs_on_fer_resnet18_forward_each_image_once_and_equal_one_pair_at_a_time(resnet, faces224):
    # layer4's receptive field covers the 224x224 face, so its pairs take the whole-image path: the
    # au-distance localiser asks for several units per image there, and each image must go forward once.
    x = resnet.to_input(faces224[:2])
    images, units = [1, 0, 1], [7, 3, 511]
    with torch.no_grad(), capture_outputs(resnet.module, ["layer4"]) as captured:
        resnet.module(x)
    value, flat = captured["layer4"][images, units].flatten(1).max(dim=1)
    starts = (flat // 7, flat % 7, value)
    forwarded = []  # batch sizes of the projection passes (the probes before them run without gradients)

    def count(_module, args, _output):
        if args[0].requires_grad:
            forwarded.append(args[0].shape[0])

    stem = resnet.module.stem.register_forward_hook(count)
    try:
        # max_batch=2: one chunk [image 1, image 0] and two rounds, the second with image 0 idle.
        pairs = get_attribution("deconv", max_batch=2).attribute_unit_pairs(resnet.module, x, "layer4", images, units, starts)
    finally:
        stem.remove()
    # Both images go forward once, together: one pass per image, not one per pair.
    assert forwarded == [2]
    alone = torch.stack([
        get_attribution("deconv").attribute_units(resnet.module, x[i : i + 1], "layer4", [u])[0, 0]
        for i, u in zip(images, units)
    ])
    assert alone.flatten(1).abs().amax(dim=1).min() > 0
    torch.testing.assert_close(pairs, alone, atol=1e-6, rtol=1e-5)


def test_unit_scan_runs_on_fer_resnet18_and_keeps_12_bytes_per_image_and_unit(resnet):
    data = get_dataset("synthfacs-stream", images=3, size=224)
    scan = scan_units(resnet, data, resnet.layers, batch_size=2, top_k=2)
    units = sum(scan.units(layer) for layer in scan.layers)
    assert units == 64 + 64 + 128 + 256 + 512
    images, _ = data.arrays(range(3))
    with torch.no_grad(), capture_outputs(resnet.module, resnet.layers) as captured:
        resnet.module(resnet.to_input(images))
    for layer in resnet.layers:
        expected = captured[layer].flatten(2).amax(dim=2).numpy()
        np.testing.assert_allclose(scan.maxima[layer], expected, rtol=1e-5, atol=1e-6)
    # What the scan holds per (image, unit): a float32 maximum and two int32 coordinates, no maps.
    per_image = sum(scan.maxima[layer].nbytes + scan.argmax[layer].nbytes for layer in scan.layers)
    assert per_image == 3 * units * 12
    held = per_image + sum(scan.topk[layer].nbytes for layer in scan.layers) + scan.indices.nbytes
    arrays = [scan.indices, *scan.maxima.values(), *scan.argmax.values(), *scan.topk.values()]
    assert sum(a.nbytes for a in arrays) == held


# -- the streaming data set -------------------------------------------------------------------
def test_stream_samples_are_the_release_samples(tmp_path):
    from interp_datasets.synthfacs import SynthFACSDataset, generate

    generate(tmp_path / "release", subjects=1, seed=3, workers=1)
    release = SynthFACSDataset(data_root=tmp_path / "release", size=64, cache=False)
    stream = get_dataset("synthfacs-stream", images=len(release), size=64, seed=3)
    assert len(stream) == len(release) and stream.class_names == release.class_names
    assert stream.subjects == release.subjects and stream.sequences == release.sequences
    assert stream.emotions == release.emotions and stream.frames == release.frames
    assert stream.au_presence()[0] == release.au_presence()[0]
    np.testing.assert_array_equal(stream.au_matrix()[1], release.au_matrix()[1])
    for index in range(len(release)):
        ours, theirs = stream[index], release[index]
        np.testing.assert_array_equal(ours.image, theirs.image)
        np.testing.assert_allclose(ours.landmarks, theirs.landmarks, atol=1e-5)
        assert (ours.emotion, ours.aus, ours.frame) == (theirs.emotion, theirs.aus, theirs.frame)
        assert ours.au_masks.keys() == theirs.au_masks.keys()
        for au, mask in ours.au_masks.items():
            np.testing.assert_array_equal(mask, theirs.au_masks[au])
    assert any(stream[i].au_masks for i in range(len(stream)))


def test_stream_image_i_does_not_depend_on_batch_order_or_length():
    whole = get_dataset("synthfacs-stream", images=12, size=32, seed=1)
    reference, emotions = whole.arrays(range(12))
    other = get_dataset("synthfacs-stream", images=40, size=32, seed=1)  # a longer stream, read shuffled in shards
    order = np.random.default_rng(0).permutation(12)
    for shard in np.array_split(order, 4):
        images, shard_emotions = other.arrays(shard)
        np.testing.assert_array_equal(images, reference[shard])
        np.testing.assert_array_equal(shard_emotions, emotions[shard])
    np.testing.assert_array_equal(other[7].image, reference[7])
    assert not np.array_equal(get_dataset("synthfacs-stream", images=12, size=32, seed=2).arrays([5])[0][0], reference[5])
    assert reference.shape == (12, 32, 32) and reference.dtype == np.float32
    assert 0.0 <= reference.min() and reference.max() <= 1.0


def test_stream_labels_and_fingerprint_need_no_rendering(monkeypatch):
    from interp_datasets.synthfacs import stream as module

    data = get_dataset("synthfacs-stream", images=10_000, size=224)
    monkeypatch.setattr(module, "render_frame", lambda *a, **k: pytest.fail("rendered a frame"))
    numbers, presence = data.au_presence()
    assert presence.shape == (10_000, len(numbers)) and presence[::4].sum() == 0  # neutral first frames
    assert presence[1::4].any(axis=1).all()  # apex frames show their AUs
    assert len(set(data.subjects)) > 100 and data.emotions[0] == 0
    assert data.summary()["images"] == 10_000 and data.streaming
    small = get_dataset("synthfacs-stream", images=40, size=224)
    assert small.fingerprint() == get_dataset("synthfacs-stream", images=40, size=224).fingerprint()
    assert small.fingerprint() != get_dataset("synthfacs-stream", images=40, size=64).fingerprint()
    assert small.fingerprint() != get_dataset("synthfacs-stream", images=40, size=224, seed=1).fingerprint()
    assert small.fingerprint() != data.fingerprint()


def test_scan_reads_the_stream_batch_by_batch():
    from interp_datasets.synthfacs.stream import SynthFACSStream

    asked: list[int] = []

    class Watched(SynthFACSStream):
        def arrays(self, indices=None, progress=False):
            assert indices is not None, "the scan asked for every image at once"
            asked.append(len(indices))
            return super().arrays(indices, progress)

        def __getitem__(self, index):
            raise AssertionError("the scan decoded a whole sample")

    scan = scan_units(get_model("fer-cnn"), Watched(images=10, size=64), ["conv1", "conv3"], batch_size=4)
    assert asked == [4, 4, 2] and len(scan) == 10


def test_data_inspect_decodes_one_sample_of_a_streaming_set(monkeypatch, capsys):
    import json

    from interp_datasets.synthfacs import stream as module
    from interpret_core.cli import main

    rendered = []
    real = module.render_frame
    monkeypatch.setattr(module, "render_frame", lambda *a, **k: rendered.append(1) or real(*a, **k))
    code = main(["data", "inspect", "--dataset", "synthfacs-stream", "--dataset-option", "images=100000",
                 "--dataset-option", "size=32", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 100_000 and summary["decode_seconds"] is None
    assert len(rendered) == 1  # the first sample, not 100,000


@pytest.mark.parametrize("options, field", [({"images": 0}, "images"), ({"size": "big"}, "size"),
                                             ({"seed": -1}, "seed"), ({"protocol": "peak"}, "protocol")])
def test_stream_refuses_bad_options(options, field):
    with pytest.raises(UsageError, match=field):
        get_dataset("synthfacs-stream", **options)
