"""Every image reader's checks: hostile files are one line naming them, unusual ones come out right."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from basicsr.utils import imfrombytes
from hostile_images import EXPECTED, corpus_bytes, photo, png_bomb, webp_size_patched
from PIL import Image

from core.errors import UserError
from core.io.image_file import ImageMetadata, decode_bgr8, decode_image, decode_image_bytes, image_header, write_image
from core.io.video import VideoSource


@pytest.fixture(scope='module')
def corpus() -> dict[str, bytes]:
    return corpus_bytes()


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_each_hostile_or_unusual_file_is_read_right_or_refused_in_one_line(corpus, name):
    if EXPECTED[name] == 'ok':
        image = decode_image_bytes(name, corpus[name])
        assert image.pixels.dtype in (np.uint8, np.uint16) and image.pixels.shape[:2] in ((24, 32), (32, 24), (1, 1))
        return
    with pytest.raises(UserError) as err:
        decode_image_bytes(name, corpus[name])
    message = str(err.value)
    assert message.startswith(name) and EXPECTED[name] in message and '\n' not in message, message


def test_the_limit_is_an_option_and_reads_only_the_header(tmp_path):
    path = tmp_path / 'bomb.png'
    path.write_bytes(png_bomb(20000, 10000))  # 200 MP in 1 KB
    assert image_header(str(path)).width == 20000  # under the default 300 MP: the header is fine
    with pytest.raises(UserError, match=r'bomb.png declares 20000×10000 pixels \(200 MP\), over the 50 MP limit'):
        image_header(str(path), max_megapixels=50, hint='raise it')
    for lossless in (True, False):  # WebP's own headers are parsed before libwebp allocates a canvas
        with pytest.raises(UserError, match='declares 16000×15000 pixels'):
            decode_image_bytes('w.webp', webp_size_patched(16000, 15000, lossless), max_megapixels=100)


@pytest.mark.parametrize('orientation', range(1, 9))
@pytest.mark.parametrize('fmt', ['JPEG', 'PNG'])
def test_exif_orientation_is_applied_as_a_viewer_shows_it_and_reset_in_the_output(tmp_path, orientation, fmt):
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = 'Hostile Camera Co.'
    buf = io.BytesIO()
    Image.fromarray(photo()).save(buf, fmt, exif=exif.tobytes())
    data = buf.getvalue()
    image = decode_image_bytes(f'x.{fmt.lower()}', data)
    shown = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # OpenCV's own EXIF handling
    assert np.array_equal(image.pixels, shown)
    write_image(image.pixels, str(tmp_path / 'out.png'), image.metadata)
    with Image.open(tmp_path / 'out.png') as written:
        assert written.getexif()[0x0112] == 1 and written.getexif()[0x010F] == 'Hostile Camera Co.'


def test_icc_profile_and_exif_are_kept(tmp_path, corpus):
    image = decode_image_bytes('rotated.jpg', corpus['rotated.jpg'])
    with Image.open(io.BytesIO(corpus['rotated.jpg'])) as source:
        icc = source.info['icc_profile']
    assert image.metadata.icc == icc and image.pixels.shape == (32, 24, 3)
    write_image(image.pixels, str(tmp_path / 'out.png'), image.metadata)
    with Image.open(tmp_path / 'out.png') as written:
        assert written.info['icc_profile'] == icc and written.getexif()[0x010F] == 'Hostile Camera Co.'
    assert write_image(image.pixels, str(tmp_path / 'bad.png'), ImageMetadata(image.metadata.exif, b'\0' * 20)) \
        == ['ICC profile']  # libpng rejects a malformed profile: the image is written without it
    with Image.open(tmp_path / 'bad.png') as written:
        assert 'icc_profile' not in written.info and written.getexif()[0x010F] == 'Hostile Camera Co.'
    write_image(image.pixels, str(tmp_path / 'plain.png'), ImageMetadata())
    with Image.open(tmp_path / 'plain.png') as written:
        assert 'icc_profile' not in written.info and 'exif' not in written.info


def test_cmyk_palette_deep_and_gif_come_out_right(corpus):
    rgb = photo().astype(int)
    cmyk = decode_image_bytes('cmyk.jpg', corpus['cmyk.jpg']).pixels
    assert cmyk.shape == (24, 32, 3) and np.abs(cmyk[..., ::-1].astype(int) - rgb).max() <= 3
    palette = decode_image_bytes('p.png', corpus['palette_transparent.png']).pixels
    with Image.open(io.BytesIO(corpus['palette_transparent.png'])) as source:
        rgba = np.array(source.convert('RGBA'))
    assert np.array_equal(palette[..., [2, 1, 0, 3]], rgba) and (palette[..., 3] == 0).any()
    deep = decode_image_bytes('deep.png', corpus['deep.png']).pixels
    assert deep.dtype == np.uint16 and np.array_equal(deep, photo().astype(np.uint16) * 257)  # OpenCV wrote it as BGR
    assert np.array_equal(decode_image_bytes('g.gif', corpus['still.gif']).pixels.shape, (24, 32, 3))
    assert np.array_equal(decode_image_bytes('n.jpg', corpus['png_named.jpg']).pixels[..., ::-1], photo())


def test_training_data_decodes_as_basicsr_does_after_the_checks(corpus):
    for name in ('photo.webp', 'rotated.jpg', 'deep.png', 'palette_transparent.png', 'cmyk.jpg'):
        assert np.array_equal(decode_bgr8(name, corpus[name]), imfrombytes(corpus[name])), name
    with pytest.raises(UserError, match='truncated.png is truncated'):
        decode_bgr8('truncated.png', corpus['truncated.png'])


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(UserError, match='nope.png does not exist'):
        decode_image(str(tmp_path / 'nope.png'))


def test_video_frames_meet_the_same_limit(tmp_path):
    from core.data.demo_clip import write_demo_clip

    clip = str(tmp_path / 'clip.mp4')
    write_demo_clip(clip, height=36, width=64, seconds=0.1, audio=False)
    assert VideoSource(clip).width == 64
    with pytest.raises(UserError, match=r'clip.mp4 declares 64×36 pixels \(0 MP\), over the 0.001 MP limit'):
        VideoSource(clip, max_megapixels=0.001)
