"""Write the train/test YAMLs of every family, size and scale: python scripts/make_configs.py

The committed files under configs/ are this script's output (tests/test_configs.py checks they match),
so a setting changes in one place.
"""

import argparse
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

ETDS_SIZES = {'M4C32': (4, 32), 'M5C16': (5, 16), 'M6C32': (6, 32), 'M7C48': (7, 48)}
ECBSR_SIZES = {'M4C16': (4, 16), 'M4C32': (4, 32), 'M6C40': (6, 40)}
ABPN_SIZES = {'M4C28': (4, 28), 'M6C40': (6, 40)}
SESR_SIZES = {'M5': (5, 16, 256), 'M11': (11, 16, 64), 'XL': (11, 32, 64)}  # m, int_features, feature_size
SCALES = (2, 3, 4)
PAPER = dict(settings="the paper's settings: 1.6M iterations, batch 32, Adam 5e-4, EMA 0.999, L1", lr='5e-4',
             ema_decay=0.999, total_iter=1600000, pretrain='~', strict_load='true')
# The SESR seed's flags: 300 epochs (≈ 300k iterations over DIV2K sub-images at batch 32), Adam 2e-4, no EMA.
SESR_SEED = dict(settings="the seed's flags: ~300 epochs, batch 32, Adam 2e-4, L1", lr='2e-4', ema_decay=0,
                 total_iter=300000, pretrain='~', strict_load='true')
TEST_SETS = ('Set5', 'Set14', 'B100', 'Urban100', 'Manga109')


def etds_network(scale: int, num_block: int, num_feat: int) -> dict:
    return {'type': 'ETDS', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': scale, 'num_block': num_block,
            'num_feat': num_feat, 'num_residual_feat': 3}


def ecbsr_network(scale: int, num_block: int, num_feat: int) -> dict:
    return {'type': 'ECBSR_mobilesr', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': scale, 'num_block': num_block,
            'num_feat': num_feat, 'act_type': 'prelu', 'collapsed': True}


def families() -> dict[str, tuple[dict, str, dict]]:
    """Config name → (network_g, model_type, training settings) for every family, size and scale."""
    table: dict[str, tuple[dict, str, dict]] = {}
    for scale in SCALES:
        for size, (m, c) in ETDS_SIZES.items():
            table[f'ETDS_{size}_x{scale}'] = etds_network(scale, m, c), 'ETDSModel', PAPER
        for size, (m, c) in ECBSR_SIZES.items():
            table[f'ECBSR_{size}_x{scale}'] = ecbsr_network(scale, m, c), 'IRModel', PAPER
        for size, (m, c) in ABPN_SIZES.items():
            net = {'type': 'ABPN', 'num_feat': c, 'num_block': m, 'scale': scale}
            table[f'ABPN_{size}_x{scale}'] = net, 'IRModel', PAPER
        table[f'ESPCN_x{scale}'] = {'type': 'ESPCN', 'colors': 3, 'upscale': scale}, 'IRModel', PAPER
        table[f'FSRCNN_x{scale}'] = {'type': 'FSRCNN', 'upscale': scale}, 'IRModel', PAPER
        table[f'Plain_M6C32_x{scale}'] = {'type': 'Plain', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': scale,
                                          'num_block': 6, 'num_feat': 32}, 'IRModel', PAPER
    for size, (m, f, fs) in SESR_SIZES.items():
        for scale in (2, 4):
            net = {'type': 'SESR', 'num_in_ch': 1, 'num_out_ch': 1, 'upscale': scale, 'm': m, 'int_features': f,
                   'feature_size': fs, 'linear_block_type': 'collapsed'}  # on Y, as the seed
            settings = SESR_SEED
            if scale == 4:  # x4 starts from the trained x2 model: every tensor but the last 1×1 is copied
                settings = dict(SESR_SEED, pretrain=f'experiments/SESR_{size}_x2/models/net_g_latest.pth',
                                strict_load='false')
            table[f'SESR_{size}_x{scale}'] = net, 'IRModel', settings
    return table


def metrics(scale: int, indent: str) -> str:
    return (f'{indent}metrics:\n'
            f'{indent}  psnr:\n{indent}    type: calculate_psnr\n{indent}    crop_border: {scale}\n'
            f'{indent}    test_y_channel: true\n'
            f'{indent}  ssim:\n{indent}    type: calculate_ssim\n{indent}    crop_border: {scale}\n'
            f'{indent}    test_y_channel: true\n')


def network(net: dict) -> str:
    lines = ['network_g:'] + [f'  {k}: {str(v).lower() if isinstance(v, bool) else v}' for k, v in net.items()]
    return '\n'.join(lines) + '\n'


