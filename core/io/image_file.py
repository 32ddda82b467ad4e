"""Image files read as hostile input, and written whole with their colour profile and EXIF.

Every image the toolkit reads (upscale inputs and ground truth, calibration, training and test data) comes
through here. The header is read first (Pillow, without decoding), so a file that declares more pixels than
the limit, is cut short, is animated or is not an image at all is one line naming it, before a decoder
allocates anything. OpenCV then decodes it (the decoder basicsr uses, so the pixels are the ones the papers'
code sees), and the EXIF orientation is applied the way a photo viewer shows the photo.
"""

from __future__ import annotations

import contextlib
import io
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from os import path as osp
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from core.errors import UserError
from core.io.pixel_limit import DEFAULT_MAX_MEGAPIXELS, check_pixel_count
from core.io.staging import staged_file

READ_FORMATS = ('PNG', 'JPEG', 'WEBP', 'TIFF', 'BMP', 'GIF')  # what both Pillow identifies and OpenCV decodes
_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class ImageHeader:
    """What a file declares, read without decoding it."""

    format: str  # Pillow's name: PNG, JPEG, WEBP, TIFF, BMP or GIF
    width: int  # as stored, before the EXIF orientation
    height: int
    mode: str  # Pillow's mode: RGB, RGBA, L, P, CMYK, I;16, ...
    frames: int


@dataclass(frozen=True)
class ImageMetadata:
    """The blocks a written image carries over from its source: EXIF (orientation reset to upright) and ICC."""

    exif: bytes | None = None
    icc: bytes | None = None

    def as_cv2(self) -> tuple[list[int], list[np.ndarray]]:
        blocks = [(cv2.IMAGE_METADATA_EXIF, self.exif), (cv2.IMAGE_METADATA_ICCP, self.icc)]
        kept = [(kind, np.frombuffer(block, np.uint8)) for kind, block in blocks if block]
        return [kind for kind, _ in kept], [block for _, block in kept]


@dataclass
class DecodedImage:
    """Upright pixels as the file stores them: H×W gray, H×W×3 BGR or H×W×4 BGRA, uint8 or uint16."""

    pixels: np.ndarray
    metadata: ImageMetadata
    header: ImageHeader


