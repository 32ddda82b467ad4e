"""Post-training int8 weights rounded by the error they cause, not to the nearest level (GPTQ), and biases
corrected for what rounding still shifts.

Per-channel int8 gives each weight row one step, max|w|/127. The rows of these networks span a lot: the rows
that carry the image through ETDS are an identity tap near 1 beside corrections near 0.01, so nearest rounding
loses most of the corrections and the image drifts layer after layer (2 dB on the official ETDS x2, weights
alone). GPTQ (Frantar et al., ICLR 2023, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
Transformers") rounds one column at a time and moves the not-yet-rounded weights of the row to cancel the
error on the calibration inputs (their second moments, H = E[x xᵀ]); on images, whose neighbouring pixels
correlate, the errors then cancel instead of adding up. Written here because the libraries that implement it
(torchao, ai-edge-quantizer) do so for Linear layers of language models, not for convolutions.

Before rounding, each layer's weights are refitted by least squares to give the fp32 layer's output from the
int8 inputs it will really get (W' = W·E[x xqᵀ]·E[xq xqᵀ]⁻¹, the asymmetric calibration of GPTAQ, Li et al. 2025):
what the layers before lost in their activations is then partly won back here instead of adding up. Measured
on the official ETDS x2 through the PT2E graph LiteRT runs: −0.184/−0.208/−0.188 dB for three calibration draws
without it, −0.157/−0.156/−0.158 with it.

The rounded weights lie on the grid the runtime's own per-channel observer will pick (each row keeps its
largest weight, so the observer finds the step GPTQ rounded to), so the runtime's rounding reproduces them. Layers are
rounded in order, each on the inputs the already-rounded layers give with activations quantized as the runtime
will, so each layer also absorbs what came before it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from core.deploy.int8_grid import PIXEL_QPARAMS, WEIGHT_LEVELS, fake_quantize, observed_qparams, on_grid, row_scales
from core.reparam.clamp import is_unit_clip

REFIT_DAMPING = 1e-6  # of the mean diagonal, for the refit's solve: it must stay unbiased (0.001 already shrank
# the weights and lost 0.3 dB on ETDS x2), unlike GPTQ's, which only orders the rounding
DAMPING = 0.01  # fraction of the mean diagonal added to H, as in GPTQ: keeps it invertible on flat inputs
SAMPLES = 65536  # input positions per layer (of patches × H × W): H's estimate is stable well below this


def gptq_round(weight: torch.Tensor, second_moment: torch.Tensor, damping: float | None = None) -> torch.Tensor:
    """Weights (rows × columns) on their rows' int8 grids, rounded column by column with the error carried to
    the columns not yet rounded (GPTQ). `second_moment` is E[x xᵀ] of the inputs (columns × columns).

    Each row's largest |w| is never moved, so the row's observer picks the same scale from the result.
    """
    w = weight.detach().double().clone()
    rows, columns = w.shape
    scale = row_scales(w)[:, None]
    fixed = torch.zeros_like(w, dtype=torch.bool)
    fixed[torch.arange(rows), w.abs().argmax(dim=1)] = True
    h = second_moment.detach().double().clone()
    dead = torch.diag(h) == 0  # inputs that are always 0: rounded to nearest (a row's largest weight may be one)
    h[dead, dead] = 1
    h += (DAMPING if damping is None else damping) * torch.diag(h).mean() * torch.eye(columns, dtype=h.dtype)
    order = torch.argsort(torch.diag(h), descending=True)  # largest inputs first (GPTQ's act-order)
    w, fixed, h = w[:, order], fixed[:, order], h[order][:, order]
    # The upper Cholesky factor of H⁻¹: row i holds how the error of column i spreads over columns > i.
    spread = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    rounded = torch.empty_like(w)
    for i in range(columns):
        q = torch.clamp(torch.round(w[:, i:i + 1] / scale), -WEIGHT_LEVELS, WEIGHT_LEVELS) * scale
        rounded[:, i:i + 1] = q
        update = (w[:, i:i + 1] - q) / spread[i, i] * spread[i:i + 1, i + 1:]
        w[:, i + 1:] -= update.masked_fill(fixed[:, i + 1:], 0)
    return rounded[:, torch.argsort(order)].to(weight.dtype)


def refit_to_quantized_inputs(weight: torch.Tensor, second_moment: torch.Tensor,
                              cross_moment: torch.Tensor) -> torch.Tensor:
    """The rows (rows × columns) that best give `weight`'s outputs on the exact inputs x from the quantized
    inputs xq, in the least-squares sense: W·E[x xqᵀ]·(E[xq xqᵀ] + λ)⁻¹, with `second_moment` E[xq xqᵀ] and
    `cross_moment` E[x xqᵀ] (columns × columns). Inputs that were always 0 in calibration keep their weights:
    other images may well use them."""
    h = second_moment.detach().double().clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1
    h += REFIT_DAMPING * torch.diag(h).mean() * torch.eye(h.shape[0], dtype=h.dtype)
    refitted = torch.linalg.solve(h, (weight.detach().double() @ cross_moment.double()).T).T
    refitted[:, dead] = weight.detach().double()[:, dead]
    return refitted.to(weight.dtype)


def input_columns(conv: nn.Conv2d, x: torch.Tensor, samples: int | None = None) -> torch.Tensor:
    """The conv's input patches as rows (positions × in·k·k), a seeded subset of at most `samples`."""
    columns = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)
    columns = columns.transpose(1, 2).reshape(-1, columns.shape[1])
    samples = SAMPLES if samples is None else samples
    if columns.shape[0] > samples:
        keep = torch.randperm(columns.shape[0], generator=torch.Generator().manual_seed(0))[:samples]
        columns = columns[keep]
    return columns


