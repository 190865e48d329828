"""The built-in ``fer2013-minixception``: conversion against Keras, Captum agreement, a real photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from interpret_core import get_model
from interpret_core.nn.weights import default_weights_path, read_card

from test_attribution_backprop import METHODS, _active_units, _assert_matches_captum_class, _assert_matches_captum_units

FIXTURE = Path(__file__).parent / "data" / "fer2013_keras_logits.npz"
NAME = "fer2013-minixception"


@pytest.fixture(scope="module")
def model():
    return get_model(NAME)


@pytest.fixture(scope="module")
def keras_reference():
    data = np.load(FIXTURE)
    return data["images_uint8"].astype(np.float32) / 255, data["logits"], data["probabilities"]


def test_logits_match_the_keras_model(model, keras_reference):
    images, keras_logits, keras_probabilities = keras_reference
    with torch.no_grad():
        logits = model.module(model.to_input(images))
    assert logits.shape == (6, 7)
    # The inputs are far from trivial: the logits span more than 10 units.
    assert float(np.ptp(keras_logits)) > 10
    np.testing.assert_allclose(logits.numpy(), keras_logits, atol=1e-4, rtol=0)
    np.testing.assert_allclose(logits.softmax(1).numpy(), keras_probabilities, atol=1e-5, rtol=0)


def test_keras_batch_norm_epsilon_matters(model, keras_reference):
    """PyTorch's default epsilon would move the logits far beyond the tolerance (why 1e-3 is kept)."""
    images, keras_logits, _ = keras_reference
    other = get_model(NAME)
    for module in other.module.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert module.eps == pytest.approx(1e-3)
            module.eps = 1e-5
    with torch.no_grad():
        moved = other.module(other.to_input(images)).numpy()
    assert np.abs(moved - keras_logits).max() > 0.1


def test_card_parameters_classes_and_licence(model):
    assert model.class_names == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    floats = sum(t.numel() for t in model.module.state_dict().values() if t.is_floating_point())
    assert floats == 58_423
    card = read_card(default_weights_path(type(model).default_weights))
    assert card["weights"]["parameters"] == 58_423
    assert card["license"]["name"] == "MIT" and "Justin Shenk" in card["license"]["text"]
    assert card["provenance"]["keras_parameters"] == 58_423
    assert model.card is not None and model.card["dataset"]["name"] == "fer2013"


def test_to_input_scales_to_minus_one_one(model):
    x = model.to_input(np.array([[[0.0, 0.5], [1.0, 0.25]]], dtype=np.float32))
    assert x.shape == (1, 1, 64, 64)
    assert float(x.min()) == pytest.approx(-1.0) and float(x.max()) == pytest.approx(1.0)


def test_same_max_pool_pads_like_tensorflow():
    """TF 'same': output ceil(n/2); odd total padding puts the extra cell bottom/right."""
    from interp_models.minixception import MaxPool2dSame, _tf_same_padding

    assert _tf_same_padding(60, 3, 2) == (0, 1)
    assert _tf_same_padding(15, 3, 2) == (1, 1)
    assert _tf_same_padding(8, 3, 2) == (0, 1)
    x = torch.arange(16.0).reshape(1, 1, 4, 4) * -1  # max at the top-left of every window
    out = MaxPool2dSame(3, 2)(x)
    # windows rows/cols {0,1,2} and {2,3}: -inf padding is never chosen
    assert out.flatten().tolist() == [0.0, -2.0, -8.0, -10.0]


@pytest.fixture(scope="module")
def faces(keras_reference):
    images = keras_reference[0]
    return get_model(NAME).to_input(images[[0, 1, 4, 5]])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("layer", ["conv1", "conv2", "block1.sep1", "block2", "block3.sep1", "block4.sep1"])
def test_units_match_captum(method, layer, model, faces):
    units = _active_units(model.module, faces, layer, 2)
    assert len(units) == 2
    _assert_matches_captum_units(method, model.module, faces, layer, units)


@pytest.mark.parametrize("method", METHODS)
def test_class_level_matches_captum(method, model, faces):
    _assert_matches_captum_class(method, model.module, faces, torch.tensor([3, 4, 6, 0]))


def test_astronaut_face_is_happy(model):
    """scikit-image's astronaut (Eileen Collins), cropped to the face: happy with ~0.99."""
    from PIL import Image
    from skimage import data as skimage_data  # in the test extra

    face = Image.fromarray(skimage_data.astronaut()).convert("L").crop((155, 60, 295, 200))
    image = np.asarray(face, dtype=np.float32) / 255
    with torch.no_grad():
        probabilities = model.module(model.to_input(image[None])).softmax(1)[0]
    assert model.class_names[int(probabilities.argmax())] == "happy"
    assert float(probabilities.max()) > 0.98