@contextlib.contextmanager
def _pillow_size_check_off() -> Iterator[None]:
    """Pillow refuses large headers itself, without saying the size; check_pixel_count says it, with its hint."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _cut_short(handle: BinaryIO, size: int) -> str | None:
    """The format of a file cut short, by its magic bytes, before any decoder reads it: a copy or download cut
    short lacks what a whole file ends with or declares (lenient about padding after the end)."""
    handle.seek(0)
    head = handle.read(12)
    handle.seek(max(0, size - 4096))
    tail = handle.read()
    if head.startswith(b'\x89PNG'):
        return 'PNG' if b'IEND' not in tail else None
    if head.startswith(b'\xff\xd8'):
        return 'JPEG' if b'\xff\xd9' not in tail else None
    if head.startswith(b'RIFF') and head[8:12] == b'WEBP':  # RIFF declares what follows its first 8 bytes
        return 'WEBP' if size < 8 + struct.unpack('<I', head[4:8])[0] else None
    if head.startswith(b'BM') and len(head) >= 6:  # as does the BMP file header
        return 'BMP' if size < struct.unpack('<I', head[2:6])[0] else None
    return None  # TIFF and GIF: OpenCV's decoder fails on a short file


def _webp_size(handle: BinaryIO) -> tuple[int, int] | None:
    """(width, height) a WebP declares, parsed here because Pillow's WebP reader sets up libwebp's decoder, which
    allocates the whole canvas, before it reports the size."""
    handle.seek(0)
    head = handle.read(30)
    if len(head) < 30 or not (head.startswith(b'RIFF') and head[8:12] == b'WEBP'):
        return None
    kind = head[12:16]
    if kind == b'VP8X':  # extended: the canvas, 24-bit fields stored minus one
        return int.from_bytes(head[24:27], 'little') + 1, int.from_bytes(head[27:30], 'little') + 1
    if kind == b'VP8L' and head[20] == 0x2F:  # lossless: 14-bit fields stored minus one
        bits = int.from_bytes(head[21:25], 'little')
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b'VP8 ':  # lossy: the key frame's 14-bit fields
        return (int.from_bytes(head[26:28], 'little') & 0x3FFF), (int.from_bytes(head[28:30], 'little') & 0x3FFF)
    return None


def read_header(name: str, handle: BinaryIO, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
                hint: str = 'shrink it first') -> ImageHeader:
    """The header of an open file, checked: whole, a known still-image format, within the pixel limit.

    Reads the first and last few kilobytes only, so checking a data set of large images up front is cheap.
    """
    size = handle.seek(0, io.SEEK_END)
    if size == 0:
        raise UserError(f'{name} is empty (0 bytes); replace it or remove it')
    cut = _cut_short(handle, size)
    if cut is not None:
        raise UserError(f'{name} is truncated (the {cut} file ends early); replace it or remove it')
    webp = _webp_size(handle)
    if webp is not None:
        check_pixel_count(name, webp[1], webp[0], max_megapixels, hint)
    handle.seek(0)
    try:
        with _pillow_size_check_off(), Image.open(handle) as image:
            header = ImageHeader(image.format, image.width, image.height, image.mode, getattr(image, 'n_frames', 1))
    except UnidentifiedImageError:
        raise UserError(f'{name} is not an image this toolkit reads; pass an 8- or 16-bit PNG, JPEG, WebP, TIFF or '
                        'BMP file') from None
    except (OSError, SyntaxError, ValueError) as err:
        raise UserError(f'{name} is a damaged image ({err}); replace it or remove it') from None
    if header.format not in READ_FORMATS:
        raise UserError(f'{name} is a {header.format} image, which this toolkit does not read; convert it to PNG')
    check_pixel_count(name, header.height, header.width, max_megapixels, hint)
    if header.frames > 1:
        raise UserError(f'{name} holds {header.frames} frames (animated or multi-page); upscale it as a video '
                        f'(ffmpeg -i {osp.basename(name)} clip.mp4) or save the one frame you want as PNG')
    return header


def _require_file(path: str) -> None:
    if not osp.isfile(path):
        raise UserError(f'{path} does not exist; check the path')


def image_header(path: str, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
                 hint: str = 'shrink it first') -> ImageHeader:
    _require_file(path)
    with open(path, 'rb') as handle:
        return read_header(path, handle, max_megapixels, hint)


def _ifd0_orientation(exif: bytes) -> tuple[int, int | None, str]:
    """The EXIF orientation (1–8; 1 when absent or malformed), the byte offset of its value in `exif` (None when
    absent), and the block's byte order.

    Parsed by hand: Pillow's Exif reads the tag but writes the block back only whole and re-serialized (maker
    notes and unknown tags may change); here the orientation is one SHORT, rewritten in place.
    """
    start = 6 if exif.startswith(b'Exif\x00\x00') else 0
    body = exif[start:]
    if len(body) < 8 or body[:2] not in (b'II', b'MM'):
        return 1, None, '<'
    order = '<' if body[:2] == b'II' else '>'
    ifd = struct.unpack(order + 'I', body[4:8])[0]
    if ifd + 2 > len(body):
        return 1, None, order
    for i in range(struct.unpack(order + 'H', body[ifd:ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(body):
            break
        tag, kind = struct.unpack(order + 'HH', body[entry:entry + 4])
        if tag == _ORIENTATION_TAG and kind == 3:  # SHORT
            value = struct.unpack(order + 'H', body[entry + 8:entry + 10])[0]
            return (value if 1 <= value <= 8 else 1), start + entry + 8, order
    return 1, None, order


def _upright_exif(exif: bytes) -> tuple[int, bytes]:
    """The orientation, and the EXIF block with it set to 1 (the written pixels are already upright)."""
    orientation, offset, order = _ifd0_orientation(exif)
    if offset is None or orientation == 1:
        return orientation, exif
    return orientation, exif[:offset] + struct.pack(order + 'H', 1) + exif[offset + 2:]


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Pixels as stored → as shown (EXIF orientations 2–8: mirrors and quarter turns)."""
    turns = {1: (0, False), 2: (0, True), 3: (2, False), 4: (2, True),
             5: (3, True), 6: (3, False), 7: (1, True), 8: (1, False)}[orientation]
    shown = np.rot90(pixels, turns[0])
    return np.ascontiguousarray(shown[:, ::-1] if turns[1] else shown)


