"""Every family trains from YAML on the CPU (IRModel), saves, and its checkpoint converts and tests."""

import pytest
import torch

from conftest import eval_opt, training_opt, write_edsr_pairs, write_yaml
from core.convert import convert_checkpoint
from core.io.checkpoint import load_checkpoint
from core.training.pipelines import evaluate_pipeline, train_pipeline

NETWORKS = {
    'ecbsr_branches': {'type': 'ECBSR_mobilesr', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2, 'num_block': 1,
                       'num_feat': 8, 'act_type': 'prelu'},
    'ecbsr_collapsed': {'type': 'ECBSR_mobilesr', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2, 'num_block': 1,
                        'num_feat': 8, 'act_type': 'prelu', 'collapsed': True},
    'abpn': {'type': 'ABPN', 'num_feat': 8, 'num_block': 1, 'scale': 2},
    'espcn': {'type': 'ESPCN', 'colors': 3, 'upscale': 2},
    'fsrcnn': {'type': 'FSRCNN', 'upscale': 2},
    'plain': {'type': 'Plain', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2, 'num_block': 1, 'num_feat': 8},
    'esr_tm': {'type': 'EdgeSR', 'model_id': 'eSR-TM_s2_K3_C4'},
    'esr_cnn': {'type': 'EdgeSR', 'model_id': 'eSR-CNN_s2_C2_D3_S4'},
    'sesr': {'type': 'SESR', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2, 'm': 2, 'int_features': 8,
             'feature_size': 16},
}
NETWORKS['ecbsr_collapsed_compiled'] = NETWORKS['ecbsr_collapsed']  # as configs/train/ECBSR_*.yml train it
COMPILED = {'ecbsr_collapsed_compiled'}
CONVERTS_TO = {'ecbsr_branches': 'ECBSRET', 'ecbsr_collapsed': 'ECBSRET', 'ecbsr_collapsed_compiled': 'ECBSRET',
               'abpn': 'ABPN_ET', 'sesr': 'SESRInference'}


@pytest.mark.parametrize('name', list(NETWORKS))
def test_family_trains_from_yaml_and_tests(tmp_path, name):
    data = write_edsr_pairs(tmp_path / 'data', 2, [(34, 30), (40, 36), (33, 41)])
    opt = training_opt(data, name=name, total_iter=3)
    opt['model_type'] = 'IRModel'
    opt['network_g'] = NETWORKS[name]
    for key in ('fixed_residual_model_iters', 'interpolation_loss_weight'):
        del opt['train'][key]
    if name in COMPILED:
        opt['train']['compile'] = True
        opt['train']['optim_g']['fused'] = True
    luminance = name.startswith('esr')
    if luminance:  # 1-channel models train and test on the Y channel
        for dataset in opt['datasets'].values():
            dataset.update(color='y', use_channels_shuffle=False)
    train_pipeline(str(tmp_path), ['-opt', write_yaml(tmp_path / 'train.yml', opt)])
    ckpt = tmp_path / 'experiments' / name / 'models' / 'net_g_latest.pth'
    state, meta = load_checkpoint(str(ckpt), param_key='params')
    assert meta['arch'] == NETWORKS[name]['type']
    assert any(not torch.equal(v, w) for v, w in zip(state.values(), load_checkpoint(
        str(tmp_path / 'experiments' / name / 'models' / 'net_g_2.pth'), param_key='params')[0].values(), strict=True))
    tested = ckpt
    if name in CONVERTS_TO:
        tested = tmp_path / 'et.pth'
        report = convert_checkpoint(str(ckpt), str(tested))
        assert report.target_arch == CONVERTS_TO[name] and report.max_abs_diff <= 1e-6
    test_opt = eval_opt(data, str(tested), None if name in CONVERTS_TO else NETWORKS[name], name=f'{name}_test')
    if luminance:
        test_opt['datasets']['test_1']['color'] = 'y'
    results = evaluate_pipeline(str(tmp_path), ['-opt', write_yaml(tmp_path / 'test.yml', test_opt)])
    assert 5 < results['synthetic']['psnr'] < 60
