"""A corpus of hostile and unusual image files, made here: bombs by header, truncated files, wrong extensions,
empty files, 1×1, EXIF-rotated photos, CMYK, palette with transparency, animated GIF, 16-bit, float TIFF."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms

# name → what reading it gives: 'ok', or a fragment of its one-line error
EXPECTED = {
    'bomb.png': 'declares 40000×40000 pixels (1,600 MP), over the 300 MP limit',
    'bomb.jpg': 'declares 60000×50000 pixels (3,000 MP)',
    'bomb.webp': 'declares 30000×20000 pixels (600 MP)',
    'bomb.tif': 'declares 50000×50000 pixels (2,500 MP)',
    'truncated.png': 'is truncated (the PNG file ends early)',
    'truncated.jpg': 'is truncated (the JPEG file ends early)',
    'truncated.webp': 'is truncated (the WEBP file ends early)',
    'truncated.tif': 'cannot be decoded (a corrupt or truncated TIFF)',
    'text.png': 'is not an image this toolkit reads',
    'empty.png': 'is empty (0 bytes)',
    'animated.gif': 'holds 3 frames (animated or multi-page)',
    'float.tif': 'is not an image this toolkit reads',
    'png_named.jpg': 'ok',
    'one_pixel.png': 'ok',
    'rotated.jpg': 'ok',
    'cmyk.jpg': 'ok',
    'palette_transparent.png': 'ok',
    'still.gif': 'ok',
    'deep.png': 'ok',
    'photo.webp': 'ok',
    'photo.tif': 'ok',
}


def photo(height: int = 24, width: int = 32) -> np.ndarray:
    """An RGB uint8 image with structure (a gradient and a few blocks)."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], axis=2)
    rgb[height // 4:height // 2, width // 4:width // 2] = (250, 30, 60)
    return rgb.astype(np.uint8)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A complete, tiny PNG whose header declares width×height (its data would inflate to all of it)."""
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b'\x00' * 1024)
    return b'\x89PNG\r\n\x1a\n' + _chunk(b'IHDR', ihdr) + _chunk(b'IDAT', idat) + _chunk(b'IEND', b'')


def _encode(rgb: np.ndarray | Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    (rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)).save(buf, fmt, **options)
    return buf.getvalue()


def _jpeg_bomb(width: int, height: int) -> bytes:
    data = bytearray(_encode(photo(), 'JPEG'))
    sof = data.index(b'\xff\xc0')  # baseline frame header: length, precision, height, width
    data[sof + 5:sof + 9] = struct.pack('>HH', height, width)
    return bytes(data)


def _webp_bomb(width: int, height: int) -> bytes:
    """An extended (VP8X) WebP whose canvas declares width×height (24-bit fields, stored minus one)."""
    body = _encode(photo(), 'WEBP', lossless=True)[12:]  # the VP8L chunk
    vp8x = b'VP8X' + struct.pack('<I', 10) + b'\x00\x00\x00\x00' + (width - 1).to_bytes(3, 'little') \
        + (height - 1).to_bytes(3, 'little')
    payload = b'WEBP' + vp8x + body
    return b'RIFF' + struct.pack('<I', len(payload)) + payload


def webp_size_patched(width: int, height: int, lossless: bool) -> bytes:
    """A WebP whose own bitstream header (VP8L or VP8) declares width×height (at most 16383 a side)."""
    data = bytearray(_encode(photo(), 'WEBP', lossless=lossless, quality=90))
    if lossless:
        bits = int.from_bytes(data[21:25], 'little') & ~0xFFFFFFF
        data[21:25] = (bits | (width - 1) | ((height - 1) << 14)).to_bytes(4, 'little')
    else:
        data[26:28] = width.to_bytes(2, 'little')
        data[28:30] = height.to_bytes(2, 'little')
    return bytes(data)


def _tiff_bomb(width: int, height: int) -> bytes:
    """A TIFF whose ImageWidth and ImageLength tags (rewritten in IFD0) declare width×height."""
    data = bytearray(_encode(photo(), 'TIFF'))
    order = '<' if data[:2] == b'II' else '>'
    ifd = struct.unpack(order + 'I', data[4:8])[0]
    for i in range(struct.unpack(order + 'H', data[ifd:ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        tag, kind = struct.unpack(order + 'HH', data[entry:entry + 4])
        if tag in (256, 257):
            value = width if tag == 256 else height
            data[entry + 2:entry + 12] = struct.pack(order + 'HII', 4, 1, value)  # as a LONG
    return bytes(data)


def _rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90° clockwise
    exif[0x010F] = 'Hostile Camera Co.'
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
    return _encode(photo(), 'JPEG', quality=95, exif=exif.tobytes(), icc_profile=srgb)


def _animated_gif() -> bytes:
    frames = [Image.fromarray(np.roll(photo(), k * 5, axis=1)) for k in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, 'GIF', save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def _palette_png() -> bytes:
    image = Image.fromarray(photo()).convert('P', palette=Image.Palette.ADAPTIVE, colors=8)
    buf = io.BytesIO()
    image.save(buf, 'PNG', transparency=0)
    return buf.getvalue()


def corpus_bytes() -> dict[str, bytes]:
    rgb = photo()
    png = _encode(rgb, 'PNG')
    jpeg = _encode(rgb, 'JPEG', quality=95)
    webp = _encode(rgb, 'WEBP', lossless=True)
    tif = _encode(rgb, 'TIFF')
    files = {
        'bomb.png': png_bomb(40000, 40000),
        'bomb.jpg': _jpeg_bomb(60000, 50000),
        'bomb.webp': _webp_bomb(30000, 20000),
        'bomb.tif': _tiff_bomb(50000, 50000),
        'truncated.png': png[:len(png) * 2 // 3],
        'truncated.jpg': jpeg[:len(jpeg) * 2 // 3],
        'truncated.webp': webp[:len(webp) * 2 // 3],
        'truncated.tif': tif[:len(tif) * 2 // 3],
        'empty.png': b'',
        'text.png': b'hello, I am not a picture\n' * 10,
        'animated.gif': _animated_gif(),
        'float.tif': _encode_float_tiff(),
        'png_named.jpg': png,
        'one_pixel.png': _encode(rgb[:1, :1], 'PNG'),
        'rotated.jpg': _rotated_jpeg(),
        'cmyk.jpg': _encode(Image.fromarray(rgb).convert('CMYK'), 'JPEG', quality=100),
        'palette_transparent.png': _palette_png(),
        'still.gif': _encode(rgb, 'GIF'),
        'deep.png': cv2.imencode('.png', rgb.astype(np.uint16) * 257)[1].tobytes(),
        'photo.webp': webp,
        'photo.tif': tif,
    }
    assert set(files) == set(EXPECTED)
    return files


def _encode_float_tiff() -> bytes:
    ok, data = cv2.imencode('.tif', photo().astype(np.float32) / 255)
    assert ok
    return data.tobytes()


def write_corpus(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, data in corpus_bytes().items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    return paths
