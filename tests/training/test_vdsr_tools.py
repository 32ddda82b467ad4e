"""VDSR tools: L1 filter pruning (physical removal, ~4× fewer params at 50%) and the resumable TPE search."""


import pytest
import torch

from conftest import eval_opt, run_repo_script, write_edsr_pairs, write_yaml
from core.archs.cost import count_macs
from core.archs.vdsr_arch import VDSR
from core.io.checkpoint import load_checkpoint
from core.training.pipelines import evaluate_pipeline
from core.training.vdsr_pruning import l1_kept_filters, prune_vdsr
from core.training.vdsr_search import run_search


def test_l1_pruning_keeps_the_largest_filters_and_removes_the_rest():
    conv = torch.nn.Conv2d(2, 4, 3, bias=False)
    with torch.no_grad():
        for i, scale in enumerate([3.0, 0.1, 2.0, 0.2]):
            conv.weight[i] = scale
    assert l1_kept_filters(conv, 0.5).tolist() == [0, 2]


def test_pruned_vdsr_is_dense_and_computes_the_kept_channels():
    torch.manual_seed(0)
    net = VDSR(widths=[6, 6, 6]).eval()
    pruned = prune_vdsr(net, 0.5).eval()
    assert pruned.widths == [3, 3, 3]
    assert not any(hasattr(m, 'weight_mask') for m in pruned.modules())  # really removed, not masked
    x = torch.rand(1, 1, 9, 9)
    kept = l1_kept_filters(net.input, 0.5)
    with torch.no_grad():
        torch.testing.assert_close(torch.relu(pruned.input(x)), torch.relu(net.input(x))[:, kept])


def test_fifty_percent_sparsity_cuts_params_and_macs_about_four_times():
    net, pruned = VDSR(), prune_vdsr(VDSR(), 0.5)
    ratio = sum(p.numel() for p in net.parameters()) / sum(p.numel() for p in pruned.parameters())
    assert ratio == pytest.approx(664704 / 166464) and 3.9 < ratio < 4.0
    assert count_macs(net, (1, 1, 32, 32)) / count_macs(pruned, (1, 1, 32, 32)) == pytest.approx(ratio)


@pytest.mark.slow
def test_prune_script_reports_and_writes_a_model_test_py_loads(tmp_path):
    data = write_edsr_pairs(tmp_path / 'set', 2, [(48, 44), (50, 46)])
    torch.manual_seed(0)
    torch.save(VDSR().state_dict(), tmp_path / 'vdsr.pth')
    result = run_repo_script('scripts/prune_vdsr.py', '--input', 'vdsr.pth', '--output', 'pruned.pth', '--scale', '2',
                             '--train-data', str(data / 'HR'), '--eval-data', str(data), '--iters', '2', '--batch', '2',
                             cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line[:1].isalpha()}
    assert rows['params'] == ['664,704', '166,464', '3.99x']
    assert rows['ONNX'][0] == 'bytes' and float(rows['ONNX'][3].rstrip('x')) > 3.5
    assert 'Y-PSNR' in rows
    state, meta = load_checkpoint(str(tmp_path / 'pruned.pth'))
    assert meta['arch'] == 'VDSR' and meta['args']['widths'] == [32] * 19 and meta['args']['upscale'] == 2
    opt = eval_opt(data, str(tmp_path / 'pruned.pth'), None, name='pruned')
    opt['datasets']['test_1']['color'] = 'y'
    psnr = evaluate_pipeline(str(tmp_path), ['-opt', write_yaml(tmp_path / 't.yml', opt)])['synthetic']['psnr']
    assert psnr == pytest.approx(float(rows['Y-PSNR'][1]), abs=1e-3)


@pytest.mark.slow
def test_tpe_search_runs_three_trials_and_resumes(tmp_path):
    data = write_edsr_pairs(tmp_path / 'set', 2, [(48, 44), (50, 46)])
    storage = str(tmp_path / 'study.db')
    study = run_search(str(data / 'HR'), storage, trials=3, iters=2, widths=[4, 4])
    assert len(study.trials) == 3
    assert set(study.best_params) == {'lr', 'momentum', 'weight_decay', 'batch', 'clip'}
    assert 0.05 <= study.best_params['lr'] <= 1 and study.best_params['batch'] in (64, 128, 256, 512)
    resumed = run_search(str(data / 'HR'), storage, trials=4, iters=2, widths=[4, 4])
    assert len(resumed.trials) == 4
    assert resumed.trials[3].params != resumed.trials[0].params
