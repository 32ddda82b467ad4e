"""Upscaling assembled tile by tile in the output's own dtype equals the whole-image float path, bit for bit; the
memory plan falls back to tiles, then to a memory-mapped output, then refuses in one line."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import deployable, smooth_image
from core.data.colour import bicubic
from core.deploy.images import Picture, SourcePixels, picture_to_array
from core.deploy.memory_plan import AUTO_TILE, output_buffer, plan_upscale
from core.deploy.runtimes import TorchRuntime
from core.deploy.tiling import plan_tiles
from core.deploy.upscaling import bicubic_region, compare_shape, output_shape, upscale_into, upscale_picture
from core.errors import UserError

GB = 2 ** 30


def _sources() -> dict[str, SourcePixels]:
    bgr = smooth_image(29, 23, 5)
    alpha = smooth_image(29, 23, 6)[..., :1]
    return {'colour': SourcePixels(bgr), 'gray': SourcePixels(bgr[..., 1].copy()),
            'alpha': SourcePixels(np.concatenate([bgr, alpha], axis=2)),
            'deep': SourcePixels(bgr.astype(np.uint16) * 257 + np.arange(23, dtype=np.uint16)[None, :, None])}


@pytest.mark.parametrize('arch, pad', [('ETDSForInference', 6), ('EdgeSR', 3)])
@pytest.mark.parametrize('kind', ['colour', 'gray', 'alpha', 'deep'])
def test_tiles_in_the_final_dtype_equal_the_float_path(arch, pad, kind):
    runtime = TorchRuntime(deployable(arch))
    source = _sources()[kind]
    whole = picture_to_array(upscale_picture(Picture.from_source(source), runtime, None, pad))
    expected_tiled = picture_to_array(upscale_picture(Picture.from_source(source), runtime, (8, 7), pad))
    out = np.empty(output_shape(source, runtime.scale), source.pixels.dtype)
    upscale_into(source, runtime, (8, 7), pad, out)
    assert out.shape == whole.shape and out.dtype == whole.dtype
    assert np.array_equal(out, expected_tiled)  # same float operations, quantized per tile
    # and tiles equal the whole image (bicubic CbCr and alpha read BICUBIC_CONTEXT pixels around each tile)
    assert np.abs(out.astype(int) - whole.astype(int)).max() <= 1
    assert np.mean(out != whole) < 1e-3


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_bicubic_of_a_tile_equals_the_whole_image_bicubic_there(scale):
    image = smooth_image(31, 26, 2).astype(np.float32) / 255
    whole = bicubic(image, scale)
    for t in plan_tiles(31, 26, (7, 9), 0):
        region = bicubic_region(lambda y0, y1, x0, x1: image[y0:y1, x0:x1], t, (31, 26), scale)
        expected = whole[t.y0 * scale:t.y1 * scale, t.x0 * scale:t.x1 * scale]
        assert region.shape == expected.shape and np.abs(region - expected).max() <= 1e-6, t  # float rounding


def test_compare_strip_is_filled_tile_by_tile():
    runtime = TorchRuntime(deployable('ETDSForInference'))
    source, gt = _sources()['colour'], SourcePixels(smooth_image(100, 80, 9))
    out = np.empty(output_shape(source, 4), np.uint8)
    strip = np.zeros(compare_shape(source.size, 4, True), np.uint8)
    upscale_into(source, runtime, (8, 7), 6, out, strip, gt)
    width = 23 * 4
    assert np.array_equal(strip[40:, width:2 * width], out[40:])  # the model panel, below its label
    assert np.array_equal(strip[40:100, 2 * width:2 * width + 80], gt.pixels[40:, :80])  # GT, cropped
    assert not strip[100:, 2 * width:].any() and not strip[40:, 2 * width + 80:].any()  # black beyond a short GT
    assert (strip[:32, :60] == 255).any()  # a label was drawn


def test_the_plan_keeps_what_fits_and_says_what_it_changes():
    args = dict(name='p.jpg', size=(4000, 6000), scale=4, input_bytes=72 * 10 ** 6, output_bytes=1152 * 10 ** 6,
                pad=6, fixed=None, disk_free=500 * GB)
    plan = plan_upscale(**args, tile=(256, 256), available=16 * GB)
    assert (plan.tile, plan.on_disk, plan.note) == ((256, 256), False, None)
    assert 1.2 * 10 ** 9 < plan.peak < 1.6 * 10 ** 9
    whole = plan_upscale(**args, tile=None, available=16 * GB)  # 24 MP whole: the runtime alone is ~25 GB
    assert whole.tile == (AUTO_TILE, AUTO_TILE) and not whole.on_disk
    assert whole.note.startswith('p.jpg: whole-image inference needs about') and '(the same output)' in whole.note
    disk = plan_upscale(**args, tile=(256, 256), available=1 * GB)
    assert disk.on_disk and disk.tile == (256, 256) and 'memory-mapped file beside the output' in disk.note
    with pytest.raises(UserError) as err:
        plan_upscale(**args, tile=(256, 256), available=100 * 2 ** 20)
    message = str(err.value)
    assert message.startswith('p.jpg: upscaling it x4 needs about 1.') and '100 MB is available' in message
    assert '--no-memory-check' in message and '\n' not in message
    with pytest.raises(UserError, match='2.1 GB of disk beside the output, where 1.0 GB is free'):
        plan_upscale(**{**args, 'disk_free': GB}, tile=(256, 256), available=GB)


def test_a_memory_mapped_output_lives_beside_it_and_goes(tmp_path):
    with output_buffer((6, 5, 3), np.dtype(np.uint16), str(tmp_path / 'x.png')) as out:
        out[...] = 7
        assert isinstance(out, np.memmap) and len(list(tmp_path.iterdir())) == 1
        assert next(tmp_path.iterdir()).name.startswith('.x.')
    assert list(tmp_path.iterdir()) == []
