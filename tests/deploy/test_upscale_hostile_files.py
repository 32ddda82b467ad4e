"""scripts/upscale.py on hostile and unusual files, on memory it does not have, and with benchmark ground truth:
a right output or one line with exit 2, and nothing partial left in the output folder."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from basicsr.archs import build_network
from hostile_images import EXPECTED, write_corpus
from PIL import Image

import core.deploy.image_upscaling as image_upscaling
from conftest import perturb, smooth_image, tiny_etds
from core.cli.upscale import main
from core.io.checkpoint import save_checkpoint


@pytest.fixture(scope='module')
def model(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp('model') / 'etds.pth'
    args = {k: v for k, v in tiny_etds(2).items() if k != 'type'}
    save_checkpoint(str(path), perturb(build_network(tiny_etds(2)), 0.05).state_dict(), {'arch': 'ETDS', 'args': args})
    return str(path)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    out, err = capsys.readouterr()
    return done.value.code, out, err


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp('corpus'))


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_each_file_gives_a_right_output_or_one_line(model, corpus, tmp_path, capsys, name):
    out_dir = tmp_path / 'out'
    code, out, err = _run(capsys, '--model', model, '--input', str(corpus[name]), '--output', str(out_dir))
    written = sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []
    if EXPECTED[name] != 'ok':
        assert code == 2 and err.count('\n') == 1 and err.startswith(f'error: {corpus[name]}'), err
        assert EXPECTED[name] in err and written == []
        return
    stem = name.rsplit('.', 1)[0]
    assert code == 0 and written == [f'{stem}.png'], (err, written)
    result = cv2.imread(str(out_dir / f'{stem}.png'), cv2.IMREAD_UNCHANGED)
    source = cv2.imdecode(np.fromfile(corpus[name], np.uint8), cv2.IMREAD_UNCHANGED)
    upright = (32, 24) if name == 'rotated.jpg' else source.shape[:2]
    assert result.shape[:2] == (upright[0] * 2, upright[1] * 2)
    assert result.dtype == (np.uint16 if name == 'deep.png' else np.uint8)
    assert result.ndim == 3 and result.shape[2] == (4 if name == 'palette_transparent.png' else 3)


def test_a_rotated_photo_comes_out_upright_with_its_profile(model, corpus, tmp_path, capsys):
    with Image.open(corpus['rotated.jpg']) as photo:
        upright = photo.transpose(Image.Transpose.ROTATE_270)  # orientation 6: shown turned 90° clockwise
        icc = photo.info['icc_profile']
    upright.save(tmp_path / 'upright.png')
    for name, source in (('rotated', corpus['rotated.jpg']), ('upright', tmp_path / 'upright.png')):
        assert _run(capsys, '--model', model, '--input', str(source), '--output', str(tmp_path / name))[0] == 0
    rotated = cv2.imread(str(tmp_path / 'rotated' / 'rotated.png')).astype(int)
    assert np.abs(rotated - cv2.imread(str(tmp_path / 'upright' / 'upright.png')).astype(int)).max() <= 1
    with Image.open(tmp_path / 'rotated' / 'rotated.png') as written:
        assert written.info['icc_profile'] == icc and written.getexif()[0x0112] == 1


def test_an_output_too_big_for_memory_goes_to_a_mapped_file_then_is_refused(model, tmp_path, capsys, monkeypatch):
    cv2.imwrite(str(tmp_path / 'wide.png'), smooth_image(200, 240, 3))  # outputs of 0.6 and 1.2 MB
    base = ['--model', model, '--input', str(tmp_path / 'wide.png'), '--tile', '32']
    assert _run(capsys, *base, '--output', str(tmp_path / 'memory'), '--compare')[0] == 0
    monkeypatch.setattr(image_upscaling, 'available_memory', lambda: 3 * 2 ** 20)  # room for tiles, not the output
    code, out, _ = _run(capsys, *base, '--output', str(tmp_path / 'disk'), '--compare')
    assert code == 0 and 'assembling it in a memory-mapped file beside the output' in out
    assert sorted(p.name for p in (tmp_path / 'disk').iterdir()) == ['wide.png', 'wide_compare.png']
    for name in ('wide.png', 'wide_compare.png'):
        assert (tmp_path / 'disk' / name).read_bytes() == (tmp_path / 'memory' / name).read_bytes()
    monkeypatch.setattr(image_upscaling, 'available_memory', lambda: 10 * 2 ** 18)  # without the comparison strip
    code, out, _ = _run(capsys, *base, '--output', str(tmp_path / 'alone'))
    assert code == 0 and 'memory-mapped' in out and [p.name for p in (tmp_path / 'alone').iterdir()] == ['wide.png']
    assert (tmp_path / 'alone' / 'wide.png').read_bytes() == (tmp_path / 'memory' / 'wide.png').read_bytes()
    monkeypatch.setattr(image_upscaling, 'available_memory', lambda: 2 ** 20)
    code, _, err = _run(capsys, *base, '--output', str(tmp_path / 'refused'))
    assert code == 2 and err.count('\n') == 1 and '--no-memory-check' in err and 'is available' in err
    assert not (tmp_path / 'refused').exists() or list((tmp_path / 'refused').iterdir()) == []
    code, _, _ = _run(capsys, *base, '--output', str(tmp_path / 'forced'), '--no-memory-check')
    assert code == 0
    assert (tmp_path / 'forced' / 'wide.png').read_bytes() == (tmp_path / 'memory' / 'wide.png').read_bytes()


def test_gt_reads_the_benchmark_layouts(model, tmp_path, capsys):
    hr = smooth_image(48, 28, 1)
    (tmp_path / 'set' / 'HR').mkdir(parents=True)
    (tmp_path / 'set' / 'LR_bicubic' / 'X2').mkdir(parents=True)
    cv2.imwrite(str(tmp_path / 'set' / 'HR' / 'zebra.png'), hr)
    cv2.imwrite(str(tmp_path / 'set' / 'LR_bicubic' / 'X2' / 'zebrax2.png'), hr[::2, ::2])
    lr = str(tmp_path / 'set' / 'LR_bicubic' / 'X2')
    for i, gt in enumerate((tmp_path / 'set', tmp_path / 'set' / 'HR')):
        code, _, err = _run(capsys, '--model', model, '--input', lr, '--output', str(tmp_path / f'o{i}'), '--compare',
                            '--gt', str(gt))
        assert code == 0, err
        strip = cv2.imread(str(tmp_path / f'o{i}' / 'zebrax2_compare.png'))
        assert strip.shape == (48, 84, 3) and np.array_equal(strip[32:, 56:], hr[32:])  # the GT panel, under its label
    code, _, err = _run(capsys, '--model', model, '--input', f'{lr}/zebrax2.png', '--output', str(tmp_path / 'x'),
                        '--compare', '--gt', str(tmp_path))
    assert code == 2 and 'has no ground truth for zebrax2.png' in err and err.count('\n') == 1


def test_the_pixel_limit_is_an_option(model, tmp_path, capsys):
    cv2.imwrite(str(tmp_path / 'photo.png'), smooth_image(100, 120, 2))
    base = ['--model', model, '--input', str(tmp_path / 'photo.png')]
    code, _, err = _run(capsys, *base, '--output', str(tmp_path / 'a'), '--max-megapixels', '0.01')
    assert code == 2 and err.count('\n') == 1
    assert 'declares 120×100 pixels (0 MP), over the 0.01 MP limit for one image; pass --max-megapixels' in err
    assert _run(capsys, *base, '--output', str(tmp_path / 'b'), '--max-megapixels', '0.02')[0] == 0
