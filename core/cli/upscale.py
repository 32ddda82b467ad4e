"""Upscale your own images and videos with any model the toolkit knows, in PyTorch or through an exported file.

python scripts/upscale.py --model ETDS_M4C32_x4_plain.pth --input photos/ --output upscaled/
python scripts/upscale.py --model etds_x4_int8.tflite --input photo.png --output upscaled/ --compare
python scripts/upscale.py --model ETDS_M4C32_x4_plain.pth --input clip.mp4 --output upscaled/ --backend onnxruntime

--model: a checkpoint (converted, official raw, or a training form, converted and verified on the fly), or an
exported file: .onnx, .tflite, ncnn .param (with its .bin), ExecuTorch .pte or OpenVINO .xml. Large images:
--tile 256 keeps the network's memory bounded; the default --tile-pad is the model's receptive-field radius, so
tiles stitch exactly as whole-image inference. The output is assembled tile by tile in its own 8 or 16 bits; an
image whose output does not fit in memory is assembled in a memory-mapped file beside it, and one that cannot
fit at all is refused before any work. Gray, RGB, RGBA (alpha upscaled bicubically), palette and 16-bit images
keep their kind, CMYK JPEGs become RGB, phone photos are turned upright by their EXIF orientation, and the EXIF
and colour profile are kept; 1-channel models run on Y with the bicubic CbCr.

Video (.mp4, .mkv, .mov, .webm, ...): every frame is upscaled as an image is, encoded with --codec (H.264 by
default; libx264 and libx265 are GPL, shipped in PyAV's wheel) at the input's timestamps, and the audio and
subtitle streams are copied untouched into <input stem><suffix><input extension>. Decoding, inference and
encoding overlap.
"""

from __future__ import annotations

import argparse
import sys
from os import path as osp

from core.cli.arguments import image_size
from core.errors import run_cli
from core.io.formats import FILE_BACKENDS, file_backend
from core.io.pixel_limit import DEFAULT_MAX_MEGAPIXELS
from core.io.video import is_video

LIMIT_HINT = 'pass --max-megapixels to raise the limit if you trust the file'
BACKENDS = ('torch', 'onnxruntime', 'tflite', 'ncnn', 'ncnn-vulkan', 'executorch', 'openvino')


