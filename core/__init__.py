"""The mobile-SR plugin for basicsr.

`import core` is light (no torch): it only installs the torchvision alias basicsr 1.4.2 needs
(core.torchvision_alias), which takes effect when basicsr is first imported. `import core.plugin` registers
our archs, models, losses and datasets into basicsr's registries; the entry points do that explicitly.
"""

from core.torchvision_alias import install as _install_torchvision_alias

_install_torchvision_alias()
