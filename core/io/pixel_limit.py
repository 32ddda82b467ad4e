"""The one limit on how many pixels an image or video frame may declare (standard library only, so command lines
can show its default in --help before numpy loads)."""

from __future__ import annotations

from core.errors import UserError

DEFAULT_MAX_MEGAPIXELS = 300.0  # a 200 MP phone photo passes; a 40000×40000 decompression bomb does not


def check_pixel_count(name: str, height: int, width: int, max_megapixels: float, hint: str) -> None:
    """Refuse an image or video frame that declares more pixels than the limit, before anything is decoded."""
    megapixels = height * width / 1e6
    if megapixels > max_megapixels:
        raise UserError(f'{name} declares {width}×{height} pixels ({megapixels:,.0f} MP), over the '
                        f'{max_megapixels:g} MP limit for one image; {hint}')