def test_datasets(scale: int, color: str | None = None) -> str:
    extra = f'    color: {color}\n' if color else ''
    blocks = []
    for i, name in enumerate(TEST_SETS, start=1):
        blocks.append(f'  test_{i}:\n    name: {name}\n    type: PairedSRDataset\n'
                      f'    dataroot: datasets/benchmark/{name}\n{extra}    io_backend:\n      type: disk\n')
    blocks.append(f'  test_{len(TEST_SETS) + 1}:\n    name: DIV2K_val\n    type: PairedSRDataset\n'
                  f'    dataroot_gt: datasets/DIV2K/DIV2K_valid_HR\n'
                  f'    dataroot_lq: datasets/DIV2K/DIV2K_valid_LR_bicubic/X{scale}\n'
                  f"    filename_tmpl: '{{}}x{scale}'\n{extra}    io_backend:\n      type: disk\n")
    return 'datasets:\n' + ''.join(blocks)


def train_config(name: str, net: dict, model_type: str, settings: dict) -> str:
    scale = net.get('upscale', net.get('scale'))
    etds = model_type == 'ETDSModel'
    etds_lines = ('  fixed_residual_model_iters: 100000\n  interpolation_loss_weight: 0.5\n') if etds else ''
    collapsed = ('# collapsed: true folds every ECB into one 3x3 conv per step: same outputs and gradients, faster.\n'
                 if net.get('collapsed') else '')
    return f"""# {name}: DIV2K sub-images, {settings['settings']}.
# Prepare the data with: python scripts/prepare_div2k.py --input datasets/DIV2K/DIV2K_train_HR
# Generated by scripts/make_configs.py.
name: {name}
model_type: {model_type}
scale: {scale}
num_gpu: 1  # 0 trains on the CPU; 'auto' uses every visible GPU
manual_seed: 0

datasets:
  train:
    name: DIV2K
    type: PairedSRDataset
    dataroot_gt: datasets/DIV2K/DIV2K_train_HR_sub
    dataroot_lq: datasets/DIV2K/DIV2K_train_LR_bicubic_sub/X{scale}
    meta_info_file: datasets/DIV2K/meta_info_DIV2K_sub.txt
    io_backend:
      type: disk
    # lmdb instead (prepare_div2k.py --lmdb): dataroot_gt: datasets/DIV2K/DIV2K_train_HR_sub.lmdb,
    # dataroot_lq: datasets/DIV2K/DIV2K_train_LR_bicubic_X{scale}_sub.lmdb, io_backend: {{type: lmdb}},
    # and no meta_info_file.
    lq_size: 64
    use_hflip: true
    use_vflip: true
    use_rot: true
    use_channels_shuffle: true
    num_worker_per_gpu: 8
    batch_size_per_gpu: 32
    dataset_enlarge_ratio: 1
    prefetch_mode: ~
  val:
    name: Set5
    type: PairedSRDataset
    dataroot: datasets/benchmark/Set5
    io_backend:
      type: disk

{collapsed}{network(net)}
path:
  pretrain_network_g: {settings['pretrain']}
  strict_load_g: {settings['strict_load']}
  param_key_g: params
  resume_state: ~

train:
  ema_decay: {settings['ema_decay']}
  optim_g:
    type: Adam
    lr: !!float {settings['lr']}
    weight_decay: 0
    betas: [0.9, 0.99]
  scheduler:  # the decay schedule is ours; the paper fixes the rate, optimiser and length
    type: MultiStepLR
    milestones: [400000, 800000, 1200000]
    gamma: 0.5
  total_iter: {settings['total_iter']}
  warmup_iter: -1
{etds_lines}  pixel_opt:
    type: L1Loss
    loss_weight: 1.0
    reduction: mean

val:
  val_freq: !!float 5e3
  save_img: false
{metrics(scale, '  ')}
logger:
  print_freq: 100
  save_checkpoint_freq: !!float 5e3
  use_tb_logger: true
"""


def test_config(name: str, net: dict, color: str | None = None, pretrain: str | None = None) -> str:
    scale = net.get('upscale', net.get('scale'))
    pretrain = pretrain or f'experiments/pretrained_models/{name}.pth'
    y_note = ('# A 1-channel model: it sees the Y channel, metrics are on Y, and saved images get the bicubic CbCr.\n'
              if color else '')
    return f"""# {name} on the standard benchmarks: Y-PSNR/SSIM (MATLAB BT.601), border crop {scale}.
# The checkpoint may be an official raw state_dict or one of ours. A converted checkpoint works too: point
# pretrain_network_g at it and delete network_g (its meta describes it).
# Evaluate a subset with: python test.py -opt configs/test/{name}.yml --datasets Set5 Set14
{y_note}# Generated by scripts/make_configs.py.
name: {name}
model_type: IRModel
scale: {scale}
num_gpu: 0  # the CPU is enough for testing; 1 uses a GPU
manual_seed: 0

{test_datasets(scale, color)}
{network(net)}
path:
  pretrain_network_g: {pretrain}
  strict_load_g: true
  param_key_g: params_ema  # falls back to params, and raw state_dicts have neither

val:
  save_img: false
  suffix: ~
{metrics(scale, '  ')}"""


