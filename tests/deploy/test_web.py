"""The web page: export writes a whole site or nothing, the server sends the isolation headers, and the page,
driven in headless Chromium, computes what onnxruntime computes in Python."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import REPO, assert_one_line_error, deployable, run_repo_script, smooth_image
from core.data.colour import network_input
from core.deploy.export import export_model
from core.deploy.images import picture_to_array, read_picture
from core.deploy.runtimes import OnnxRuntime
from core.deploy.upscaling import compare_strip, upscale_picture
from core.deploy.web_export import MODEL_FILE, PAGE_FILES, RUNTIME_FILES, WEB_ROOT
from core.errors import UserError
from core.io.static_server import ISOLATION_HEADERS, make_server

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
needs_runtime = pytest.mark.skipif(not (Path(WEB_ROOT) / 'node_modules' / 'onnxruntime-web').is_dir(),
                                   reason='onnxruntime-web is not installed: npm ci --prefix web')

needs_browser = pytest.mark.skipif(
    not (Path(CHROMIUM).is_file() and shutil.which('node')
         and (Path(WEB_ROOT) / 'node_modules' / 'playwright-core').is_dir()),
    reason='needs Debian chromium, node and playwright-core (apt-get install chromium; npm ci --prefix web)')


@pytest.fixture
def serve():
    servers = []

    def start(folder: Path) -> str:
        server = make_server(str(folder), port=0, quiet=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f'http://127.0.0.1:{server.server_address[1]}/'

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@needs_runtime
def test_a_site_is_the_page_its_runtime_and_the_checked_model(tmp_path):
    report = export_model(deployable('ETDSForInference'), 'web', str(tmp_path / 'site'))
    assert report.max_abs_diff <= 1e-5 and 'onnxruntime-web 1.30.0' in report.note
    names = sorted(p.name for p in (tmp_path / 'site').iterdir())
    assert names == sorted([*PAGE_FILES, *RUNTIME_FILES, MODEL_FILE, 'model.json'])
    assert not list(tmp_path.glob('.*'))  # no staging folder left
    info = json.loads((tmp_path / 'site' / 'model.json').read_text())
    assert (info['scale'], info['num_in_ch'], info['radius']) == (4, 3, 6)
    assert OnnxRuntime(str(tmp_path / 'site' / MODEL_FILE)).scale == 4  # weights inline: the file runs alone


@needs_runtime
def test_a_site_never_replaces_a_foreign_folder(tmp_path):
    (tmp_path / 'photos').mkdir()
    (tmp_path / 'photos' / 'holiday.jpg').write_bytes(b'keep me')
    with pytest.raises(UserError, match='not a site this toolkit wrote'):
        export_model(deployable('Plain'), 'web', str(tmp_path / 'photos'))
    assert [p.name for p in (tmp_path / 'photos').iterdir()] == ['holiday.jpg']
    export_model(deployable('Plain'), 'web', str(tmp_path / 'site'))
    report = export_model(deployable('ESPCN'), 'web', f'{tmp_path}/site/')  # an earlier site is replaced whole
    assert report.output == str(tmp_path / 'site')
    assert json.loads((tmp_path / 'site' / 'model.json').read_text())['arch'] == 'ESPCN'


def test_the_server_sends_what_threaded_wasm_needs(tmp_path, serve):
    (tmp_path / 'x.wasm').write_bytes(b'\0asm')
    with urllib.request.urlopen(serve(tmp_path) + 'x.wasm') as response:
        assert response.headers['Content-Type'] == 'application/wasm'
        for name, value in ISOLATION_HEADERS.items():
            assert response.headers[name] == value


@pytest.mark.slow
def test_serving_a_folder_that_is_not_a_site_fails_in_one_line(tmp_path):
    assert_one_line_error(run_repo_script('scripts/serve_web.py', str(tmp_path)), 'is not a site')


def _run_page(url: str, image: Path, folder: Path, webgpu: bool = False) -> dict:
    """Drive the page in headless Chromium; what it computed, as web/test/check_page.mjs reads it back."""
    env = {'CHROMIUM': CHROMIUM, 'PATH': '/usr/bin:/bin', **({'WEBGPU': '1'} if webgpu else {})}
    done = subprocess.run(['node', str(REPO / 'web' / 'test' / 'check_page.mjs'), url, str(image),
                           str(folder / 'result.json'), str(folder / 'page.png')], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    page = json.loads((folder / 'result.json').read_text())
    assert page['state'] == 'done', page['status']
    return page


@needs_browser
@pytest.mark.slow
def test_the_page_on_webgpu_equals_onnxruntime_in_python(tmp_path, serve):
    """SwiftShader's WebGPU here: slow, but the WebGPU build and its WASM load and compute the same function."""
    model = deployable('ETDSForInference')
    export_model(model, 'web', str(tmp_path / 'site'))
    bgr = smooth_image(14, 18, 6)
    cv2.imwrite(str(tmp_path / 'photo.png'), bgr)
    page = _run_page(serve(tmp_path / 'site') + '?debug=1', tmp_path / 'photo.png', tmp_path, webgpu=True)
    assert page['backend'] == 'webgpu' and 'on WebGPU' in page['runtime']
    x = np.ascontiguousarray(network_input(bgr.astype(np.float32) / 255, 3).transpose(2, 0, 1)[None])
    expected = OnnxRuntime(str(tmp_path / 'site' / MODEL_FILE))(x)
    assert np.abs(np.asarray(page['output'], np.float32).reshape(expected.shape) - expected).max() <= 1e-5


