"""edge-SR: model ids, the original parameter counts, forward semantics, loading by file name, and Y-channel tests."""

import pickle

import cv2
import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from torch.nn import functional as F

from conftest import eval_opt, matlab_y, run_repo_script, write_edsr_pairs, write_yaml
from core.archs.esr_arch import EdgeSR, EdgeSRCNN, parse_model_id
from core.convert.resolver import load_network
from core.errors import UserError
from core.training.pipelines import evaluate_pipeline


@pytest.mark.parametrize(('model_id', 'params'), [
    ('eSR-MAX_s2_K3_C1', 36), ('eSR-TM_s2_K7_C16', 6272), ('eSR-TR_s2_K7_C16', 9408), ('eSR-CNN_s2_C8_D9_S15', 10104),
])
def test_models_built_from_ids_have_the_original_parameter_counts(model_id, params):
    assert sum(p.numel() for p in EdgeSR(model_id).parameters()) == params


def test_official_key_layouts():
    assert {k: tuple(v.shape) for k, v in EdgeSR('eSR-TM_s2_K7_C16').state_dict().items()} == {
        'filter.weight': (128, 1, 7, 7)}
    assert {k: tuple(v.shape) for k, v in EdgeSR('eSR-CNN_s2_C8_D9_S15').state_dict().items()} == {
        'filter.0.weight': (9, 1, 5, 5), 'filter.0.bias': (9,), 'filter.2.weight': (15, 9, 3, 3),
        'filter.2.bias': (15,), 'filter.4.weight': (64, 15, 3, 3)}


def test_ids_parse_and_bad_ones_are_refused():
    assert parse_model_id('eSR-TR_s3_K5_C4') == dict(variant='TR', upscale=3, kernel_size=5, channels=4)
    assert parse_model_id('eSR-CNN_s4_C2_D3_S5') == dict(variant='CNN', upscale=4, channels=2, d=3, s=5)
    with pytest.raises(UserError, match="'eSR-FOO_s2' is not an eSR model id"):
        parse_model_id('eSR-FOO_s2')
    with pytest.raises(UserError, match='D >= 1'):
        EdgeSR('eSR-CNN_s2_C8_D0_S15')
    with pytest.raises(UserError, match='D >= 1'):
        EdgeSRCNN(2, 8, 0, 15)


def test_init_is_xavier_with_a_unit_centre_tap():
    weight = EdgeSR('eSR-TM_s2_K7_C16').filter.weight
    assert torch.equal(weight[:, 0, 3, 3], torch.ones(128))
    xavier_std = (2 / (49 + 128 * 49)) ** 0.5  # gain 1, fan_in 1·7·7, fan_out 128·7·7
    assert weight[:, 0, :3].std().item() == pytest.approx(xavier_std, rel=0.1)
    cnn = EdgeSR('eSR-CNN_s2_C8_D9_S15').filter
    assert torch.equal(cnn[0].weight[:, 0, 2, 2], torch.ones(9)) and cnn[4].bias is None


def test_forward_semantics():
    x = torch.rand(2, 1, 6, 5)
    net = EdgeSR('eSR-MAX_s2_K3_C4')
    candidates = F.pixel_shuffle(net.filter(x), 2)
    torch.testing.assert_close(net(x), candidates.max(dim=1, keepdim=True).values)
    tm = EdgeSR('eSR-TM_s3_K5_C3')
    value, key = F.pixel_shuffle(tm.filter(x), 3).split(3, dim=1)
    torch.testing.assert_close(tm(x), (value * key.softmax(1)).sum(1, keepdim=True))
    tr = EdgeSR('eSR-TR_s2_K3_C2')
    value, query, key = F.pixel_shuffle(tr.filter(x), 2).split(2, dim=1)
    torch.testing.assert_close(tr(x), (value * (query * key).softmax(1)).sum(1, keepdim=True))
    cnn = EdgeSR('eSR-CNN_s2_C2_D3_S4')
    value, key = F.pixel_shuffle(cnn.filter(x), 2).split(2, dim=1)
    torch.testing.assert_close(cnn(x), (value * (key * key).softmax(1)).sum(1, keepdim=True))


def test_official_file_loads_by_name(tmp_path):
    net = EdgeSR('eSR-TR_s2_K7_C16')
    torch.save(net.state_dict(), tmp_path / 'eSR-TR_s2_K7_C16.model')  # zip-format state_dict, as published
    arch, args, loaded = load_network(str(tmp_path / 'eSR-TR_s2_K7_C16.model'))
    assert (arch, args) == ('EdgeSR', {'model_id': 'eSR-TR_s2_K7_C16'})
    x = torch.rand(1, 1, 8, 8)
    torch.testing.assert_close(loaded(x), net(x))
    torch.save(net.state_dict(), tmp_path / 'eSR-TR_s2_K5_C16.model')
    with pytest.raises(UserError, match="'filter.weight' has shape"):
        load_network(str(tmp_path / 'eSR-TR_s2_K5_C16.model'))
    torch.save(net.state_dict(), tmp_path / 'weights.pth')
    with pytest.raises(UserError, match='cannot tell which architecture'):
        load_network(str(tmp_path / 'weights.pth'))


