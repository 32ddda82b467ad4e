"""How one training step runs faster: compiled (the same arithmetic, reordered), and in reduced precision (rounded
differently; tests/training/test_fast_step.py bounds by how much).

    train:
      compile: true   # torch.compile the network for the training forward; the first step compiles (logged)
      amp: bf16       # autocast the forward in bfloat16; fp16 adds loss scaling (for GPUs)

The fused optimizer is torch's own switch and passes straight through: `optim_g: {type: Adam, fused: true}`.
scripts/benchmark_training.py measures each of these against the plain step; docs/training.md has the figures.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch

from core.errors import UserError

AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


@dataclass(frozen=True)
class StepOptions:
    """train:compile and train:amp, checked."""

    compile: bool = False
    amp: str | None = None

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """The forward's precision: autocast in the chosen dtype, or nothing at all."""
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=AMP_DTYPES[self.amp])

    def grad_scaler(self, device: torch.device) -> torch.amp.GradScaler:
        """fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none."""
        return torch.amp.GradScaler(device.type, enabled=self.amp == 'fp16')


def step_options(train_opt: Mapping) -> StepOptions:
    """Read train:compile and train:amp, refusing values that would be silently ignored."""
    compile_ = train_opt.get('compile', False)
    if not isinstance(compile_, bool):
        raise UserError(f'train:compile is {compile_!r}; use true or false')
    amp = train_opt.get('amp')
    if amp is not None and amp not in AMP_DTYPES:
        raise UserError(f"train:amp is {amp!r}; use {' or '.join(AMP_DTYPES)}, or leave it out for fp32")
    options = StepOptions(compile_, amp)
    if train_opt.get('qat') is not None and (options.compile or options.amp):
        raise UserError('train:qat trains the int8 fake-quantized graph in fp32, eagerly; drop train:compile and '
                        'train:amp from a QAT run')
    return options


def amp_warning(options: StepOptions, device: torch.device, isa: Mapping[str, bool] | None = None) -> str | None:
    """One line when train:amp: bf16 runs on a CPU that emulates bf16 (neither AVX-512 BF16 nor AMX): there the
    fused ETDS step measured 9x slower than fp32 and collapsed ECBSR 1.4x slower (scripts/benchmark_training.py)."""
    if options.amp != 'bf16' or device.type != 'cpu':
        return None
    if isa is None:
        from core.deploy.benchmarking import cpu_description

        isa = cpu_description()['isa']
    if isa.get('avx512_bf16') or isa.get('amx_bf16'):
        return None
    return ('train:amp: bf16 on a CPU without native bf16 (no avx512_bf16 or amx_bf16): bf16 is emulated there and '
            'was measured up to 9x slower than fp32; drop train:amp (--force_yml train:amp=null)')


@contextlib.contextmanager
def named_compile_errors() -> Iterator[None]:
    """The first (compiling) step's failure in one line: torch.compile needs a working C++ compiler on CPU."""
    from torch._dynamo.exc import BackendCompilerFailed

    try:
        yield
    except BackendCompilerFailed as err:
        reason = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise UserError(f'train:compile failed: {reason[:300]}; set train:compile: false (--force_yml '
                        'train:compile=false), or install a C++ compiler (g++) for torch.compile') from err


class _CpuOnlyCudaNotice(logging.Filter):
    """Drops the "No CUDA runtime is found" warning torch.compile's toolchain lookup prints on every CPU-only
    machine: there it is expected, and a user reads it as a fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        return 'No CUDA runtime is found' not in record.getMessage()


def quiet_cpu_only_cuda_notice() -> None:
    """Install the filter once, on the logger that prints it (torch.utils.cpp_extension), on CPU-only machines."""
    logger = logging.getLogger('torch.utils.cpp_extension')
    if not torch.cuda.is_available() and not any(isinstance(f, _CpuOnlyCudaNotice) for f in logger.filters):
        logger.addFilter(_CpuOnlyCudaNotice())


HALF_DTYPES = (torch.float16, torch.bfloat16)


def float_outputs(output: torch.Tensor | tuple) -> torch.Tensor | tuple:
    """Autocast's half-precision output(s) in fp32, so losses and logged values keep full precision; fp32 and
    float64 outputs stay as they are (a float64 run, as the exactness tests use, must not drop to fp32)."""
    if isinstance(output, tuple):
        return tuple(float_outputs(o) for o in output)
    return output.float() if output.dtype in HALF_DTYPES else output