@needs_browser
@pytest.mark.parametrize('arch', ['ETDSForInference', 'EdgeSR'])  # RGB, and a Y model
def test_the_page_in_chromium_equals_onnxruntime_in_python(tmp_path, serve, arch):
    model = deployable(arch)
    export_model(model, 'web', str(tmp_path / 'site'))
    bgr = smooth_image(37, 45, 5)  # odd sides: the bicubic borders and the tiles' edges both show
    cv2.imwrite(str(tmp_path / 'photo.png'), bgr)
    url = serve(tmp_path / 'site') + '?ep=wasm&tile=16&debug=1'  # tiles of 16 LR px: 9 of them
    page = _run_page(url, tmp_path / 'photo.png', tmp_path)
    assert page['isolated'] is True and page['threads'] == min(os.cpu_count(), 8)  # COOP/COEP: every core
    assert page['backend'] == 'wasm' and 'on WASM' in page['runtime']
    assert page['tiles'] == 9 and page['download'] == f'photo_x{model.scale}.png'
    assert not [m for m in page['console'] if m.startswith(('error', 'pageerror'))], page['console']
    x = np.ascontiguousarray(network_input(bgr.astype(np.float32) / 255, model.num_in_ch).transpose(2, 0, 1)[None])
    expected = OnnxRuntime(str(tmp_path / 'site' / MODEL_FILE))(x)
    output = np.asarray(page['output'], np.float32).reshape(expected.shape)
    assert np.abs(np.asarray(page['input'], np.float32) - x.ravel()).max() <= 1e-6
    assert np.abs(output - expected).max() <= 1e-5
    # The PNG it offers and its bicubic side are what scripts/upscale.py writes (a Y model's colour included),
    # up to a grey level where float32 and float64 round apart.
    picture = read_picture(str(tmp_path / 'photo.png'))
    runtime = OnnxRuntime(str(tmp_path / 'site' / MODEL_FILE))
    python = {'pixels': picture_to_array(upscale_picture(picture, runtime, None, runtime.radius)),
              'bicubic': compare_strip(picture, upscale_picture(picture, runtime, None, runtime.radius),
                                       model.scale)[:, :bgr.shape[1] * model.scale]}
    for key, ours in python.items():
        rgba = np.asarray(page[key], np.uint8).reshape(*ours.shape[:2], 4)
        theirs = rgba[..., 2::-1].astype(int)
        if key == 'bicubic':  # the strip labels its panel: compare below the label
            theirs, ours = theirs[24:], ours[24:]
        difference = np.abs(theirs - ours.astype(int))
        assert difference.max() <= 1 and (difference > 0).mean() < 1e-3, (key, difference.max())
    assert cv2.imread(str(tmp_path / 'page.png')).shape[0] > 300  # the screenshot
