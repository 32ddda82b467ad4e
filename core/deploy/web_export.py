"""A static web page that runs the model in the browser: the ONNX file (weights inline), the page, and
onnxruntime-web's files copied from npm (web/node_modules), so the page works offline once served.

The page's source is web/src; the runtime comes from web/package.json's lockfile (`npm ci --prefix web`).
"""

from __future__ import annotations

import json
import os
import shutil
from os import path as osp

from core.errors import UserError

WEB_ROOT = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'web')
PAGE_FILES = ('index.html', 'app.js', 'style.css')
MODEL_FILE, MODEL_INFO = 'model.onnx', 'model.json'
# onnxruntime-web's WASM build (one 14 MB file), and its WebGPU build (which needs the asyncify WASM).
RUNTIME_FILES = ('ort.wasm.min.js', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm',
                 'ort.webgpu.min.js', 'ort-wasm-simd-threaded.asyncify.mjs', 'ort-wasm-simd-threaded.asyncify.wasm')


def _missing_runtime_files() -> list[str]:
    dist = osp.join(WEB_ROOT, 'node_modules', 'onnxruntime-web', 'dist')
    return [name for name in RUNTIME_FILES if not osp.isfile(osp.join(dist, name))]


def runtime_installed() -> bool:
    """Whether `npm ci --prefix web` has put onnxruntime-web where the site writer copies it from."""
    return not _missing_runtime_files()


def _runtime_folder() -> tuple[str, str]:
    """onnxruntime-web's dist folder and version, or a one-line error naming the install."""
    missing = _missing_runtime_files()
    if missing:
        raise UserError(f'onnxruntime-web is not installed in {WEB_ROOT} (missing {missing[0]}); run: '
                        'npm ci --prefix web')
    package = osp.join(WEB_ROOT, 'node_modules', 'onnxruntime-web')
    with open(osp.join(package, 'package.json'), encoding='utf-8') as handle:
        return osp.join(package, 'dist'), json.load(handle)['version']


def check_site_folder(output: str) -> None:
    """A site is a whole folder we replace: refuse one that exists and holds anything but an earlier site."""
    if osp.isfile(output):
        raise UserError(f'--output {output} is a file; --format web writes a folder (e.g. site/)')
    if osp.isdir(output) and os.listdir(output) and not osp.isfile(osp.join(output, MODEL_INFO)):
        raise UserError(f'--output {output} already holds files that are not a site this toolkit wrote; choose an '
                        'empty or new folder')


def write_site(folder: str, model_info: dict) -> str:
    """Fill `folder` (which already holds model.onnx) with the page, its runtime and model.json; returns the
    onnxruntime-web version the page uses."""
    for name in PAGE_FILES:
        source = osp.join(WEB_ROOT, 'src', name)
        if not osp.isfile(source):
            raise UserError(f'the page source {source} is missing; reinstall the toolkit from its repository '
                            '(pip install -e .)')
        shutil.copyfile(source, osp.join(folder, name))
    dist, version = _runtime_folder()
    for name in RUNTIME_FILES:
        shutil.copyfile(osp.join(dist, name), osp.join(folder, name))
    with open(osp.join(folder, MODEL_INFO), 'w', encoding='utf-8') as handle:
        json.dump({**model_info, 'model': MODEL_FILE, 'onnxruntime_web': version}, handle, indent=1)
    return version
