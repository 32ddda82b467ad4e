"""The one way from a checkpoint file to a built network: its meta, else -opt, else an eSR file name, else its keys.

Every command that reads a checkpoint (convert, test, export, upscale, prune) comes through here, so a file that
one of them reads, all of them read. Each architecture declares its raw layout beside itself (core.archs.detection).
"""

from __future__ import annotations

from basicsr.archs import build_network
from torch import nn

from core.archs.detection import detect_architecture
from core.archs.esr_arch import model_id_from_path
from core.archs.network_options import check_network
from core.errors import UserError
from core.io.checkpoint import load_checkpoint, load_into
from core.io.option_file import read_options


def _network_from_opt(opt_path: str) -> tuple[str, dict]:
    """network_g of a YAML, ours or the ETDS authors' (their `type: ECBSR` reads as ECBSR_mobilesr)."""
    network = read_options(opt_path, []).get('network_g')
    if not isinstance(network, dict) or 'type' not in network:
        raise UserError(f'{opt_path} has no network_g with a type; pass the training YAML')
    args = {k: v for k, v in network.items() if k != 'type'}
    return network['type'], args


def resolve_architecture(state: dict, meta: dict, opt_path: str | None, path: str = '',
                         opt_over_meta: bool = True, arch: str | None = None) -> tuple[str, dict]:
    """The architecture: from -opt if given, else the checkpoint's meta, else its file name (official eSR
    files are named after their model id), else its keys and shapes. With `opt_over_meta` False, the meta
    wins over -opt (a converted checkpoint next to its training YAML). `arch` names the architecture of a raw
    file whose weights fit more than one."""
    if meta.get('arch') and not (opt_path is not None and opt_over_meta):
        return meta['arch'], dict(meta.get('args', {}))
    if opt_path is not None:
        return _network_from_opt(opt_path)
    if model_id := model_id_from_path(path):
        return 'EdgeSR', {'model_id': model_id}
    return detect_architecture(state, arch)


def network_block(path: str, param_key: str | None = None) -> dict:
    """The `network_g` block a checkpoint stands for (meta, eSR file name or raw keys), for a test YAML without one."""
    state, meta = load_checkpoint(path, param_key=param_key)
    try:
        arch, args = resolve_architecture(state, meta, None, path)
    except UserError:
        raise UserError(f'{path} has no meta; add network_g (type and arguments) to the test YAML (its keys match '
                        'no known architecture)') from None
    return {'type': arch, **args}


def load_network(input_path: str, opt_path: str | None = None, param_key: str | None = None,
                 opt_over_meta: bool = True, loaded: tuple[dict, dict] | None = None,
                 arch: str | None = None) -> tuple[str, dict, nn.Module]:
    """A checkpoint as a built network in eval mode, with the architecture and arguments it was built from.

    `loaded`: the (state, meta) a caller already read from `input_path`, so the file is read once.
    """
    state, meta = loaded if loaded is not None else load_checkpoint(input_path, param_key=param_key)
    arch, args = resolve_architecture(state, meta, opt_path, input_path, opt_over_meta, arch)
    try:
        check_network('network_g', {'type': arch, **args})
    except UserError:
        if meta.get('arch') or opt_path is not None:
            raise
        # a detector that knows the family but cannot read every size from the weights
        raise UserError(f'{input_path} looks like a raw {arch} checkpoint, but not all of its arguments can be '
                        'read from the weights; pass -opt with a YAML whose network_g describes it') from None
    net = build_network({'type': arch, **args})
    load_into(net, state, source=input_path)
    return arch, args, net.eval()
