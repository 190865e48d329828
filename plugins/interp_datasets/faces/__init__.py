"""The ``faces`` data set plugin: faces in a folder of photos (dlib detection and 68 landmarks)."""

from .dataset import IMAGE_SUFFIXES, SEVERAL_FACES, FacesDataset

__all__ = ["FacesDataset", "SEVERAL_FACES", "IMAGE_SUFFIXES"]
