"""Option files written for the ETDS authors' code (their `options/` YAMLs), read as ours.

Their dialect differs from basicsr's in five places; each is translated and said in one line:
- `resume: {network_g_path, network_g_strict}` loads the weights → `path: {pretrain_network_g, strict_load_g}`;
- no `path:` section at all → an empty one (basicsr fills it in);
- `train: losses: {L1Loss: {type, loss_weight, reduction}}` → `train: pixel_opt: {...}` (one pixel loss);
- their `PairedImageDataset` takes `lq_size`, `use_vflip` and `use_channels_shuffle`, which basicsr's class of that
  name would ignore without a word → our `PairedSRDataset`, which reads them (and pairs same-named files, as
  their `GTmod12` / `LRbicx{s}` folders are);
- their `type: ECBSR` takes `num_feat` and `act_type` (basicsr's ECBSR takes `num_channel`) → `ECBSR_mobilesr`.
A key inside those sections that nothing would read is a one-line error naming it: nothing is dropped silently.
Standard library only.
"""

from __future__ import annotations

from core.errors import UserError

RESUME_KEYS = {'network_g_path': 'pretrain_network_g', 'network_g_strict': 'strict_load_g'}
PIXEL_LOSSES = ('L1Loss', 'MSELoss', 'CharbonnierLoss')
UPSTREAM_DATASET_KEYS = ('lq_size', 'use_vflip', 'use_channels_shuffle')  # what basicsr's PairedImageDataset ignores
DATASET_KEYS = {  # every key PairedSRDataset or basicsr's loader reads
    'name', 'type', 'phase', 'scale', 'dataroot', 'dataroot_gt', 'dataroot_lq', 'filename_tmpl', 'meta_info_file',
    'io_backend', 'lq_size', 'use_hflip', 'use_vflip', 'use_rot', 'use_channels_shuffle', 'color',
    'num_worker_per_gpu', 'batch_size_per_gpu', 'dataset_enlarge_ratio', 'prefetch_mode', 'pin_memory',
    'persistent_workers', 'use_shuffle', 'num_prefetch_queue'}
UPSTREAM_ECBSR_KEYS = {'num_feat', 'act_type'}


def translate_upstream(options: dict, source: str) -> list[str]:
    """Rewrite `options` in place from the authors' dialect; one line per translation (none for our own files)."""
    said: list[str] = []
    _resume(options, source, said)
    if 'path' not in options:
        options['path'] = {}
        said.append('no path: section; an empty one is added (basicsr fills it in)')
    _losses(options, source, said)
    for phase, dataset in (options.get('datasets') or {}).items():
        _dataset(phase, dataset, source, said)
    network = options.get('network_g')
    if isinstance(network, dict) and network.get('type') == 'ECBSR' and UPSTREAM_ECBSR_KEYS & set(network):
        network['type'] = 'ECBSR_mobilesr'
        said.append("network_g: type ECBSR with num_feat/act_type (the authors' ECBSR) -> type: ECBSR_mobilesr")
    return said


def _resume(options: dict, source: str, said: list[str]) -> None:
    resume = options.get('resume')
    if not isinstance(resume, dict) or not set(RESUME_KEYS) & set(resume):
        return
    unread = sorted(set(resume) - set(RESUME_KEYS))
    if unread:
        raise UserError(f"{source}: resume:{unread[0]} is read by nothing here (resume: takes "
                        f"{', '.join(RESUME_KEYS)}); remove it")
    path = options.setdefault('path', {})
    for theirs, ours in RESUME_KEYS.items():
        if theirs in resume:
            path[ours] = resume[theirs]
            said.append(f'resume:{theirs} -> path:{ours}')
    del options['resume']


def _losses(options: dict, source: str, said: list[str]) -> None:
    train = options.get('train')
    if not isinstance(train, dict) or 'losses' not in train:
        return
    losses = train.pop('losses') or {}
    if not isinstance(losses, dict) or len(losses) != 1:
        raise UserError(f'{source}: train:losses holds {len(losses)} losses; this toolkit trains with one pixel loss '
                        f"({', '.join(PIXEL_LOSSES)}): keep one")
    (name, loss), = losses.items()
    if not isinstance(loss, dict) or loss.get('type', name) not in PIXEL_LOSSES:
        raise UserError(f"{source}: train:losses:{name} is not a pixel loss; use one of {', '.join(PIXEL_LOSSES)}")
    if 'pixel_opt' in train:
        raise UserError(f'{source}: both train:losses and train:pixel_opt are set; keep one')
    train['pixel_opt'] = {'type': name, **loss}
    said.append(f'train:losses:{name} -> train:pixel_opt')


def _dataset(phase: str, dataset: object, source: str, said: list[str]) -> None:
    if not isinstance(dataset, dict) or dataset.get('type') != 'PairedImageDataset':
        return
    if not set(UPSTREAM_DATASET_KEYS) & set(dataset):
        return  # basicsr's own PairedImageDataset reads every key it has
    unread = sorted(set(dataset) - DATASET_KEYS)
    if unread:
        raise UserError(f'{source}: datasets:{phase}:{unread[0]} is read by nothing here; remove it or rename it '
                        '(docs/training.md lists the dataset options)')
    dataset['type'] = 'PairedSRDataset'
    said.append(f"datasets:{phase}: the authors' PairedImageDataset (lq_size, flips, channel shuffle) -> "
                'type: PairedSRDataset')
