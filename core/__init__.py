"""The mobile-SR plugin for basicsr. `import core` stays light (no torch); `import core.plugin` registers our
archs, models and datasets into basicsr's registries, and every entry point does that explicitly.

basicsr 1.4.2 is its last release and is stale in four places; each has one small, named, tested fix:
1. `basicsr.data.degradations` imports `torchvision.transforms.functional_tensor`, which torchvision 0.17 renamed
   to `_functional_tensor`. Below: a finder, last on `sys.meta_path`, answers only that one old name with the
   renamed module, and only when nothing else provides it. Nothing is imported until basicsr asks.
2. `basicsr.train.load_resume_state` maps tensors with `torch.cuda.current_device()`: core.training.resume loads
   on the CPU with `weights_only=True`.
3. `basicsr.utils.dist_util.init_dist` hard-codes NCCL: core.training.distributed picks gloo on CPU.
4. `basicsr.utils.options.parse_options` rejects `--local-rank`, initialises NCCL itself and applies
   `--force_yml` unchecked: core.training.option_parsing hands it arguments core.io.run_arguments checked.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

OLD_NAME = 'torchvision.transforms.functional_tensor'
NEW_NAME = 'torchvision.transforms._functional_tensor'


class _RenamedModule(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):  # noqa: ANN001, ANN201  (the importlib protocol)
        return importlib.util.spec_from_loader(fullname, self) if fullname == OLD_NAME else None

    def create_module(self, spec) -> ModuleType:  # noqa: ANN001
        return importlib.import_module(NEW_NAME)

    def exec_module(self, module: ModuleType) -> None:
        """The renamed module is already executed."""


def install() -> None:
    """Let `import torchvision.transforms.functional_tensor` find the renamed module (idempotent)."""
    if not any(isinstance(finder, _RenamedModule) for finder in sys.meta_path):
        sys.meta_path.append(_RenamedModule())


install()
