"""Image folders: ``root/<class>/<image>`` (labelled) or ``root/<image>`` (unlabelled)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def load_image_folder(root: str | os.PathLike) -> tuple[list[str], np.ndarray | None]:
    """Image paths of a folder and their labels, the usual class-per-subfolder layout.

    Parameters
    ----------
    root : path
        Either ``root/<class name>/<images>`` (labels are the subfolder names) or images
        directly in ``root`` (unlabelled; a target domain without labels). Images directly
        in ``root`` next to class subfolders are unlabelled rows of a partly labelled set.

    Returns
    -------
    paths : list of str
        Sorted (class folder, then file name), so the order is reproducible.
    labels : ndarray of object or None
        The class name of each image, None for unlabelled ones; ``None`` when no image
        is labelled.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder; pass a folder of images (one subfolder "
                         "per class for labelled images).")

    def images(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir()
                      if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)

    paths: list[str] = []
    labels: list[str | None] = []
    for p in images(root):
        paths.append(str(p))
        labels.append(None)
    for sub in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
        for p in images(sub):
            paths.append(str(p))
            labels.append(sub.name)
    if not paths:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {root} or its "
                         "subfolders.")
    if all(label is None for label in labels):
        return paths, None
    return paths, np.array(labels, dtype=object)
