"""Colour images and their Y channel, as test.py and the papers' MATLAB code treat them.

1-channel models see MATLAB's Y; their output is shown in colour with the LR image's CbCr upscaled by MATLAB
bicubic (basicsr's `imresize`), both where test.py saves images and where upscale.py writes a user's photo.
"""

from __future__ import annotations

import numpy as np
from basicsr.utils import bgr2ycbcr, ycbcr2bgr
from basicsr.utils.matlab_functions import imresize


def bicubic(img: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB bicubic (basicsr's imresize) of an H×W or H×W×C float image."""
    planar = img.ndim == 2
    out = imresize(img[..., None] if planar else img, scale)
    return out[..., 0] if planar else out


def colour_from_y(sr_y: np.ndarray, lr_bgr: np.ndarray, scale: int) -> np.ndarray:
    """BGR float image from a super-resolved H×W(×1) Y and the LR image's CbCr, bicubic-upscaled and cropped to it."""
    cbcr = bicubic(bgr2ycbcr(lr_bgr)[..., 1:], scale)[:sr_y.shape[0], :sr_y.shape[1]]
    return join_y_cbcr(sr_y, cbcr)


def join_y_cbcr(sr_y: np.ndarray, cbcr: np.ndarray) -> np.ndarray:
    """BGR float image from a super-resolved H×W(×1) Y (clipped to [0, 1]) and an H×W×2 CbCr of the same size."""
    y = sr_y.reshape(sr_y.shape[0], sr_y.shape[1], 1)
    return ycbcr2bgr(np.concatenate([np.clip(y, 0, 1), cbcr], axis=2).astype(np.float32))


def network_input(bgr: np.ndarray, num_in_ch: int) -> np.ndarray:
    """An H×W×3 BGR float image as a network of `num_in_ch` channels reads it: RGB, or MATLAB's Y (H×W×1)."""
    return bgr2ycbcr(bgr, y_only=True)[..., None] if num_in_ch == 1 else bgr[..., ::-1]
