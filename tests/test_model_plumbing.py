"""Model plumbing: class names matched by name, weights that name their model, a plugin's own weights, layer errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import interpret_core
from interp_datasets.emotions import EMOTIONS
from interpret_core import Attribution, Dataset, Model, Sample, UsageError, get_model, hookimpl
from interpret_core.api.class_names import EMOTION_SYNONYMS, canonical_emotion, match_classes
from interpret_core.nn.weights import default_weights_path, save_weights

FER2013 = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
FIXTURE = Path(__file__).parent / "data" / "fer2013_keras_logits.npz"


# -- one synonym table -----------------------------------------------------------------
def test_fer2013_names_match_ckplus_names():
    match = match_classes(FER2013, list(EMOTIONS))
    # CK+ order: neutral anger contempt disgust fear happy sadness surprise
    assert match.to_model == (6, 0, None, 1, 2, 3, 4, 5)
    assert match.unmatched_dataset == ("contempt",)
    assert match.unmatched_model == ()
    warning = match.warning("model 'm'", "data set 'd'")
    assert "contempt" in warning and "no class in model 'm'" in warning
    assert match_classes(list(EMOTIONS), list(EMOTIONS)).warning() is None


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [("Angry", "anger"), ("sad", "sadness"), ("happiness", "happy"), ("surprised", "surprise"),
     ("fearful", "fear"), ("disgusted", "disgust"), (" Neutral ", "neutral"), ("contempt", "contempt")],
)
def test_synonyms(spelling, canonical):
    assert canonical_emotion(spelling) == canonical


def test_the_table_never_gives_one_spelling_two_emotions():
    spellings = [s for group in EMOTION_SYNONYMS.values() for s in group]
    assert len(spellings) == len(set(spellings))
    assert canonical_emotion("Bored") == "bored"  # unknown names still match themselves


def test_unmatched_model_classes_are_named():
    match = match_classes(["happy", "pain"], ["happiness", "sad"])
    assert match.to_model == (0, None)
    assert match.unmatched_dataset == ("sad",) and match.unmatched_model == ("pain",)


# -- weights that name their model -------------------------------------------------------
def test_weights_alone_name_their_model():
    shipped = default_weights_path("interp_models:weights/fer2013-minixception.safetensors")
    model = get_model(None, weights=shipped)
    assert model.name == "fer2013-minixception" and model.card is not None
    with pytest.raises(UsageError, match="no model named"):
        get_model(None)
    with pytest.raises(interpret_core.WeightsError, match="--model fer2013-minixception"):
        get_model("fer-cnn", weights=shipped)


# -- a plugin that loads its own weights ----------------------------------------------------
class OwnWeightsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(0.1)
        self.fc = nn.Linear(2 * 8 * 8, 3)

    def forward(self, x):
        return self.fc(self.dropout(self.flatten(self.relu(self.conv(x)))))


class OwnWeightsModel(Model):
    """Loads weights from its own ``weights_path`` option and sets their card itself."""

    name = "test-own-weights"
    weights_path: str | None = None

    def __init__(self, weights_path: str | None = None, **options):
        self.weights_path = weights_path or OwnWeightsModel.weights_path
        super().__init__(class_names=("angry", "happy", "neutral"), input_size=(1, 8, 8), **options)

    def build(self):
        net = OwnWeightsNet()
        if self.weights_path:
            from safetensors.torch import load_file

            from interpret_core.nn.weights import read_card

            net.load_state_dict(load_file(self.weights_path))
            self.card = dict(read_card(self.weights_path), path=self.weights_path)
        return net

    @property
    def layers(self):
        return ["relu"]


class _OwnPlugin:
    @hookimpl
    def interp_register_models(self, register):
        register(OwnWeightsModel)


@pytest.fixture
def own_weights(tmp_path):
    registry = interpret_core.get_registry()
    assert registry.register_plugin(_OwnPlugin(), "test-own-weights-plugin")
    torch.manual_seed(0)
    model = OwnWeightsModel()
    path = save_weights(model, tmp_path / "own.safetensors", card={"dataset": {"name": "own-faces", "samples": 12}})
    try:
        yield path, model
    finally:
        OwnWeightsModel.weights_path = None
        registry.unregister_plugin("test-own-weights-plugin")


def test_a_plugins_own_weights_count_as_trained(own_weights):
    path, reference = own_weights
    untrained = get_model("test-own-weights")
    assert untrained.card is None
    trained = get_model("test-own-weights", weights_path=str(path))
    assert trained.card is not None and trained.card["dataset"]["name"] == "own-faces"
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(trained.module(x), reference.module.eval()(x))


def test_interp_models_shows_a_plugins_own_card(own_weights):
    from interpret_core.cli.models_cmd import model_rows

    path, _ = own_weights
    OwnWeightsModel.weights_path = str(path)  # as a plugin configured to find its file would
    row = {r["name"]: r for r in model_rows()}["test-own-weights"]
    assert row["status"] == "ok" and row["trained"] is True
    assert row["card"]["dataset"]["name"] == "own-faces"
    assert row["weights_path"] == str(path)
    shipped = {r["name"]: r for r in model_rows()}["fer2013-minixception"]
    assert shipped["trained"] is True and shipped["card"]["license"]["name"] == "MIT"


# -- layer errors list the model's layers ----------------------------------------------------
def test_layer_errors_list_model_layers_not_every_module():
    from interpret_core.analysis.unit_scan import scan_units

    model = get_model("fer-cnn")
    with pytest.raises(UsageError) as info:
        scan_units(model, _CKFaces(), ["conv9"])
    message = info.value.message
    assert "its layers: conv1, conv2, conv3" in message
    assert "flatten" not in message and "dropout1" not in message
    assert "did you mean" in info.value.hint


# -- bench accuracy matches classes by name -------------------------------------------------
class _CKFaces(Dataset):
    """The Keras fixture's six images plus two, labelled with CK+'s eight class names."""

    name = "test-ck-named-faces"
    has_au_masks = True
    LABELS = ("happy", "sadness", "sadness", "sadness", "neutral", "sadness", "contempt", "anger")

    def __init__(self, data_root=None):
        images = np.load(FIXTURE)["images_uint8"].astype(np.float32) / 255
        self.images = np.concatenate([images, images[:2]])

    @property
    def class_names(self):
        return list(EMOTIONS)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        mask = np.zeros((64, 64), dtype=bool)
        mask[40:56, 16:48] = True
        return Sample(image=self.images[index], emotion=EMOTIONS.index(self.LABELS[index]), aus={12: 3},
                      landmarks=None, subject=f"S{index:03d}", sequence=f"S{index:03d}_001", frame=1,
                      au_masks={12: mask})


class _Gradient(Attribution):
    name = "test-plumbing-gradient"

    def attribute(self, module, inputs, target):
        inputs = inputs.detach().clone().requires_grad_(True)
        index = torch.as_tensor(target).view(-1, 1).expand(inputs.shape[0], 1)
        (grad,) = torch.autograd.grad(module(inputs).gather(1, index).sum(), inputs)
        return grad


class _BenchPlugin:
    @hookimpl
    def interp_register_datasets(self, register):
        register(_CKFaces)

    @hookimpl
    def interp_register_attributions(self, register):
        register(_Gradient)


def test_bench_accuracy_matches_classes_by_name(tmp_path):
    from interpret_core.workflows.bench import BenchConfig, run_bench

    registry = interpret_core.get_registry()
    assert registry.register_plugin(_BenchPlugin(), "test-plumbing-bench")
    warnings: list[str] = []
    try:
        result = run_bench(
            BenchConfig(methods=["test-plumbing-gradient"], metrics=["au-pointing-game"], model="fer2013-minixception",
                        dataset="test-ck-named-faces", limit=8, out=tmp_path / "bench"),
            warn=warnings.append,
        )
    finally:
        registry.unregister_plugin("test-plumbing-bench")
    model = get_model("fer2013-minixception")
    dataset = _CKFaces()
    with torch.no_grad():
        predicted = model.module(model.to_input(dataset.images)).argmax(1).tolist()
    by_name = [
        model.class_names.index({"anger": "angry", "sadness": "sad"}.get(label, label)) == p
        for label, p in zip(_CKFaces.LABELS, predicted) if label != "contempt"
    ]
    by_index = [EMOTIONS.index(label) == p for label, p in zip(_CKFaces.LABELS, predicted)]
    images = result["images"]
    assert images["accuracy_on_selection"] == pytest.approx(np.mean(by_name))
    assert images["accuracy_on_selection"] != pytest.approx(np.mean(by_index))  # the old, wrong number
    assert images["n_labelled_matched"] == 7 and images["unmatched_classes"] == ["contempt"]
    assert any("contempt" in w and "no class in model 'fer2013-minixception'" in w for w in warnings)
    saved = json.loads((tmp_path / "bench" / "bench.json").read_text())
    assert saved["images"]["accuracy_classes_matched_by"] == "name"


def test_visualize_label_targets_match_by_name_and_warn():
    from interpret_core.workflows.visualize import class_overlays

    model = get_model("fer2013-minixception")
    with pytest.warns(UserWarning, match="contempt"):
        _, rows = class_overlays(model, _CKFaces(), _Gradient(), [0, 1, 6, 7], target="label", tile=64)
    # happy -> happy, sadness -> sad, anger -> angry; contempt falls back to the prediction
    assert [r["class"] for r in (rows[0], rows[1], rows[3])] == ["happy", "sad", "angry"]
    assert rows[2]["class"] == rows[2]["predicted"] and rows[2]["label"] == "contempt"
