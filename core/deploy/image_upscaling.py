"""Upscale one image file into another in bounded memory: read and checked, planned, run tile by tile into the
output's own dtype (in memory or memory-mapped), and written whole with its EXIF and colour profile."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

from core.data.layouts import ground_truth_for
from core.deploy.images import SourcePixels, read_source
from core.deploy.memory_plan import MemoryPlan, available_memory, free_disk, output_buffer, plan_upscale
from core.deploy.runtimes import Runtime
from core.deploy.upscaling import compare_shape, effective_tile, output_shape, tiles_per_image, upscale_into
from core.io.image_file import write_image
from core.io.pixel_limit import DEFAULT_MAX_MEGAPIXELS


@dataclass(frozen=True)
class ImageSettings:
    tile: tuple[int, int] | None
    pad: int
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS
    limit_hint: str = 'shrink it first'  # the fix a pixel-limit refusal names
    memory_check: bool = True


@dataclass
class ImageJob:
    """One image, read and planned, before any inference: what runs, and what the user is told."""

    output: str
    compare_output: str | None
    source: SourcePixels
    gt: SourcePixels | None
    plan: MemoryPlan
    tiles: int


def plan_image(image: str, output: str, runtime: Runtime, settings: ImageSettings, compare_output: str | None = None,
               gt_folder: str | None = None) -> ImageJob:
    """Read and check the image (and its ground truth), and plan its memory; a refusal is one UserError."""
    source = read_source(image, settings.max_megapixels, settings.limit_hint)
    scale = runtime.scale
    gt = None
    if compare_output is not None and gt_folder is not None:
        gt = read_source(ground_truth_for(image, gt_folder, scale), settings.max_megapixels, settings.limit_hint)
    output_bytes = math.prod(output_shape(source, scale)) * source.pixels.itemsize
    if compare_output is not None:
        output_bytes += math.prod(compare_shape(source.size, scale, gt is not None))
    if settings.memory_check:
        input_bytes = source.pixels.nbytes + (gt.pixels.nbytes if gt is not None else 0)
        plan = plan_upscale(image, source.size, scale, input_bytes, output_bytes, settings.tile, settings.pad,
                            runtime.fixed_size, available_memory(), free_disk(output))
    else:
        plan = MemoryPlan(settings.tile, False, 0, output_bytes, None)
    tiles = tiles_per_image(*source.size, effective_tile(source.size, runtime, plan.tile, settings.pad))
    return ImageJob(output, compare_output, source, gt, plan, tiles)


def run_image(job: ImageJob, runtime: Runtime, pad: int, on_tile: Callable[[], None] | None = None) -> list[str]:
    """Upscale as planned and write the output (and comparison strip); each file appears whole or not at all.
    Returns the metadata blocks the output's format refused (see write_image)."""
    source, scale = job.source, runtime.scale
    beside = job.output if job.plan.on_disk else None
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(output_buffer(output_shape(source, scale), source.pixels.dtype, beside))
        compare = None
        if job.compare_output is not None:
            strip = compare_shape(source.size, scale, job.gt is not None)
            compare = stack.enter_context(output_buffer(strip, 'uint8', beside))
        upscale_into(source, runtime, job.plan.tile, pad, out, compare, job.gt, on_tile=on_tile)
        dropped = write_image(out, job.output, source.metadata)
        if compare is not None:
            write_image(compare, job.compare_output)
    return dropped
