"""The CK+ release as distributed, read from its root (dataset plugin ``ckplus``).

One concept per module:

* :mod:`.layout` - folder and file names of the release;
* :mod:`.textfiles` - the landmarks, FACS and emotion file parsers;
* :mod:`.frames` - checking and decoding the PNG frames;
* :mod:`.problems` - the named skip warnings (:data:`WARNINGS`);
* :mod:`.index` - the release index: sequences, frames and labels on disk;
* :mod:`.protocol` - which frames become samples (:data:`PROTOCOLS`);
* :mod:`.crops` - the samples' crops: checked on open, decoded lazily;
* :mod:`.crop_cache` - the on-disk cache of aligned crops;
* :mod:`.dataset` - :class:`CKPlusDataset`, the Dataset plugin.

Face alignment lives in :mod:`interp_datasets.alignment`, AU regions in
:mod:`interp_datasets.au_regions`. No torch here: numpy and PIL only.
"""

from interpret_core.util.paths import cache_home

from .dataset import CKPlusDataset
from .problems import WARNINGS
from .protocol import PROTOCOLS
from .textfiles import MalformedFile, MissingFile, UnreadableFile, read_emotion, read_facs, read_landmarks

__all__ = [
    "CKPlusDataset",
    "PROTOCOLS",
    "WARNINGS",
    "MalformedFile",
    "MissingFile",
    "UnreadableFile",
    "cache_home",
    "read_landmarks",
    "read_facs",
    "read_emotion",
]