def _backends_for(ext: str) -> tuple[str, ...]:
    """The --backend values a model file accepts: its runtime (an ncnn file also on the Vulkan device)."""
    backend = FILE_BACKENDS[ext]
    return (backend, 'ncnn-vulkan') if backend == 'ncnn' else (backend,)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='scripts/upscale.py', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', required=True,
                        help='checkpoint (.pth), or an exported .onnx, .tflite, .param (ncnn), .pte or .xml file')
    parser.add_argument('--input', required=True, help='an image file, a folder of images, or a video file')
    parser.add_argument('--output', required=True,
                        help='folder for <input stem><suffix>.png (a video keeps its extension)')
    parser.add_argument('--suffix', default='', help='appended to each output stem (default: none)')
    parser.add_argument('-opt', default=None, help='YAML whose network_g describes a checkpoint without meta')
    parser.add_argument('--arch', default=None, metavar='TYPE',
                        help='read a raw state_dict as this network (for weights that fit more than one, e.g. '
                             'Plain or ETDSOnlyET)')
    parser.add_argument('--backend', choices=BACKENDS, default=None,
                        help='torch, or run a .pth through a temporary export to see what a phone or app shows; '
                             'ncnn-vulkan runs ncnn on the Vulkan device with fp16 storage, as the ncnn apps do '
                             '(default: what --model is)')
    parser.add_argument('--tile', type=int, default=None, help='tile size in LR pixels (default: whole image)')
    parser.add_argument('--tile-pad', type=int, default=None,
                        help="LR pixels of context around each tile (default: the model's receptive-field radius)")
    parser.add_argument('--size', type=image_size(), default='360x640',
                        help='input size of a temporary TFLite or ExecuTorch export (--backend)')
    parser.add_argument('--compare', action='store_true',
                        help='also write <stem>_compare.png: bicubic | model | ground truth (with --gt)')
    parser.add_argument('--gt', default=None,
                        help='ground truth for --compare: a folder of images named like the inputs, an HR folder '
                             '(zebrax4.png pairs with zebra.png), or a benchmark folder (HR/ or GTmod12/)')
    parser.add_argument('--max-megapixels', type=float, default=DEFAULT_MAX_MEGAPIXELS,
                        help='refuse an image or video frame that declares more pixels than this before decoding '
                             f'it (default {DEFAULT_MAX_MEGAPIXELS:g}; a guard against decompression bombs)')
    parser.add_argument('--no-memory-check', action='store_true',
                        help='skip the memory estimate: keep the output in memory and run as asked, even if it '
                             'looks too big')
    video = parser.add_argument_group('video')
    video.add_argument('--codec', default='libx264',
                       help='video encoder (default libx264; libx265, libsvtav1, libvpx-vp9, ffv1 for lossless)')
    video.add_argument('--crf', type=int, default=18,
                       help='constant rate factor of the x264/x265/AV1/VP9 encoders, lower is better '
                            '(default 18, visually lossless for H.264)')
    video.add_argument('--preset', default=None, help="encoder speed preset, e.g. x264's veryfast or slow "
                                                     "(default: the encoder's own)")
    video.add_argument('--pix-fmt', default=None,
                       help='encoder pixel format (default yuv420p, what every player plays; yuv420p10le for 10-bit '
                            'inputs)')
    args = parser.parse_args(argv)
    if is_video(args.input) and args.compare:
        parser.error('--compare is for images; for a video, compare frames in a player')
    ext = osp.splitext(args.model)[1].lower()
    if ext in FILE_BACKENDS and args.backend not in (None, *_backends_for(ext)):
        parser.error(f'--model {osp.basename(args.model)} runs on {" or ".join(_backends_for(ext))}, '
                     f'not --backend {args.backend}')
    if args.tile is not None and args.tile < 1:
        parser.error('--tile must be a positive number of LR pixels')
    if args.tile_pad is not None and args.tile_pad < 0:
        parser.error('--tile-pad must be 0 or more')
    if args.max_megapixels <= 0:
        parser.error('--max-megapixels must be a positive number of megapixels')
    return args


def _runtime(args: argparse.Namespace, workdir: str):
    """The runtime to drive, and a line saying what runs."""
    from core.deploy.backend_runtime import backend_runtime
    from core.deploy.model import load_deploy_model
    from core.deploy.runtimes import open_runtime

    if file_backend(args.model) != 'torch':
        runtime = open_runtime(args.model, vulkan=args.backend == 'ncnn-vulkan')
        return runtime, f'{args.model} on {runtime.name}'
    model = load_deploy_model(args.model, args.opt, arch=args.arch)
    runtime, report = backend_runtime(model, args.backend or 'torch', workdir, args.size)
    if report is None:
        return runtime, model.origin
    return runtime, (f'{model.origin}; exported to {report.format} (max abs difference {report.max_abs_diff:.2g}), '
                     f'run on {runtime.name}')


def _output_path(args: argparse.Namespace, image: str, tag: str = '') -> str:
    return osp.join(args.output, f'{osp.splitext(osp.basename(image))[0]}{args.suffix}{tag}.png')


def _tiling(args: argparse.Namespace, runtime) -> tuple[tuple[int, int] | None, int]:
    """The tile (None: whole image) and its pad for this runtime, as --tile, --tile-pad and the file allow."""
    from core.deploy.tiling import bounded_tile, check_tile, fixed_size_tile
    from core.errors import UserError

    if args.tile_pad is None and runtime.radius is None:
        raise UserError(f'{args.model} does not record its receptive-field radius; pass --tile-pad')
    pad = runtime.radius if args.tile_pad is None else args.tile_pad
    tile = None if args.tile is None else (args.tile, args.tile)
    if tile is not None:
        check_tile(args.tile, pad)
    if runtime.fixed_size is not None:
        tile = tile or fixed_size_tile(runtime.fixed_size, pad)
    return bounded_tile(tile, pad, runtime.max_size), pad  # an ExecuTorch program's largest input


def _refuse_overwrite(output: str, source: str) -> None:
    from core.errors import UserError

    if osp.exists(output) and osp.samefile(output, source):
        raise UserError(f'{output} would overwrite its input; choose another --output folder or a --suffix')


