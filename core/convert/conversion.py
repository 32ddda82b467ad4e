"""Convert a checkpoint: fold it (core.convert.resolver found its network), verify the fold, save it atomically."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from os import path as osp

import torch
from torch import nn

from core.archs.network import ReferenceFn, registered_name, same_output
from core.archs.shared import input_channels
from core.convert.registry import Converter, converters, get_converter, layout_options
from core.convert.resolver import load_network, resolve_architecture
from core.errors import UserError
from core.io.checkpoint import load_checkpoint, save_checkpoint
from core.io.paths import refuse_overwriting_input

VERIFY_SHAPE = (2, 24, 20)  # two images of 24×20 pixels: odd sizes catch border and PixelShuffle mistakes


@dataclass(frozen=True)
class ConversionReport:
    source_arch: str
    target_arch: str
    target_args: dict
    max_abs_diff: float
    output: str


@torch.no_grad()
def verify(source: nn.Module, target: nn.Module, reference: ReferenceFn, num_in_ch: int, seed: int = 0) -> float:
    """Largest |target(x) - reference(source, x)| over random images in [0, 1], computed in float64.

    float64 isolates the fold's own error from float32 rounding, so any real mistake stands out.
    """
    generator = torch.Generator().manual_seed(seed)
    batch, height, width = VERIFY_SHAPE
    x = torch.rand(batch, num_in_ch, height, width, generator=generator, dtype=torch.float64)
    expected = reference(copy.deepcopy(source).double().eval(), x)
    actual = copy.deepcopy(target).double().eval()(x)
    if actual.shape != expected.shape:
        raise UserError(f'converted output has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}')
    return (actual - expected).abs().max().item()


def check_options(converter: Converter, options: dict) -> None:
    """Refuse options the converter does not take, naming the ones it does."""
    unknown = sorted(set(options) - set(converter.options))
    if unknown:
        takes = f"takes only {', '.join(converter.options)}" if converter.options else 'takes no options'
        raise UserError(f"converting '{converter.source}' to {converter.kind} {takes}, not {', '.join(unknown)}")


def deploy_step(source_arch: str, kind: str | None, options: dict) -> tuple[Callable[[nn.Module], nn.Module],
                                                                             ReferenceFn]:
    """What turns a `source_arch` network into its deploy form, and the function the result must reproduce.

    A training form is folded by its `to_deploy`; a deployable form given only its layout options (SESR's
    PixelShuffle layout) is re-laid out by its `with_layout`. Bad options fail here, before any work.
    """
    layouts = layout_options(source_arch)
    if options and layouts and not any(source == source_arch for source, _ in converters()):
        unknown = sorted(set(options) - set(layouts))
        if unknown:
            raise UserError(f"'{source_arch}' takes only its layout options {', '.join(layouts)}, "
                            f"not {', '.join(unknown)}")
        return (lambda net: net.with_layout(**options)), same_output
    converter = get_converter(source_arch, kind)
    check_options(converter, options)
    return (lambda net: converter.convert(net, **options)), converter.reference


def convert_network(source: nn.Module, source_arch: str, kind: str | None = None,
                    **options: object) -> tuple[str, dict, nn.Module]:
    """Fold a built source network into its `kind` form (no verification; see `verify`).

    The fold runs in float64 and the result is cast back, so the only error left is one final rounding.
    `options` go to the family's `to_deploy` (e.g. SESR's `two_step_shuffle`).
    """
    fold, _ = deploy_step(source_arch, kind, options)
    return _folded(source, fold)


def _folded(source: nn.Module, fold: Callable[[nn.Module], nn.Module]) -> tuple[str, dict, nn.Module]:
    dtype = next(source.parameters()).dtype
    target = fold(copy.deepcopy(source).double().eval())
    return registered_name(type(target)), dict(target.init_args), target.to(dtype).eval()


def convert_verified(source: nn.Module, source_arch: str, kind: str | None = None, tolerance: float = 1e-5,
                     options: dict | None = None) -> tuple[str, dict, nn.Module, float]:
    """Fold `source` and check the fold on random images in float64; an inexact fold is a UserError."""
    options = options or {}
    fold, reference = deploy_step(source_arch, kind, options)
    target_arch, target_args, target = _folded(source, fold)
    diff = verify(source, target, reference, input_channels(source))
    if not diff <= tolerance:
        raise UserError(f'conversion is not exact: max abs difference {diff:.3g} > {tolerance:g}; '
                        'the checkpoint may not match its declared architecture')
    return target_arch, target_args, target, diff


def convert_checkpoint(input_path: str, output_path: str, opt_path: str | None = None, kind: str | None = None,
                       tolerance: float = 1e-5, param_key: str | None = None,
                       options: dict | None = None, arch: str | None = None) -> ConversionReport:
    """Convert `input_path` into `output_path`; refuses to overwrite the input or save an inexact fold."""
    options = options or {}
    refuse_overwriting_input(input_path, output_path)
    state, meta = load_checkpoint(input_path, param_key=param_key)
    source_arch, _ = resolve_architecture(state, meta, opt_path, input_path, arch=arch)
    deploy_step(source_arch, kind, options)  # before any work: a bad option or kind fails at once
    source_arch, source_args, source = load_network(input_path, opt_path, param_key, loaded=(state, meta),
                                                    arch=arch)
    target_arch, target_args, target, diff = convert_verified(source, source_arch, kind, tolerance, options)
    new_meta = {'arch': target_arch, 'args': target_args, 'max_abs_diff': diff,
                'converted_from': {'arch': source_arch, 'args': source_args, 'file': osp.basename(input_path)}}
    save_checkpoint(output_path, target.state_dict(), new_meta)
    return ConversionReport(source_arch, target_arch, target_args, diff, output_path)
