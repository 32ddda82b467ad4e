// The page scripts/export.py --format web writes: upscale a dropped or chosen image with onnxruntime-web, in tiles
// padded by the network's receptive-field radius (as scripts/upscale.py does), so tiles stitch exactly as one run.
// URL parameters (for tests and curious users): ep=wasm|webgpu, threads=N, tile=N (LR pixels), debug=1 (keep the
// float output on window.srResult).
'use strict';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const setState = (state, message) => {
  document.body.dataset.state = state;
  if (message !== undefined) $('status').textContent = message;
};

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`cannot load ${src}; serve this folder with scripts/serve_web.py`));
    document.head.appendChild(script);
  });
}

// WebGPU when the browser has an adapter, WASM otherwise (or as ?ep= says).
async function chooseBackend() {
  if (params.get('ep')) return params.get('ep');
  if (navigator.gpu) {
    try {
      if (await navigator.gpu.requestAdapter()) return 'webgpu';
    } catch (err) { /* no adapter: fall through */ }
  }
  return 'wasm';
}

// Tiles as core/deploy/tiling.py plans them: [start, end) kept, [cropStart, cropEnd) computed.
function spans(length, tile, pad) {
  const out = [];
  for (let start = 0; start < length; start += tile) {
    const end = Math.min(start + tile, length);
    out.push([start, end, Math.max(0, start - pad), Math.min(length, end + pad)]);
  }
  return out;
}

