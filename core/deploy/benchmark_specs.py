"""The networks the benchmarks compare, each in its deployable form at the size its paper measures."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """One benchmarked network: its deployable form at the size the papers measure."""

    name: str
    arch: str
    args: dict
    psnr: float | None = None  # Set5 Y-PSNR at this scale
    psnr_source: str = ''


# Published figures are the ones docs/families.md cites with their sources; 'measured' ones were computed here.
SPECS = [
    ModelSpec('ETDS-M4C32 x4', 'ETDSForInference', dict(num_in_ch=3, num_out_ch=3, upscale=4, num_block=4,
                                                        num_feat=32, num_residual_feat=3),
              29.526, 'measured: the scripts/demo.py model (1000 CPU iterations, not paper training)'),
    ModelSpec('ECBSR-M4C16 x4 (ECBSRT)', 'ECBSRT', dict(num_in_ch=3, num_out_ch=3, upscale=4, num_block=4,
                                                        num_feat=16, act_type='prelu')),
    ModelSpec('ECBSR-M4C16 x4 (ECBSRET)', 'ECBSRET', dict(num_in_ch=3, num_out_ch=3, upscale=4, num_block=4,
                                                          num_feat=16)),
    ModelSpec('ABPN-M4C28 x4 (ABPN_ET)', 'ABPN_ET', dict(num_feat=28, num_block=4, scale=4)),
    ModelSpec('Plain-M6C32 x4', 'Plain', dict(num_in_ch=3, num_out_ch=3, upscale=4, num_block=6, num_feat=32)),
    ModelSpec('ESPCN x4', 'ESPCN', dict(colors=3, upscale=4)),
    ModelSpec('FSRCNN x4', 'FSRCNN', dict(upscale=4)),
    ModelSpec('Bicubic x4', 'Bicubic', dict(upscale=4), 28.431, 'measured: test.py on Set5'),
    ModelSpec('SESR-M5 x2 (Y)', 'SESRInference', dict(num_in_ch=1, num_out_ch=1, upscale=2, m=5, int_features=16,
                                                      relu_act=True),
              37.39, 'published: SESR paper, Table 1'),
    ModelSpec('eSR-TM_s2_K7_C16 x2 (Y)', 'EdgeSR', dict(model_id='eSR-TM_s2_K7_C16')),
    ModelSpec('VDSR x2 (Y)', 'VDSR', dict(upscale=2), 37.53, 'published: VDSR paper'),
    ModelSpec('VDSR 50% pruned x2 (Y)', 'VDSR', dict(upscale=2, widths=[32] * 19)),
    ModelSpec('Bicubic x2', 'Bicubic', dict(upscale=2), 33.678, 'measured: test.py on Set5'),
]
