"""Which training state a run continues from: the newest complete one, never a damaged or unsafe file.

basicsr takes the highest-numbered `.state` and trusts it. Here each candidate is read weights-only with
its model file; a truncated or unreadable pair is skipped with a one-line warning (the previous complete
state is used), and a file that is not weights-only data is refused outright.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from os import path as osp

from core.errors import UserError
from core.io.checkpoint import NotWeightsOnly, load_checkpoint, read_weights_only


@dataclass(frozen=True)
class ResumePoint:
    path: str
    state: dict
    model_path: str


def _numbered_states(folder: str) -> list[int]:
    if not osp.isdir(folder):
        return []
    return sorted((int(name[:-len('.state')]) for name in os.listdir(folder)
                   if name.endswith('.state') and name[:-len('.state')].isdigit()), reverse=True)


def _read_point(state_path: str, models: str) -> ResumePoint:
    state = read_weights_only(state_path, 'training state')
    if not isinstance(state, dict) or not {'iter', 'epoch', 'optimizers', 'schedulers'} <= set(state):
        raise UserError(f'{state_path} is not a training state (no iter, epoch, optimizers, schedulers)')
    model_path = osp.join(models, f"net_g_{state['iter']}.pth")
    load_checkpoint(model_path)  # the weights of that iteration must be whole too
    return ResumePoint(state_path, state, model_path)


def find_resume_point(opt: dict, logger: logging.Logger) -> ResumePoint | None:
    """`path.resume_state` as given, or with --auto_resume the newest state whose files load.

    The state stays on the CPU: the optimizers' load_state_dict moves it to their parameters' device, and
    the RNG states must be CPU tensors.
    """
    models = opt['path']['models']
    given = opt['path'].get('resume_state')
    if given and not opt['auto_resume']:
        if not osp.isfile(given):
            raise UserError(f'resume state {given} does not exist; fix path.resume_state or use --auto_resume')
        return _read_point(given, models)
    if not opt['auto_resume']:
        return None
    folder = opt['path']['training_states']
    numbers = _numbered_states(folder)
    for number in numbers:
        path = osp.join(folder, f'{number}.state')
        try:
            return _read_point(path, models)
        except NotWeightsOnly:
            raise
        except UserError as err:
            logger.warning(f'Skipping {path}: {err}')
    if numbers:
        raise UserError(f'no training state in {folder} can be read; delete the folder to start again, '
                        'or train without --auto_resume (the old folder is then archived)')
    return None
