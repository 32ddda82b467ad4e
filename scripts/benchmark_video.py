"""Video upscaling speed per backend: inference alone against decode + inference + encode, side by side.

python scripts/benchmark_video.py                 # ETDS-M4C32 x4, 360x640 -> 1440x2560 (the paper's setting)
python scripts/benchmark_video.py --size 180x320 --scale 2 --backends torch onnxruntime

For each backend, in one process and one after the other: the same decoded frames through the runtime alone
(inference-only fps), then the whole pipeline of scripts/upscale.py (end-to-end fps, H.264 by default). Their
ratio says how much decoding and encoding cost beside inference on this machine. Real time is the clip's 30 fps.
Also printed: the CPU's ISA flags, the fp32 GEMM peak measured in this run, and each backend's fraction of it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from os import path as osp

from core.cli.arguments import image_size  # standard library only: --help stays instant

BACKENDS = ('torch', 'onnxruntime', 'tflite', 'ncnn', 'executorch', 'openvino')
CLIP_FPS = 30


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default=None,
                        help='a checkpoint (default: ETDS-M4C32 at --scale with seeded weights; speed does not '
                             'depend on the weights)')
    parser.add_argument('--scale', type=int, choices=(2, 3, 4), default=4)
    parser.add_argument('--size', type=image_size(), default='360x640', help='input HEIGHTxWIDTH')
    parser.add_argument('--frames', type=int, default=30, help='frames per measurement (default 30: one second)')
    parser.add_argument('--backends', nargs='+', choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument('--codec', default='libx264')
    parser.add_argument('--preset', default=None, help="encoder preset (default: the encoder's own)")
    parser.add_argument('--crf', type=int, default=18)
    return parser.parse_args()


def _model(args: argparse.Namespace):
    import torch

    from core.deploy.model import build_deployable, load_deploy_model

    if args.model is not None:
        return load_deploy_model(args.model, None)
    torch.manual_seed(0)
    return build_deployable('ETDSForInference', dict(num_in_ch=3, num_out_ch=3, upscale=args.scale, num_block=4,
                                                     num_feat=32, num_residual_feat=3), 'ETDS-M4C32, seeded weights')


def main() -> None:
    args = parse_args()
    import av
    from tqdm import tqdm

    import core.plugin  # noqa: F401
    from core.archs.cost import count_macs
    from core.data.demo_clip import write_demo_clip
    from core.deploy.backend_runtime import backend_runtime
    from core.deploy.benchmarking import cpu_description, gemm_peaks
    from core.deploy.video_upscaling import VideoSettings, upscale_frame, upscale_video

    machine = cpu_description()
    print(f"CPU: {machine['model']}; {machine['threads']} threads; "
          + ', '.join(f'{f}={"yes" if on else "no"}' for f, on in machine['isa'].items()))
    model = _model(args)
    height, width = args.size
    macs = count_macs(model.net, (1, model.num_in_ch, height, width))
    peak = max(gemm_peaks().values())
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        clip = osp.join(folder, 'clip.mp4')
        write_demo_clip(clip, height, width, seconds=args.frames / CLIP_FPS, fps=CLIP_FPS)
        with av.open(clip) as container:
            frames = [f.to_ndarray(format='bgr24') for f in container.decode(video=0)]
        start = time.perf_counter()
        with av.open(clip) as container:
            for frame in container.decode(video=0):
                frame.to_ndarray(format='bgr24')
        decode_ms = (time.perf_counter() - start) / len(frames) * 1000
        settings = VideoSettings(args.codec, args.crf, args.preset, None, None, 0)
        for backend in tqdm(args.backends, desc='backends', unit='backend'):
            runtime, _ = backend_runtime(model, backend, folder, args.size)
            upscale_frame(frames[0], runtime, None, 0)  # warm-up (compiles, allocates)
            start = time.perf_counter()
            for frame in frames:
                upscale_frame(frame, runtime, None, 0)
            alone = len(frames) / (time.perf_counter() - start)
            result = upscale_video(clip, osp.join(folder, f'{backend}.mp4'), runtime, settings)
            rows.append((backend, alone, result.fps, 2 * macs * alone / peak))
            os.remove(osp.join(folder, f'{backend}.mp4'))
    out_h, out_w = height * model.scale, width * model.scale
    print(f'{model.origin}: {width}x{height} -> {out_w}x{out_h}, {len(frames)} frames of a {CLIP_FPS} fps clip; '
          f'{args.codec} crf {args.crf} preset {args.preset or "default"}; decoding alone {decode_ms:.1f} ms/frame')
    print(f'fp32 GEMM peak in this run: {peak / 1e9:.0f} GFLOP/s; model {macs / 1e9:.2f} GMAC per frame')
    print(f"{'backend':<12} {'inference fps':>13} {'end-to-end fps':>14} {'ratio':>6} {'real time':>9} "
          f"{'of GEMM peak':>12}")
    for backend, alone, end_to_end, fraction in rows:
        print(f'{backend:<12} {alone:13.2f} {end_to_end:14.2f} {end_to_end / alone:6.2f} '
              f'{end_to_end / CLIP_FPS:9.3f} {fraction:12.2f}')


if __name__ == '__main__':
    main()
