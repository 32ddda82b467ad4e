"""The demo's evaluation step: each evaluation keeps its own results folder, so the printed path holds images."""

from __future__ import annotations

from pathlib import Path

import yaml

from conftest import REPO, write_edsr_pairs
from scripts.demo import BICUBIC_OPT, evaluate


def test_the_printed_folder_still_holds_the_held_out_images_after_a_benchmark(tmp_path: Path):
    held_out = write_edsr_pairs(tmp_path / 'val', 4, [(40, 36), (32, 44)])
    benchmark = write_edsr_pairs(tmp_path / 'Set5', 4, [(48, 40)], seed=1)
    opt = yaml.safe_load((REPO / BICUBIC_OPT).read_text())
    opt['datasets']['test_1']['dataroot'] = str(held_out)
    opt['val']['save_img'] = True
    (tmp_path / 'bicubic.yml').write_text(yaml.safe_dump(opt))

    results, pictures = evaluate(str(tmp_path / 'bicubic.yml'), str(benchmark), root=str(tmp_path))
    assert sorted(results) == ['Set5', 'demo_val']
    assert pictures == 'experiments/results/Bicubic_x4_demo/visualization'
    saved = sorted(p.name for p in (tmp_path / pictures).rglob('*.png'))
    assert len(saved) == 2, saved  # the two held-out images, not archived by the benchmark run
    results_root = tmp_path / 'experiments' / 'results'
    assert not [p for p in results_root.iterdir() if 'archived' in p.name]
    assert (results_root / 'Bicubic_x4_demo_Set5').is_dir()
