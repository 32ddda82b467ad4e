"""test.py on Set5 (../shared/benchmarks) agrees with a direct PyTorch evaluation written independently here.

Skipped where ../shared is absent (a newcomer's clone); the project machines and CI have it.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import eval_opt, matlab_y, write_yaml
from core.archs.etds_arch import ETDS
from core.convert import convert_checkpoint, convert_network
from core.training.pipelines import evaluate_pipeline

OFFICIAL_ARGS = {'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 4, 'num_block': 4, 'num_feat': 32,
                 'num_residual_feat': 3}


@torch.no_grad()
def direct_y_psnr(net: torch.nn.Module, set_dir: Path, scale: int) -> float:
    values = []
    for hr_path in sorted((set_dir / 'HR').glob('*.png')):
        lr = cv2.imread(str(set_dir / 'LR_bicubic' / f'X{scale}' / f'{hr_path.stem}x{scale}.png'))[..., ::-1]
        x = torch.from_numpy(lr.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        out = net(x)
        out = out[0] if isinstance(out, tuple) else out
        sr = (out[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)[..., ::-1]  # BGR
        hr = cv2.imread(str(hr_path))[:lr.shape[0] * scale, :lr.shape[1] * scale]
        diff = (matlab_y(sr) - matlab_y(hr))[scale:-scale, scale:-scale]
        values.append(10 * np.log10(255.0**2 / np.mean(diff**2)))
    return float(np.mean(values))


def official_like_checkpoint(path: Path) -> ETDS:
    """An ETDS_M4C32_x4 in the official raw layout whose every weight has left its init."""
    torch.manual_seed(0)
    net = ETDS(**OFFICIAL_ARGS)
    with torch.no_grad():
        for name, param in net.named_parameters():
            param.add_((0.002 if 'residual' in name else 0.02) * torch.randn_like(param))
    torch.save(net.state_dict(), path)
    return net.eval()


def test_test_py_matches_direct_evaluation_on_set5(tmp_path, shared_set5):
    ckpt = tmp_path / 'ETDS_M4C32_x4.pth'
    net = official_like_checkpoint(ckpt)
    opt = write_yaml(tmp_path / 'test.yml', eval_opt(shared_set5, str(ckpt), {'type': 'ETDS', **OFFICIAL_ARGS},
                                                     name='etds_set5', scale=4))
    via_test_py = evaluate_pipeline(str(tmp_path), ['-opt', opt])['synthetic']['psnr']
    direct = direct_y_psnr(net, shared_set5, 4)
    assert 20 < direct < 35
    assert via_test_py == pytest.approx(direct, abs=1e-4)

    plain = tmp_path / 'ETDS_M4C32_x4_plain.pth'
    assert convert_checkpoint(str(ckpt), str(plain)).max_abs_diff <= 1e-6
    opt_plain = write_yaml(tmp_path / 'plain.yml', eval_opt(shared_set5, str(plain), None, name='plain', scale=4))
    assert evaluate_pipeline(str(tmp_path), ['-opt', opt_plain])['synthetic']['psnr'] == pytest.approx(direct, abs=1e-3)


FAMILIES = [
    ('ECBSR_mobilesr', dict(num_in_ch=3, num_out_ch=3, upscale=4, num_block=4, num_feat=16, act_type='prelu'), 4),
    ('ECBSRT', dict(num_in_ch=3, num_out_ch=3, upscale=4, num_block=4, num_feat=16, act_type='prelu'), 4),
    ('ECBSRET', dict(num_in_ch=3, num_out_ch=3, upscale=3, num_block=4, num_feat=16), 3),
    ('ABPN', dict(num_feat=28, num_block=4, scale=4), 4),
    ('ABPN_ET', dict(num_feat=28, num_block=4, scale=4), 4),
    ('ABPN_ET', dict(num_feat=28, num_block=4, scale=3), 3),
    ('ESPCN', dict(colors=3, upscale=4), 4),
    ('FSRCNN', dict(upscale=4), 4),
    ('Plain', dict(num_in_ch=3, num_out_ch=3, upscale=2, num_block=6, num_feat=32), 2),
    ('SESR', dict(num_in_ch=3, num_out_ch=3, upscale=4, m=5, int_features=16, feature_size=64), 4),
    ('SESRInference', dict(num_in_ch=3, num_out_ch=3, upscale=2, m=5, int_features=16), 2),
]


def et_source(arch: str, args: dict) -> tuple[str, dict]:
    """The training form an ET checkpoint is converted from (the arch itself for the others)."""
    sources = {'ECBSRET': ('ECBSRT', dict(args, act_type='prelu')), 'ABPN_ET': ('ABPN', args),
               'SESRInference': ('SESR', dict(args, feature_size=64))}
    return sources.get(arch, (arch, args))


@pytest.mark.parametrize(('arch', 'args', 'scale'), FAMILIES, ids=[f'{a}-x{s}' for a, _, s in FAMILIES])
def test_every_family_agrees_with_direct_evaluation(tmp_path, shared_set5, arch, args, scale):
    from basicsr.archs import build_network

    torch.manual_seed(1)
    source_arch, source_args = et_source(arch, args)
    net = build_network({'type': source_arch, **source_args})
    with torch.no_grad():
        for param in net.parameters():
            if param.requires_grad:
                param.add_(0.01 * torch.randn_like(param))
    if source_arch != arch:  # ET weights that do something: converted from a perturbed training form
        converted_arch, converted_args, net = convert_network(net, source_arch)
        assert converted_arch == arch and converted_args.items() >= args.items()
    ckpt = tmp_path / f'{arch}.pth'
    torch.save(net.state_dict(), ckpt)  # raw, as the official files are
    opt = write_yaml(tmp_path / 'test.yml', eval_opt(shared_set5, str(ckpt), {'type': arch, **args}, name=arch,
                                                     scale=scale))
    via_test_py = evaluate_pipeline(str(tmp_path), ['-opt', opt])['synthetic']['psnr']
    assert via_test_py == pytest.approx(direct_y_psnr(net.eval(), shared_set5, scale), abs=1e-4)


def test_bicubic_baseline_matches_the_published_set5_figure(tmp_path, shared_set5):
    opt = write_yaml(tmp_path / 'bicubic.yml', eval_opt(shared_set5, None, {'type': 'Bicubic', 'upscale': 4},
                                                        name='bicubic', scale=4))
    psnr = evaluate_pipeline(str(tmp_path), ['-opt', opt])['synthetic']['psnr']
    assert psnr == pytest.approx(28.42, abs=0.02)  # MATLAB bicubic x4 on Set5, as papers report it
