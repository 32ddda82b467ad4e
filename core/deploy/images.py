"""Reading and writing user images as they are: grayscale, colour, colour + alpha, 8 or 16 bits per channel.

The network always sees a float BGR image in [0, 1]; what was special about the file (gray, alpha, bit depth)
is carried beside it so the result is written back in the same kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import path as osp

import cv2
import numpy as np

from core.data.layouts import IMAGE_EXTENSIONS, image_files
from core.errors import UserError
from core.io.staging import staged_file


@dataclass
class Picture:
    """A float32 BGR image in [0, 1] (H×W×3), its alpha (H×W, or None), and how the file stored it."""

    bgr: np.ndarray
    alpha: np.ndarray | None
    gray: bool
    max_value: int  # 255 or 65535

    @property
    def size(self) -> tuple[int, int]:
        return self.bgr.shape[0], self.bgr.shape[1]


def read_picture(path: str) -> Picture:
    """Any 8- or 16-bit gray, BGR or BGRA file; a file that cannot be decoded is a UserError naming it."""
    data = np.fromfile(path, dtype=np.uint8) if osp.isfile(path) else None
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our one line replaces libpng's warning
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data is not None and data.size else None
    finally:
        cv2.utils.logging.setLogLevel(level)
    if img is None:
        raise UserError(f'{path} is not a readable image (missing, empty or truncated); replace or remove it')
    if img.dtype not in (np.uint8, np.uint16):
        raise UserError(f'{path} has {img.dtype} pixels; only 8- and 16-bit images are supported')
    max_value = 255 if img.dtype == np.uint8 else 65535
    img = img.astype(np.float32) / max_value
    gray = img.ndim == 2 or img.shape[2] == 1
    alpha = None
    if gray:
        img = np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2)
    elif img.shape[2] == 4:
        img, alpha = img[..., :3], img[..., 3]
    return Picture(np.ascontiguousarray(img), alpha, gray, max_value)


def picture_to_array(picture: Picture) -> np.ndarray:
    """The integer array a file holds: gray, BGR or BGRA, at the picture's bit depth (rounded, clipped)."""
    img = picture.bgr.mean(axis=2) if picture.gray else picture.bgr
    if picture.alpha is not None and not picture.gray:
        img = np.concatenate([img, picture.alpha[..., None]], axis=2)
    dtype = np.uint8 if picture.max_value == 255 else np.uint16
    scaled = np.clip(img, 0, 1)  # one float copy, then in place: a 4K output is 100 MB per copy
    scaled *= picture.max_value
    return np.round(scaled, out=scaled).astype(dtype)


def write_image(array: np.ndarray, path: str) -> None:
    """Encode by the file's extension and write it whole or not at all."""
    ext = osp.splitext(path)[1] or '.png'
    ok, encoded = cv2.imencode(ext, array)
    if not ok:
        raise UserError(f'cannot encode an image as {ext}; use .png')
    with staged_file(path) as tmp, open(tmp, 'wb') as handle:
        handle.write(encoded.tobytes())


def list_images(path: str) -> list[str]:
    """One image file, or every image in a folder (sorted); anything else is a UserError."""
    if osp.isfile(path):
        return [path]
    if osp.isdir(path):
        found = image_files(path)
        if not found:
            raise UserError(f'{path} holds no images ({", ".join(IMAGE_EXTENSIONS)})')
        return found
    raise UserError(f'--input {path} does not exist; pass an image file or a folder of images')