def _quiet_decode(data: np.ndarray, flags: int) -> tuple[np.ndarray | None, list, list]:
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our one line replaces the decoder's
    try:
        return cv2.imdecodeWithMetadata(data, flags)
    finally:
        cv2.utils.logging.setLogLevel(level)


def _checked_decode(name: str, data: bytes, max_megapixels: float, hint: str,
                    flags: Callable[[ImageHeader], int]) -> tuple[ImageHeader, np.ndarray, list, list]:
    """The checked header, then OpenCV's decoding with the flags it calls for, and its metadata blocks."""
    header = read_header(name, io.BytesIO(data), max_megapixels, hint)
    pixels, kinds, blocks = _quiet_decode(np.frombuffer(data, np.uint8), flags(header))
    if pixels is None or pixels.size == 0:
        raise UserError(f'{name} cannot be decoded (a corrupt or truncated {header.format}); replace it or remove it')
    return header, pixels, kinds, blocks


def _as_stored(header: ImageHeader) -> int:
    """Unchanged; but CMYK (which has no alpha) as colour: OpenCV converts it to BGR only then."""
    return (cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION) if header.mode == 'CMYK' else cv2.IMREAD_UNCHANGED


def decode_image_bytes(name: str, data: bytes, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
                       hint: str = 'shrink it first') -> DecodedImage:
    """A checked, upright image with its EXIF and ICC; any file that cannot be read is one UserError naming it."""
    header, pixels, kinds, blocks = _checked_decode(name, data, max_megapixels, hint, _as_stored)
    if pixels.dtype not in (np.uint8, np.uint16):
        raise UserError(f'{name} has {pixels.dtype} pixels; only 8- and 16-bit images are read; convert it to PNG')
    found = {int(kind): bytes(block.ravel()) for kind, block in zip(kinds, blocks, strict=True)}
    orientation, exif = _upright_exif(found[cv2.IMAGE_METADATA_EXIF]) if found.get(cv2.IMAGE_METADATA_EXIF) \
        else (1, None)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    return DecodedImage(apply_orientation(pixels, orientation),
                        ImageMetadata(exif, found.get(cv2.IMAGE_METADATA_ICCP)), header)


def read_file_bytes(path: str) -> bytes:
    _require_file(path)
    with open(path, 'rb') as handle:
        return handle.read()


def decode_image(path: str, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
                 hint: str = 'shrink it first') -> DecodedImage:
    return decode_image_bytes(path, read_file_bytes(path), max_megapixels, hint)


def decode_bgr8(name: str, data: bytes, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
                hint: str = 'shrink it first') -> np.ndarray:
    """H×W×3 uint8 BGR, what basicsr's `imfrombytes` gives training and test data, from a checked file."""
    return _checked_decode(name, data, max_megapixels, hint, lambda _: cv2.IMREAD_COLOR)[1]


def write_image(array: np.ndarray, path: str, metadata: ImageMetadata | None = None) -> list[str]:
    """Encode by the file's extension, with the metadata the format holds, and write it whole or not at all.

    OpenCV writes straight to the file row by row, so no encoded copy of a large image is held in memory. A
    profile the encoder rejects (libpng checks ICC profiles; some cameras write malformed ones) is left out
    rather than losing the image: returns the names of the blocks left out.
    """
    ext = osp.splitext(path)[1] or '.png'
    metadata = metadata or ImageMetadata()
    icc = ['ICC profile'] if metadata.icc else []
    attempts = [(metadata, []), (ImageMetadata(metadata.exif, None), icc),
                (ImageMetadata(), icc + (['EXIF'] if metadata.exif else []))]
    with staged_file(path) as tmp:
        for kept, dropped in attempts:
            if cv2.imwriteWithMetadata(tmp, array, *kept.as_cv2()):
                return dropped
        raise UserError(f'cannot encode {osp.basename(path)} as {ext}; use .png')
