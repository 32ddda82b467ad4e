"""Reading and editing an ncnn `.param` file (plain text: a magic line, counts, then one layer per line).

Written by hand because ncnn's own Python binding exposes no parser: the apps need their blob names
(`data`/`output`), and tiling needs the receptive-field radius, which the file does not store but its layers give.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

MAGIC = '7767517'
# Layers that look at one pixel (or only across channels) and keep the resolution; constants (MemoryData, a Tile
# of one) and slices, which pnnx makes of border padding (a Crop of edge rows, concatenated), count as such too.
POINTWISE = {'Input', 'ReLU', 'Clip', 'PReLU', 'Sigmoid', 'TanH', 'BinaryOp', 'Eltwise', 'Split', 'Concat',
             'Slice', 'UnaryOp', 'Reduction', 'Crop', 'BatchNorm', 'Scale', 'Bias', 'HardSigmoid', 'HardSwish',
             'Softmax', 'MemoryData', 'Tile', 'Padding'}
CHANNEL_KEEPING = {'Split', 'Crop', 'Padding'}  # between the input and the first conv: the input's channels pass


@dataclass
class Layer:
    type: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[str, str]


def parse_layers(text: str) -> list[Layer]:
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != [MAGIC]:
        raise ValueError('not an ncnn .param file (its first line is not 7767517)')
    layers = []
    for tokens in lines[2:]:
        kind, name, n_bottom, n_top = tokens[0], tokens[1], int(tokens[2]), int(tokens[3])
        blobs = tokens[4:4 + n_bottom + n_top]
        params = dict(token.split('=', 1) for token in tokens[4 + n_bottom + n_top:])
        layers.append(Layer(kind, name, blobs[:n_bottom], blobs[n_bottom:], params))
    return layers


def rename_blobs(text: str, names: dict[str, str]) -> str:
    """The same graph with blobs (and the Input layer) renamed, e.g. pnnx's in0/out0 → the apps' data/output."""
    lines = text.splitlines()
    renamed = [' '.join(names.get(token, token) for token in line.split()) for line in lines[2:]]
    return '\n'.join(lines[:2] + renamed) + '\n'


def input_channels(layers: list[Layer], input_blob: str) -> int | None:
    """Channels the first conv reads from the input: weights × groups / (outputs × kernel area); the Input layer
    of a pnnx file does not say. Concatenations along height or width (axis ≠ 0) keep the channels too."""
    sources = {input_blob}
    for layer in layers:
        if not sources & set(layer.bottoms):
            continue
        p = layer.params
        if layer.type in CHANNEL_KEEPING or (layer.type == 'Concat' and p.get('0', '0') != '0'):
            sources |= set(layer.tops)
        elif layer.type in ('Convolution', 'ConvolutionDepthWise', 'Deconvolution', 'DeconvolutionDepthWise'):
            area = int(p.get('1', 1)) * int(p.get('11', p.get('1', 1)))
            return int(p['6']) * int(p.get('7', 1)) // (int(p['0']) * area)
    return None


def _larger(params: dict[str, str], width_key: str) -> int:
    """The larger of a width parameter (`1` kernel, `2` dilation, `3` stride) and its height twin (`11`, ...)."""
    width = int(params.get(width_key, 1))
    return max(width, int(params.get('1' + width_key, width)))


def receptive_radius(text: str) -> int | None:
    """How far, in input pixels, an output pixel can see, read off the layers (None: a layer it cannot read).

    Tracked per blob as (radius in input pixels, the blob's pixels per input pixel), so a 3×3 conv after a ×4
    PixelShuffle adds a quarter of an input pixel. Matches core.deploy.receptive_field on every family here.
    """
    layers = parse_layers(text)
    reach: dict[str, tuple[Fraction, Fraction]] = {}
    for layer in layers:
        inputs = [reach[b] for b in layer.bottoms if b in reach]
        radius = max((r for r, _ in inputs), default=Fraction(0))
        density = inputs[0][1] if inputs else Fraction(1)
        p = layer.params
        if layer.type in ('Convolution', 'ConvolutionDepthWise'):
            radius += Fraction(_larger(p, '2') * (_larger(p, '1') - 1), 2) / density
            density /= _larger(p, '3')
        elif layer.type in ('Deconvolution', 'DeconvolutionDepthWise'):
            stride = _larger(p, '3')
            radius += Fraction(_larger(p, '1') - 1, 2 * stride) / density
            density *= stride
        elif layer.type == 'PixelShuffle':
            density *= int(p.get('0', 1))
        elif layer.type == 'Interp' and p.get('0') in ('2', '3'):  # bilinear, bicubic: 1 or 2 source pixels away
            factor = Fraction(p.get('1', '1'))
            radius += (1 if p['0'] == '2' else 2) / density
            density *= factor
        elif layer.type not in POINTWISE:
            return None
        for top in layer.tops:
            reach[top] = (radius, density)
    outputs = {b for layer in layers for b in layer.tops} - {b for layer in layers for b in layer.bottoms}
    return max(math.ceil(reach[b][0]) for b in outputs) if outputs else None
