"""Checkpoint loading (weights-only, raw or basicsr-style) and atomic saving."""

import os

import pytest
import torch
from torch import nn

from core.errors import UserError
from core.io.checkpoint import atomic_save, load_checkpoint, load_into, network_meta, save_checkpoint


def test_raw_state_dict_loads_and_module_prefix_is_dropped(tmp_path):
    conv = nn.Conv2d(3, 4, 3)
    torch.save({f'module.{k}': v for k, v in conv.state_dict().items()}, tmp_path / 'raw.pth')
    state, meta = load_checkpoint(str(tmp_path / 'raw.pth'))
    assert set(state) == {'weight', 'bias'} and meta == {}
    assert torch.equal(state['weight'], conv.weight)


def test_basicsr_format_prefers_ema_and_honours_param_key(tmp_path):
    a, b = {'w': torch.zeros(1)}, {'w': torch.ones(1)}
    torch.save({'params': a, 'params_ema': b, 'meta': {'arch': 'X', 'args': {'n': 1}}}, tmp_path / 'c.pth')
    state, meta = load_checkpoint(str(tmp_path / 'c.pth'))
    assert state['w'].item() == 1 and meta == {'arch': 'X', 'args': {'n': 1}}
    assert load_checkpoint(str(tmp_path / 'c.pth'), param_key='params')[0]['w'].item() == 0
    torch.save({'params': a}, tmp_path / 'no_ema.pth')
    assert load_checkpoint(str(tmp_path / 'no_ema.pth'), param_key='params_ema')[0]['w'].item() == 0


def test_pickled_objects_are_refused(tmp_path):
    torch.save(nn.Conv2d(1, 1, 1), tmp_path / 'module.pth')
    with pytest.raises(UserError, match='not a weights-only tensor checkpoint'):
        load_checkpoint(str(tmp_path / 'module.pth'))


def test_non_tensor_entries_are_named(tmp_path):
    torch.save({'weight': torch.zeros(1), 'epoch': 3}, tmp_path / 'mixed.pth')
    with pytest.raises(UserError, match="entry 'epoch' is a int"):
        load_checkpoint(str(tmp_path / 'mixed.pth'))


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match='does not exist'):
        load_checkpoint(str(tmp_path / 'nope.pth'))


def test_misfit_names_the_first_mismatching_key():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))
    state = net.state_dict()
    state['1.weight'] = torch.zeros(4, 5, 3, 3)
    with pytest.raises(UserError, match=r"'1.weight' has shape \(4, 5, 3, 3\) in the checkpoint but \(4, 4, 3, 3\)"):
        load_into(net, state)
    del state['1.weight']
    with pytest.raises(UserError, match="'1.weight' is missing"):
        load_into(net, state)
    extra = dict(net.state_dict(), **{'2.weight': torch.zeros(1)})
    with pytest.raises(UserError, match="'2.weight' is in the checkpoint but not in the model"):
        load_into(net, extra)


def test_save_checkpoint_round_trips_with_meta(tmp_path):
    net = nn.Conv2d(3, 4, 3)
    meta = network_meta({'type': 'Foo', 'size': (1, 2)}, iter=5)
    save_checkpoint(str(tmp_path / 'm.pth'), net.state_dict(), meta, params_ema=net.state_dict())
    raw = torch.load(tmp_path / 'm.pth', weights_only=True)
    assert set(raw) == {'params', 'params_ema', 'meta'}
    assert raw['meta'] == {'arch': 'Foo', 'args': {'size': [1, 2]}, 'iter': 5}


def test_atomic_save_leaves_no_partial_file(tmp_path):
    target = tmp_path / 'x.pth'
    with pytest.raises(Exception):  # noqa: B017  (any pickling error will do)
        atomic_save({'f': lambda: 0}, str(target))
    assert os.listdir(tmp_path) == []
    atomic_save({'w': torch.ones(2)}, str(target))
    atomic_save({'w': torch.zeros(2)}, str(target))
    assert os.listdir(tmp_path) == ['x.pth']
    assert torch.load(target, weights_only=True)['w'].sum() == 0


def test_saved_files_get_the_mode_of_other_outputs(tmp_path):
    """mkstemp makes owner-only files; a model saved for a team must be readable under umask 022."""
    old = os.umask(0o022)
    try:
        atomic_save({'w': torch.ones(1)}, str(tmp_path / 'a.pth'))
        save_checkpoint(str(tmp_path / 'b.safetensors'), {'w': torch.ones(1)}, {'arch': 'X', 'args': {}})
    finally:
        os.umask(old)
    assert {oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()} == {'0o644'}


def test_orphaned_temporaries_are_recognised_and_only_they(tmp_path):
    from core.io.staging import remove_orphaned_temporaries

    for name in ('.net_g_8.k2j4h6g8.tmp.pth', '.8.a_b3c4d5.tmp.state', 'net_g_8.pth', '8.state', '.hidden'):
        (tmp_path / name).write_bytes(b'x')
    assert remove_orphaned_temporaries(str(tmp_path)) == ['.8.a_b3c4d5.tmp.state', '.net_g_8.k2j4h6g8.tmp.pth']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.hidden', '8.state', 'net_g_8.pth']


def test_a_file_that_is_not_a_mapping_is_named(tmp_path):
    torch.save([torch.ones(1)], tmp_path / 'list.pth')
    with pytest.raises(UserError, match=r'list.pth holds a list, not a state_dict; save model.state_dict\(\) instead'):
        load_checkpoint(str(tmp_path / 'list.pth'))