ESR_IDS = ('eSR-MAX_s2_K3_C1', 'eSR-TM_s2_K7_C16', 'eSR-TR_s2_K7_C16', 'eSR-CNN_s2_C8_D9_S15')
# No training flags for eSR are fixed by the seed here; these are ours (Adam 5e-4, batch 32, L1, no EMA).
ESR_SETTINGS = dict(settings='our settings for eSR: 500k iterations, batch 32, Adam 5e-4, L1, on Y', lr='5e-4',
                    ema_decay=0, total_iter=500000, pretrain='~', strict_load='true')


def luminance(text: str) -> str:
    """Make a generated RGB training config train on the Y channel (colour shuffling is meaningless there)."""
    text = text.replace('    use_channels_shuffle: true\n', '    use_channels_shuffle: false\n    color: y\n')
    set5 = '    dataroot: datasets/benchmark/Set5\n'
    return text.replace(set5, set5 + '    color: y\n')


def vdsr_train_config() -> str:
    return f"""# VDSR as the paper trains it: one model for x2, x3 and x4 on 41x41 Y patches (bicubic-upsampled input),
# SGD lr 0.1, momentum 0.9, weight decay 1e-4, lr / 10 every 20 epochs (~10k iterations of DIV2K sub-images
# at batch 64), adjustable gradient clipping to [-theta/lr, theta/lr], MSE loss.
# Generated by scripts/make_configs.py.
name: VDSR
model_type: VDSRModel
scale: 4  # the scale validation uses; training mixes x2, x3 and x4
num_gpu: 1
manual_seed: 0

datasets:
  train:
    name: DIV2K
    type: MultiScaleYDataset
    dataroot_gt: datasets/DIV2K/DIV2K_train_HR_sub
    scales: [2, 3, 4]
    patch_size: 41
    use_hflip: true
    use_vflip: false
    use_rot: true
    num_worker_per_gpu: 8
    batch_size_per_gpu: 64
    dataset_enlarge_ratio: 1
    prefetch_mode: ~
  val:
    name: Set5
    type: MultiScaleYDataset
    dataroot_gt: datasets/benchmark/Set5/HR

network_g:
  type: VDSR
  upscale: 1  # training and validation feed bicubic-upsampled Y; test configs use upscale 2, 3 or 4

path:
  pretrain_network_g: ~
  strict_load_g: true
  resume_state: ~

train:
  ema_decay: 0
  optim_g:
    type: SGD
    lr: 0.1
    momentum: 0.9
    weight_decay: !!float 1e-4
  scheduler:
    type: MultiStepLR
    milestones: [10000, 20000, 30000]
    gamma: 0.1
  total_iter: 40000
  warmup_iter: -1
  grad_clip:
    type: adjustable  # or {{type: norm, max_norm: 0.4}}
    theta: 0.4
  pixel_opt:
    type: MSELoss
    loss_weight: 1.0
    reduction: mean

val:
  val_freq: !!float 2e3
  save_img: false
{metrics(4, '  ')}
logger:
  print_freq: 100
  save_checkpoint_freq: !!float 2e3
  use_tb_logger: true
"""


def all_configs() -> dict[str, str]:
    """Relative path → YAML text for every generated config."""
    configs = {}
    for name, (net, model_type, settings) in families().items():
        on_y = net.get('num_in_ch') == 1
        train = train_config(name, net, model_type, settings)
        configs[f'configs/train/{name}.yml'] = luminance(train) if on_y else train
        configs[f'configs/test/{name}.yml'] = test_config(name, net, color='y' if on_y else None)
    for model_id in ESR_IDS:
        net = {'type': 'EdgeSR', 'model_id': model_id}
        scale = int(model_id.split('_s')[1].split('_')[0])
        configs[f'configs/train/{model_id}.yml'] = luminance(
            train_config(model_id, dict(net, upscale=scale), 'IRModel', ESR_SETTINGS)).replace(
            f'  upscale: {scale}\n', '', 1)
        configs[f'configs/test/{model_id}.yml'] = test_config(
            model_id, dict(net, upscale=scale), color='y',
            pretrain=f'experiments/pretrained_models/{model_id}.model').replace(f'  upscale: {scale}\n', '', 1)
    configs['configs/train/VDSR.yml'] = vdsr_train_config()
    for scale in SCALES:
        configs[f'configs/test/VDSR_x{scale}.yml'] = test_config(
            f'VDSR_x{scale}', {'type': 'VDSR', 'upscale': scale}, color='y',
            pretrain='experiments/VDSR/models/net_g_latest.pth')
    return configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    for rel, text in all_configs().items():
        with open(osp.join(ROOT, rel), 'w') as handle:
            handle.write(text)
    print(f'wrote {len(all_configs())} configs under configs/')


if __name__ == '__main__':
    main()