def matlab_y_uint8(bgr: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr(uint8)'s Y: rounded to uint8 as MATLAB returns it for uint8 input."""
    return np.round(matlab_y(bgr))


def test_y_dataset_yields_matlab_luminance(tmp_path):
    root = write_edsr_pairs(tmp_path / 'set', 2, [(20, 18)])
    sample = build_dataset({'name': 'y', 'type': 'PairedSRDataset', 'phase': 'test', 'scale': 2, 'color': 'y',
                            'dataroot': str(root), 'io_backend': {'type': 'disk'}})[0]
    assert sample['gt'].shape == (1, 20, 18) and sample['lq'].shape == (1, 10, 9)
    hr = cv2.imread(str(root / 'HR' / 'img0.png'))
    np.testing.assert_allclose(np.round(sample['gt'][0].numpy() * 255), matlab_y_uint8(hr), atol=0)


def test_test_py_evaluates_an_official_esr_file_on_y_without_network_g(tmp_path):
    root = write_edsr_pairs(tmp_path / 'set', 2, [(40, 36), (34, 30)])
    torch.manual_seed(0)
    net = EdgeSR('eSR-MAX_s2_K3_C1').eval()
    ckpt = tmp_path / 'eSR-MAX_s2_K3_C1.model'
    torch.save(net.state_dict(), ckpt)
    opt = eval_opt(root, str(ckpt), None, name='esr')
    opt['datasets']['test_1']['color'] = 'y'
    psnr = evaluate_pipeline(str(tmp_path), ['-opt', write_yaml(tmp_path / 'esr.yml', opt)])['synthetic']['psnr']
    values = []
    for i in range(2):
        hr = cv2.imread(str(root / 'HR' / f'img{i}.png'))
        lr = cv2.imread(str(root / 'LR_bicubic' / 'X2' / f'img{i}x2.png'))
        y_lr = matlab_y(lr) / 255  # the network's input is the unrounded Y
        y_lr = torch.from_numpy(y_lr.astype(np.float32))
        with torch.no_grad():
            sr = np.round(net(y_lr[None, None])[0, 0].clamp(0, 1).numpy() * 255)
        gt = matlab_y_uint8(hr[:sr.shape[0], :sr.shape[1]])
        diff = (sr - gt)[2:-2, 2:-2]
        values.append(10 * np.log10(255**2 / np.mean(diff**2)))
    assert psnr == pytest.approx(np.mean(values), abs=1e-3)


def test_saved_images_of_y_models_are_rebuilt_in_colour(tmp_path):
    root = write_edsr_pairs(tmp_path / 'set', 2, [(40, 36)])
    torch.manual_seed(0)
    net = EdgeSR('eSR-TM_s2_K3_C4').eval()
    torch.save(net.state_dict(), tmp_path / 'eSR-TM_s2_K3_C4.model')
    opt = eval_opt(root, str(tmp_path / 'eSR-TM_s2_K3_C4.model'), None, name='colour')
    opt['datasets']['test_1']['color'] = 'y'
    opt['val']['save_img'] = True
    evaluate_pipeline(str(tmp_path), ['-opt', write_yaml(tmp_path / 'c.yml', opt)])
    saved = cv2.imread(str(tmp_path / 'experiments' / 'results' / 'colour' / 'visualization' / 'synthetic' /
                           'img0x2_colour.png'), cv2.IMREAD_UNCHANGED)
    assert saved.shape == (40, 36, 3)
    lr = cv2.imread(str(root / 'LR_bicubic' / 'X2' / 'img0x2.png'))
    y_lr = torch.from_numpy(matlab_y(lr) / 255)
    with torch.no_grad():
        sr_y = net(y_lr.float()[None, None])[0, 0].clamp(0, 1).numpy() * 255
    saved_y = matlab_y(saved)
    assert np.abs(saved_y - sr_y).mean() < 1.0  # the colour image carries the model's Y (up to rounding)
    assert saved[..., 0].astype(int).tolist() != saved[..., 2].astype(int).tolist()  # really in colour


class _RunsCode:
    """A pickle payload that would run a command when loaded by plain pickle.load."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def run_esr_reference(*args, cwd):
    return run_repo_script('scripts/esr_reference.py', *args, cwd=cwd, timeout=120)


def test_reference_script_prints_the_authors_figures_and_refuses_code(tmp_path):
    results = {'Bicubic_s2': {'psnr_Set5': 33.72849620514912, 'ssim_Set5': 0.9283912810369976, 'parameters': 104},
               'eSR-TM_s2_K7_C16': {'psnr_Set5': np.float64(36.25), 'ssim_Set5': np.float64(0.95), 'parameters': 6272}}
    (tmp_path / 'tests.pkl').write_bytes(pickle.dumps(results))
    ids = ['Bicubic_s2', 'eSR-TM_s2_K7_C16', 'eSR-X']
    result = run_esr_reference('--results', 'tests.pkl', '--ids', *ids, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split() == ['Bicubic_s2', '104', '33.728', '0.9284']
    assert lines[2].split() == ['eSR-TM_s2_K7_C16', '6272', '36.250', '0.9500']
    assert lines[3] == f'{"eSR-X":<24} not in the results file'

    marker = tmp_path / 'ran'
    (tmp_path / 'evil.pkl').write_bytes(pickle.dumps({'x': {'psnr_Set5': _RunsCode(str(marker))}}))
    result = run_esr_reference('--results', 'evil.pkl', cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count('\n') == 1
    assert 'io.open is not a plain value' in result.stderr
    assert not marker.exists()
