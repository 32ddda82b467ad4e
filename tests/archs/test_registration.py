"""`import core.plugin` registers into basicsr's registries without clashing, and bad type names are one-line errors."""

import importlib

import pytest
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

import core.plugin  # noqa: F401
from core.errors import UserError
from core.training.option_checks import check_registered

OURS = {
    ARCH_REGISTRY: ['ETDS', 'ETDSForInference', 'ETDSOnlyET', 'ETDSAblationResidual', 'ETDSAblationAdvancedResidual',
                    'Bicubic', 'ECBSR_mobilesr', 'ECBSRT', 'ECBSRET', 'ABPN', 'ABPN_ET', 'ESPCN', 'FSRCNN', 'Plain'],
    MODEL_REGISTRY: ['IRModel', 'ETDSModel'],
    DATASET_REGISTRY: ['PairedSRDataset'],
}


def test_our_names_are_registered_from_core():
    for registry, names in OURS.items():
        for name in names:
            assert registry.get(name).__module__.startswith('core.'), name


def test_basicsr_builtins_are_untouched():
    for registry, name in [(ARCH_REGISTRY, 'ECBSR'), (MODEL_REGISTRY, 'SRModel'), (DATASET_REGISTRY,
                                                                                    'PairedImageDataset'),
                           (LOSS_REGISTRY, 'L1Loss'), (METRIC_REGISTRY, 'calculate_psnr')]:
        assert registry.get(name).__module__.startswith('basicsr.'), name


def test_compat_alias_lets_basicsr_import_on_current_torchvision():
    module = importlib.import_module('torchvision.transforms.functional_tensor')
    assert hasattr(module, 'rgb_to_grayscale')
    assert importlib.import_module('basicsr.data.degradations')


@pytest.mark.parametrize(('opt', 'message'), [
    ({'network_g': {'type': 'ETDSX'}}, "unknown network type 'ETDSX' in network_g; registered network types: "),
    ({'model_type': 'Nope'}, "unknown model type 'Nope'"),
    ({'train': {'pixel_opt': {'type': 'L3Loss'}}}, "unknown loss type 'L3Loss' in train:pixel_opt"),
    ({'datasets': {'train': {'type': 'Foo'}}}, "unknown dataset type 'Foo' in datasets:train"),
    ({'val': {'metrics': {'psnr': {'type': 'psnr'}}}}, "unknown metric type 'psnr'"),
])
def test_unknown_types_list_the_registered_names(opt, message):
    with pytest.raises(UserError, match=message) as info:
        check_registered(opt)
    assert '\n' not in str(info.value)
    if 'network' in message:
        assert 'ETDS, ETDSAblationAdvancedResidual' in str(info.value)


def test_network_options_must_fit_the_constructor():
    with pytest.raises(UserError, match=r"missing a required argument: 'num_out_ch'; it takes \(num_in_ch, num_out_ch"):
        check_registered({'network_g': {'type': 'ETDS', 'num_in_ch': 3}})


def test_basicsr_ecbsr_with_our_options_points_at_ours():
    ours = {'type': 'ECBSR', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 4, 'num_block': 4, 'num_feat': 16,
            'act_type': 'prelu'}
    with pytest.raises(UserError, match="this is basicsr's ECBSR, ours is registered as type: ECBSR_mobilesr"):
        check_registered({'network_g': ours})
    check_registered({'network_g': dict(ours, type='ECBSR_mobilesr')})