def upscale_video_file(args: argparse.Namespace) -> int:
    import tempfile

    from tqdm import tqdm

    import core.plugin  # noqa: F401  (registers the archs and converters)
    from core.deploy.video_upscaling import VideoSettings, upscale_video
    from core.io.video import VideoSource

    stem, ext = osp.splitext(osp.basename(args.input))
    output = osp.join(args.output, f'{stem}{args.suffix}{ext}')
    _refuse_overwrite(output, args.input)
    source = VideoSource(args.input, args.max_megapixels, LIMIT_HINT)  # a bad file fails before the model loads
    total, size, rate = source.frame_estimate, (source.width, source.height), source.rate
    source.close()
    with tempfile.TemporaryDirectory() as workdir:
        runtime, origin = _runtime(args, workdir)
        tile, pad = _tiling(args, runtime)
        print(f'model: {origin}; x{runtime.scale}, {runtime.num_in_ch} input channel(s), tile pad {pad}')
        print(f'video: {args.input}, {size[0]}×{size[1]} at {float(rate or 0):.3g} fps → '
              f'{size[0] * runtime.scale}×{size[1] * runtime.scale}, {args.codec}')
        settings = VideoSettings(args.codec, args.crf, args.preset, args.pix_fmt, tile, pad, args.max_megapixels)
        with tqdm(total=total, desc=osp.basename(args.input), unit='frame') as bar:
            result = upscale_video(args.input, output, runtime, settings, on_frame=bar.update)
    print(f'wrote {output}: {result.frames} frames, {result.copied_packets} audio/subtitle packets copied, '
          f'{result.fps:.2f} fps end to end')
    return 0


def upscale_image_file(args: argparse.Namespace, image: str, runtime, tile: tuple[int, int] | None,
                       pad: int) -> None:
    from tqdm import tqdm

    from core.deploy.image_upscaling import ImageSettings, plan_image, run_image
    from core.deploy.memory_plan import gigabytes

    settings = ImageSettings(tile, pad, args.max_megapixels, LIMIT_HINT, not args.no_memory_check)
    compare = _output_path(args, image, '_compare') if args.compare else None
    job = plan_image(image, _output_path(args, image), runtime, settings, compare, args.gt)
    if job.plan.note:
        print(job.plan.note)
    with tqdm(total=job.tiles, desc=osp.basename(image), unit='tile', leave=False, disable=job.tiles < 4) as bar:
        dropped = run_image(job, runtime, pad, on_tile=bar.update)
    if dropped:
        print(f'note: {job.output} was written without the {" and ".join(dropped)} of {image}, which the PNG encoder '
              'rejected', file=sys.stderr)
    if job.plan.on_disk:
        print(f'wrote {job.output} ({gigabytes(job.plan.output_bytes)} of pixels, assembled on disk)')


def upscale(args: argparse.Namespace) -> int:
    import tempfile

    from tqdm import tqdm

    import core.plugin  # noqa: F401  (registers the archs and converters)
    from core.deploy.images import list_images
    from core.errors import UserError

    if is_video(args.input) and osp.isfile(args.input):
        return upscale_video_file(args)
    images = list_images(args.input)
    for image in images:
        _refuse_overwrite(_output_path(args, image), image)
    one_file = osp.isfile(args.input)
    with tempfile.TemporaryDirectory() as workdir:
        runtime, origin = _runtime(args, workdir)
        tile, pad = _tiling(args, runtime)
        print(f'model: {origin}; x{runtime.scale}, {runtime.num_in_ch} input channel(s), tile pad {pad}')
        failed = []
        for image in tqdm(images, desc='images', unit='img', disable=one_file):
            try:
                upscale_image_file(args, image, runtime, tile, pad)
            except UserError as err:
                if one_file:
                    raise  # one file asked for: its one-line error, exit 2
                failed.append(str(err))
    written = len(images) - len(failed)
    print(f'wrote {written} image(s) to {args.output}')
    for reason in failed:
        print(f'skipped: {reason}', file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)  # before torch loads, so --help and argument errors answer at once
    sys.exit(run_cli(lambda: upscale(args)))
