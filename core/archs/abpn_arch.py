"""ABPN (anchor-based plain net) and its ET form ABPN_ET, with the official key layout."""

from __future__ import annotations

from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from core.archs.detection import State, count_indexed, raw_layout, scale_from_channels, scale_from_plain_width
from core.archs.network import DeployForm, built_like, clamped_output, conv_params, load_convs
from core.archs.shared import RepeatShortcutNet, TrimmedShuffleNet, et_width, plain_last_width
from core.reparam import fold_carried_input


def _conv(in_ch: int, out_ch: int, kernel_size: int = 3) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2)


def backbone_convs(backbone: nn.Sequential) -> list[nn.Conv2d]:
    """The Conv2d layers of an ABPN-style backbone, in order (bare or as the first item of a block)."""
    return [m if isinstance(m, nn.Conv2d) else m[0] for m in backbone if isinstance(m, (nn.Conv2d, nn.Sequential))]


@ARCH_REGISTRY.register()
class ABPN(RepeatShortcutNet):
    """conv(3→F), ReLU, num_block × [conv(F→F), ReLU], conv(F→3s²), ReLU, conv(3s²→3s²); + the repeated input."""

    deploy_forms = {'et': DeployForm('ABPN_ET', clamped_output)}

    def __init__(self, num_feat: int, num_block: int, scale: int) -> None:
        super().__init__()
        self.scale = self.upscale = scale  # `scale` is the official argument name
        out = 3 * scale * scale
        layers: list[nn.Module] = [_conv(3, num_feat), nn.ReLU()]
        layers += [nn.Sequential(_conv(num_feat, num_feat), nn.ReLU()) for _ in range(num_block)]
        layers += [_conv(num_feat, out), nn.ReLU(), _conv(out, out)]
        self.backbone = nn.Sequential(*layers)

    def to_deploy(self, kind: str = 'et') -> nn.Module:
        """The input carried in 3 channels (widths rounded up to even, as the official ABPN_ET), clamp folded."""
        convs = [conv_params(c) for c in backbone_convs(self.backbone)]
        et = built_like(ABPN_ET, convs[0][0], **self.init_args)
        load_convs(backbone_convs(et.backbone), fold_carried_input(convs[:-1], convs[-1], 3, self.scale, multiple=2))
        return et


@ARCH_REGISTRY.register()
class ABPN_ET(TrimmedShuffleNet):  # noqa: N801  (the official class name)
    """ABPN with the input carried in 3 extra channels (hidden widths rounded up to even) and the clamp folded.

    Official widths: F+4 in the body; 3s²+3 rounded up to even before the last conv (52 at x4, 30 at x3);
    3s² rounded up to 4 at the output (48, 28).
    """

    def __init__(self, num_feat: int, num_block: int, scale: int) -> None:
        super().__init__()
        self.scale = self.upscale = scale
        self.out_channels = 3 * scale * scale
        width, tail = et_width(num_feat, 3, multiple=2), et_width(self.out_channels, 3, multiple=2)
        last = plain_last_width(3, scale)
        layers: list[nn.Module] = [_conv(3, width), nn.ReLU()]
        layers += [nn.Sequential(_conv(width, width), nn.ReLU()) for _ in range(num_block)]
        layers += [_conv(width, tail), nn.ReLU(), _conv(tail, last), nn.ReLU(), _conv(last, last, 1), nn.ReLU()]
        self.backbone = nn.Sequential(*layers)


# Raw layouts: the body is backbone.k.0.weight (blocks), the head and tail are bare convs backbone.k.weight.
_ABPN_KEYS = ('backbone.0.weight', 'backbone.2.0.weight')


@raw_layout('ABPN_ET', required=_ABPN_KEYS)
def abpn_et_args(state: State) -> dict | None:
    num_block = count_indexed(state, 'backbone.{}.0.weight')
    clip = state.get(f'backbone.{num_block + 6}.weight')
    scale = None if clip is None else scale_from_plain_width(clip.shape[0], 3)
    return None if scale is None else dict(num_feat=state['backbone.0.weight'].shape[0] - 4, num_block=num_block,
                                           scale=scale)


@raw_layout('ABPN', required=_ABPN_KEYS)
def abpn_args(state: State) -> dict | None:
    num_block = count_indexed(state, 'backbone.{}.0.weight')
    scale = scale_from_channels(state[f'backbone.{num_block + 2}.weight'].shape[0], 3)
    return None if scale is None else dict(num_feat=state['backbone.0.weight'].shape[0], num_block=num_block,
                                           scale=scale)
