"""User images as the network path sees them: gray, colour, colour + alpha, 8 or 16 bits per channel.

The network always sees float BGR in [0, 1]; what was special about the file (gray, alpha, bit depth, EXIF and
colour profile) is carried beside it so the result is written back in the same kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import path as osp

import numpy as np

from core.data.layouts import IMAGE_EXTENSIONS, image_files
from core.errors import UserError
from core.io.image_file import DecodedImage, ImageMetadata, decode_image
from core.io.pixel_limit import DEFAULT_MAX_MEGAPIXELS


@dataclass
class SourcePixels:
    """A decoded image kept in its own integers, handed out crop by crop as the float the network path uses, so a
    large photo never exists whole as float32 (4 bytes a channel)."""

    pixels: np.ndarray  # H×W gray, H×W×3 BGR or H×W×4 BGRA; uint8 or uint16
    metadata: ImageMetadata = field(default_factory=ImageMetadata)

    @classmethod
    def from_decoded(cls, image: DecodedImage) -> SourcePixels:
        return cls(image.pixels, image.metadata)

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]

    @property
    def gray(self) -> bool:
        return self.pixels.ndim == 2

    @property
    def has_alpha(self) -> bool:
        return self.pixels.ndim == 3 and self.pixels.shape[2] == 4

    @property
    def max_value(self) -> int:
        return 255 if self.pixels.dtype == np.uint8 else 65535

    def bgr(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Rows [y0, y1) × columns [x0, x1) as float32 BGR in [0, 1] (gray repeated into three channels)."""
        crop = self.pixels[y0:y1, x0:x1]
        crop = np.repeat(crop[..., None], 3, axis=2) if self.gray else crop[..., :3]
        return crop.astype(np.float32) / self.max_value

    def alpha(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray | None:
        if not self.has_alpha:
            return None
        return self.pixels[y0:y1, x0:x1, 3].astype(np.float32) / self.max_value


@dataclass
class Picture:
    """A float32 BGR image in [0, 1] (H×W×3), its alpha (H×W, or None), and how the file stored it."""

    bgr: np.ndarray
    alpha: np.ndarray | None
    gray: bool
    max_value: int  # 255 or 65535
    metadata: ImageMetadata = field(default_factory=ImageMetadata)

    @property
    def size(self) -> tuple[int, int]:
        return self.bgr.shape[0], self.bgr.shape[1]

    @classmethod
    def from_source(cls, source: SourcePixels) -> Picture:
        height, width = source.size
        return cls(source.bgr(0, height, 0, width), source.alpha(0, height, 0, width), source.gray,
                   source.max_value, source.metadata)


def read_source(path: str, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
                hint: str = 'shrink it first') -> SourcePixels:
    """Any checked 8- or 16-bit gray, BGR or BGRA file, upright; a file that cannot be read is one UserError."""
    return SourcePixels.from_decoded(decode_image(path, max_megapixels, hint))


def read_picture(path: str, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> Picture:
    """A whole image as float: for small images (calibration, tests); large ones go through SourcePixels."""
    return Picture.from_source(read_source(path, max_megapixels))


def quantize(bgr: np.ndarray, alpha: np.ndarray | None, gray: bool, max_value: int) -> np.ndarray:
    """The integers a file holds: gray, BGR or BGRA, at the given bit depth (rounded, clipped)."""
    img = bgr.mean(axis=2) if gray else bgr
    if alpha is not None and not gray:
        img = np.concatenate([img, alpha[..., None]], axis=2)
    dtype = np.uint8 if max_value == 255 else np.uint16
    scaled = np.clip(img, 0, 1)  # one float copy, then in place
    scaled *= max_value
    return np.round(scaled, out=scaled).astype(dtype)


def picture_to_array(picture: Picture) -> np.ndarray:
    return quantize(picture.bgr, picture.alpha, picture.gray, picture.max_value)


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