@dataclass(frozen=True)
class RoundedLayer:
    name: str
    nearest_error: float  # mean squared error of the layer's output, nearest rounding (on its int8 inputs)
    rounded_error: float  # the same with GPTQ's rounding and the corrected bias


class _InputCapture:
    """Forward pre-hooks: quantize the inputs of layers already rounded, and record one layer's input."""

    def __init__(self, convs: dict[str, nn.Conv2d], qparams: dict[str, tuple[float, int]]) -> None:
        self.convs, self.qparams, self.captured = convs, qparams, None

    def run(self, net: nn.Module, batch: torch.Tensor, name: str | None) -> torch.Tensor | None:
        self.captured = None

        def pre_hook(layer: str):
            def hook(_module: nn.Module, args: tuple) -> tuple | None:
                if layer == name:
                    self.captured = args[0].detach()
                if layer in self.qparams:
                    return (fake_quantize(args[0], self.qparams[layer]), *args[1:])
                return None

            return hook

        handles = [conv.register_forward_pre_hook(pre_hook(layer)) for layer, conv in self.convs.items()]
        try:
            with torch.no_grad():
                net(batch)
        finally:
            for handle in handles:
                handle.remove()
        return self.captured


def _conv_order(net: nn.Module, batch: torch.Tensor) -> list[str]:
    order: list[str] = []
    handles = [module.register_forward_pre_hook(lambda *_, name=name: order.append(name))
               for name, module in net.named_modules() if isinstance(module, nn.Conv2d) and module.groups == 1]
    try:
        with torch.no_grad():
            net(batch[:1, :, :16, :16])
    finally:
        for handle in handles:
            handle.remove()
    return list(dict.fromkeys(order))


@torch.no_grad()
def round_weights(net: nn.Module, calibration: Sequence[np.ndarray], observer: Callable[[], nn.Module],
                  patches: int = 8) -> tuple[nn.Module, list[RoundedLayer]]:
    """A copy of `net` whose Conv2d weights are int8 grid values chosen by GPTQ, layer by layer on the int8
    inputs the rounded layers before give (refitted to them first), with each bias corrected for the mean error
    left."""
    reference = net.float().eval()
    rounded = copy.deepcopy(reference)
    batch = torch.cat([torch.from_numpy(patch) for patch in calibration[:patches]])
    order = _conv_order(rounded, batch)
    convs = {name: rounded.get_submodule(name) for name in order}
    exact = _InputCapture({name: reference.get_submodule(name) for name in order}, {})
    capture = _InputCapture(convs, {})
    report = []
    for name in order:
        conv = convs[name]
        x = capture.run(rounded, batch, name)
        is_input = x.shape == batch.shape and torch.equal(x, batch)  # the file's input: pinned to pixels
        capture.qparams[name] = PIXEL_QPARAMS if is_input else observed_qparams(x, observer)
        x = fake_quantize(x, capture.qparams[name])
        exact_input = exact.run(reference, batch, name)
        target = F.conv2d(exact_input, reference.get_submodule(name).weight, None, conv.stride, conv.padding,
                          conv.dilation, conv.groups)
        columns = input_columns(conv, x).double()
        second_moment = columns.T @ columns / columns.shape[0]
        weight = conv.weight.reshape(conv.out_channels, -1)
        # Pixels are already on their grid; a folded clamp's −I must stay −I (its input is read on [0, 1]).
        if not is_input and not is_unit_clip(conv.weight, conv.bias):
            exact_columns = input_columns(conv, exact_input).double()  # the same positions (seeded subset)
            weight = refit_to_quantized_inputs(weight, second_moment, exact_columns.T @ columns / columns.shape[0])
        nearest = on_grid(conv.weight)
        new = gptq_round(weight, second_moment).view_as(conv.weight)
        before = F.conv2d(x, nearest, None, conv.stride, conv.padding, conv.dilation, conv.groups) - target
        after = F.conv2d(x, new, None, conv.stride, conv.padding, conv.dilation, conv.groups) - target
        shift = after.mean(dim=(0, 2, 3))
        conv.weight.copy_(new)
        if conv.bias is not None:
            conv.bias.sub_(shift)
        report.append(RoundedLayer(name, float(before.pow(2).mean()),
                                   float((after - shift.view(1, -1, 1, 1)).pow(2).mean())))
    return rounded, report
