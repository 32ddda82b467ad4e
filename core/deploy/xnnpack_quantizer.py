"""The XNNPACK quantizer: per-channel symmetric int8 weights, per-tensor int8 activations, for PTQ and QAT.

Its maintained home is ExecuTorch; torchao keeps only a deprecated copy (`torchao.testing.pt2e`), so both the
ExecuTorch int8 export and quantization-aware training take it from ExecuTorch.
"""

from __future__ import annotations

from core.deploy.optional import require


def xnnpack_quantizer(is_qat: bool = False):
    module = require('executorch.backends.xnnpack.quantizer.xnnpack_quantizer', 'executorch')
    config = module.get_symmetric_quantization_config(is_per_channel=True, is_qat=is_qat)
    return module.XNNPACKQuantizer().set_global(config)
