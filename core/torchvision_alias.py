"""Named fix 1 for basicsr 1.4.2 (see core.compat): `basicsr.data.degradations` imports
`torchvision.transforms.functional_tensor`, which torchvision 0.17 renamed to `_functional_tensor`.

`import core` installs a finder, last on `sys.meta_path`, that answers only that one old name, with the renamed
module, and only when nothing else provides it (an older torchvision still does). Nothing is imported until
basicsr asks for it, so `import core` stays free of torch.
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