// numpy's rint on a float32 product: ties to even, so pixels equal what Python writes.
function toLevel(value) {
  const v = Math.fround(Math.min(Math.max(value, 0), 1) * 255);
  const floor = Math.floor(v);
  const frac = v - floor;
  if (frac > 0.5) return floor + 1;
  if (frac < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

const app = { session: null, info: null, backend: null, threads: 1 };

async function start() {
  const response = await fetch('model.json');
  if (!response.ok) throw new Error('model.json is missing; export the site again with scripts/export.py --format web');
  app.info = await response.json();
  app.backend = await chooseBackend();
  await loadScript(app.backend === 'webgpu' ? 'ort.webgpu.min.js' : 'ort.wasm.min.js');
  // Threads need a cross-origin-isolated page (COOP/COEP headers, which serve_web.py sends); one thread otherwise.
  const cores = navigator.hardwareConcurrency || 1;
  app.threads = Number(params.get('threads')) || (crossOriginIsolated ? Math.min(cores, 8) : 1);
  ort.env.wasm.numThreads = app.threads;
  ort.env.wasm.wasmPaths = new URL('./', location.href).href;
  app.session = await ort.InferenceSession.create(app.info.model, {
    executionProviders: [app.backend], graphOptimizationLevel: 'all',
  });
  const info = app.info;
  $('model').textContent = `${info.arch} x${info.scale}, ` +
    `${info.num_in_ch === 1 ? 'luminance (Y) model' : 'RGB model'}, receptive-field radius ${info.radius} px`;
  $('model').title = info.origin;  // how the network was obtained
  $('runtime').textContent = `onnxruntime-web ${info.onnxruntime_web} on ` +
    (app.backend === 'webgpu' ? 'WebGPU' : `WASM, ${app.threads} thread${app.threads > 1 ? 's' : ''}` +
      (crossOriginIsolated ? '' : ' (serve with scripts/serve_web.py for more)'));
  setState('ready', 'Ready.');
}

// The LR image as network input planes in [0, 1]: RGB, or basicsr's Y (BT.601, 16–235) for 1-channel models.
function inputPlanes(rgba, width, height, channels) {
  const count = width * height;
  const planes = new Float32Array(channels * count);
  for (let i = 0; i < count; i++) {
    const r = rgba[4 * i] / 255, g = rgba[4 * i + 1] / 255, b = rgba[4 * i + 2] / 255;
    if (channels === 1) {
      planes[i] = (65.481 * r + 128.553 * g + 24.966 * b + 16) / 255;
    } else {
      planes[i] = Math.fround(rgba[4 * i] / 255);
      planes[count + i] = Math.fround(rgba[4 * i + 1] / 255);
      planes[2 * count + i] = Math.fround(rgba[4 * i + 2] / 255);
    }
  }
  return planes;
}

async function upscale(file) {
  const info = app.info, scale = info.scale, channels = info.num_in_ch;
  const bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const width = bitmap.width, height = bitmap.height;
  const source = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
  source.drawImage(bitmap, 0, 0);
  const rgba = source.getImageData(0, 0, width, height).data;
  const planes = inputPlanes(rgba, width, height, channels);

  const outW = width * scale, outH = height * scale;
  const before = $('before'), after = $('after');
  before.width = after.width = outW;
  before.height = after.height = outH;
  // Small results are shown enlarged (pixelated), large ones fit the page; the slider spans the picture.
  const shown = Math.min(Math.max(outW, 640), document.querySelector('main').clientWidth);
  $('result').style.width = `${shown}px`;
  before.style.width = after.style.width = `${shown}px`;
  const smooth = before.getContext('2d', { willReadFrequently: true });
  smooth.imageSmoothingEnabled = true;
  smooth.imageSmoothingQuality = 'high';
  smooth.drawImage(bitmap, 0, 0, outW, outH);
  const bicubic = smooth.getImageData(0, 0, outW, outH).data;
  const picture = new ImageData(outW, outH);
  const keep = params.get('debug') ? new Float32Array(channels * outW * outH) : null;

  const tile = Number(params.get('tile')) || 256;
  const pad = info.radius;
  const rows = spans(height, tile, pad), cols = spans(width, tile, pad);
  const total = rows.length * cols.length;
  const progress = $('progress');
  progress.hidden = false;
  progress.max = total;
  const inputName = app.session.inputNames[0];
  const started = performance.now();
  let done = 0;
  for (const [y0, y1, cy0, cy1] of rows) {
    for (const [x0, x1, cx0, cx1] of cols) {
      const h = cy1 - cy0, w = cx1 - cx0;
      const crop = new Float32Array(channels * h * w);
      for (let c = 0; c < channels; c++) {
        for (let y = 0; y < h; y++) {
          const from = c * width * height + (cy0 + y) * width + cx0;
          crop.set(planes.subarray(from, from + w), (c * h + y) * w);
        }
      }
      const feeds = { [inputName]: new ort.Tensor('float32', crop, [1, channels, h, w]) };
      const result = await app.session.run(feeds);
      const out = result[app.session.outputNames[0]];
      const data = out.data, tw = w * scale, th = h * scale;
      for (let y = (y0 - cy0) * scale; y < (y1 - cy0) * scale; y++) {
        for (let x = (x0 - cx0) * scale; x < (x1 - cx0) * scale; x++) {
          const oy = cy0 * scale + y, ox = cx0 * scale + x, o = oy * outW + ox, t = y * tw + x;
          if (keep) for (let c = 0; c < channels; c++) keep[c * outW * outH + o] = data[c * th * tw + t];
          writePixel(picture.data, bicubic, o, data, t, th * tw, channels);
        }
      }
      if (out.dispose) out.dispose();
      progress.value = ++done;
      setState('running', `Tile ${done} of ${total}…`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  after.getContext('2d').putImageData(picture, 0, 0);
  progress.hidden = true;
  $('result').hidden = false;
  const stem = (file.name || 'image').replace(/\.[^.]+$/, '');
  after.toBlob((blob) => {
    const link = $('download');
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(blob);
    link.download = `${stem}_x${scale}.png`;
  }, 'image/png');
  window.srResult = { width: outW, height: outH, channels, tiles: total, seconds, backend: app.backend,
                      threads: app.threads, output: keep, input: params.get('debug') ? planes : null };
  setState('done', `${width}×${height} → ${outW}×${outH} in ${seconds.toFixed(2)} s (${total} tile` +
    `${total > 1 ? 's' : ''}). Drag the slider to compare.`);
}

// One output pixel: the network's RGB, or its Y with the chroma of the smooth upscale (as test.py does with
// bicubic CbCr); alpha from the smooth upscale.
function writePixel(target, bicubic, o, data, t, plane, channels) {
  const p = 4 * o;
  if (channels === 3) {
    target[p] = toLevel(data[t]);
    target[p + 1] = toLevel(data[plane + t]);
    target[p + 2] = toLevel(data[2 * plane + t]);
  } else {
    const r = bicubic[p], g = bicubic[p + 1], b = bicubic[p + 2];
    const cb = (-37.797 * r - 74.203 * g + 112.0 * b) / 255 + 128;
    const cr = (112.0 * r - 93.786 * g - 18.214 * b) / 255 + 128;
    const y = data[t] * 255;
    target[p] = toLevel(((y * 0.00456621 + cr * 0.00625893) * 255 - 222.921) / 255);
    target[p + 1] = toLevel(((y * 0.00456621 - cb * 0.00153632 - cr * 0.00318811) * 255 + 135.576) / 255);
    target[p + 2] = toLevel(((y * 0.00456621 + cb * 0.00791071) * 255 - 276.836) / 255);
  }
  target[p + 3] = bicubic[p + 3];
}

function wire() {
  const drop = $('drop');
  const run = (file) => {
    if (!file || !app.session || document.body.dataset.state === 'running') return;
    setState('running', 'Upscaling…');
    upscale(file).catch((err) => setState('error', `Could not upscale ${file.name}: ${err.message}`));
  };
  $('file').addEventListener('change', (event) => run(event.target.files[0]));
  drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    run(event.dataTransfer.files[0]);
  });
  $('slider').addEventListener('input', (event) => {
    $('after').style.clipPath = `inset(0 0 0 ${event.target.value}%)`;
  });
}

wire();
start().catch((err) => setState('error', `Could not start: ${err.message}`));
