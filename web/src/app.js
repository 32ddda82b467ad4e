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
  app.session = await ort.InferenceSession.create(app.info.model, {  // WASM takes what WebGPU cannot run
    executionProviders: app.backend === 'webgpu' ? ['webgpu', 'wasm'] : ['wasm'], graphOptimizationLevel: 'all',
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

// basicsr's bgr2ycbcr (MATLAB's BT.601, 16–235) on [0, 1] values: Y, Cb, Cr in [0, 1].
function ycbcr(r, g, b) {
  return [(65.481 * r + 128.553 * g + 24.966 * b + 16) / 255,
          (-37.797 * r - 74.203 * g + 112.0 * b + 128) / 255,
          (112.0 * r - 93.786 * g - 18.214 * b + 128) / 255];
}

// The LR image as planes in [0, 1]: R, G, B, then alpha. The network reads RGB, or Y for 1-channel models.
function lrPlanes(rgba, count) {
  const planes = [0, 1, 2, 3].map(() => new Float32Array(count));
  for (let i = 0; i < count; i++) {
    for (let c = 0; c < 4; c++) planes[c][i] = rgba[4 * i + c] / 255;
  }
  return planes;
}

function networkInput(planes, count, channels) {
  if (channels === 3) {
    const input = new Float32Array(3 * count);
    for (let c = 0; c < 3; c++) input.set(planes[c], c * count);
    return input;
  }
  const y = new Float32Array(count);
  for (let i = 0; i < count; i++) y[i] = ycbcr(planes[0][i], planes[1][i], planes[2][i])[0];
  return y;
}

// MATLAB's bicubic upscale (basicsr's imresize: Keys' cubic with a = -0.5, symmetric borders, weights summing
// to 1), so the "bicubic" side and a Y model's colour are what scripts/upscale.py computes.
function cubic(x) {
  const a = Math.abs(x);
  if (a <= 1) return 1.5 * a ** 3 - 2.5 * a ** 2 + 1;
  if (a <= 2) return -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2;
  return 0;
}

function bicubicTaps(length, scale) {
  const out = length * scale, index = new Int32Array(4 * out), weight = new Float64Array(4 * out);
  for (let i = 0; i < out; i++) {
    const u = (i + 0.5) / scale - 0.5, left = Math.floor(u) - 1;
    let sum = 0;
    for (let k = 0; k < 4; k++) {
      let j = left + k;
      weight[4 * i + k] = cubic(u - j);
      sum += weight[4 * i + k];
      if (j < 0) j = -j - 1;  // symmetric: the edge pixel repeats
      if (j >= length) j = 2 * length - 1 - j;
      index[4 * i + k] = Math.min(Math.max(j, 0), length - 1);
    }
    for (let k = 0; k < 4; k++) weight[4 * i + k] /= sum;
  }
  return { index, weight };
}

function bicubic(plane, width, height, scale) {
  const rows = bicubicTaps(height, scale), cols = bicubicTaps(width, scale);
  const outW = width * scale, outH = height * scale;
  const tall = new Float64Array(outH * width);  // heights first, as basicsr does
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < width; x++) {
      let v = 0;
      for (let k = 0; k < 4; k++) v += rows.weight[4 * y + k] * plane[rows.index[4 * y + k] * width + x];
      tall[y * width + x] = v;
    }
  }
  const out = new Float32Array(outH * outW);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      let v = 0;
      for (let k = 0; k < 4; k++) v += cols.weight[4 * x + k] * tall[y * width + cols.index[4 * x + k]];
      out[y * outW + x] = v;
    }
  }
  return out;
}

async function upscale(file) {
  const info = app.info, scale = info.scale, channels = info.num_in_ch;
  const bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const width = bitmap.width, height = bitmap.height, count = width * height;
  const source = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
  source.drawImage(bitmap, 0, 0);
  const rgba = source.getImageData(0, 0, width, height).data;
  const planes = lrPlanes(rgba, count);
  const input = networkInput(planes, count, channels);

  const outW = width * scale, outH = height * scale, outCount = outW * outH;
  setState('running', 'Bicubic…');
  await new Promise(requestAnimationFrame);
  const opaque = planes[3].every((a) => a === 1);
  const alpha = opaque ? null : bicubic(planes[3], width, height, scale);
  const smooth = new ImageData(outW, outH);
  const up = [0, 1, 2].map((c) => bicubic(planes[c], width, height, scale));
  for (let i = 0; i < outCount; i++) {
    for (let c = 0; c < 3; c++) smooth.data[4 * i + c] = toLevel(up[c][i]);
    smooth.data[4 * i + 3] = alpha ? toLevel(alpha[i]) : 255;
  }
  let chroma = null;  // a Y model's colour: the LR image's Cb and Cr, bicubic-upscaled (as test.py saves it)
  if (channels === 1) {
    const cb = new Float32Array(count), cr = new Float32Array(count);
    for (let i = 0; i < count; i++) [, cb[i], cr[i]] = ycbcr(planes[0][i], planes[1][i], planes[2][i]);
    chroma = [bicubic(cb, width, height, scale), bicubic(cr, width, height, scale)];
  }

  const before = $('before'), after = $('after');
  before.width = after.width = outW;
  before.height = after.height = outH;
  // Small results are shown enlarged (pixelated), large ones fit the page; the slider spans the picture.
  const shown = Math.min(Math.max(outW, 640), document.querySelector('main').clientWidth);
  $('result').style.width = `${shown}px`;
  before.style.width = after.style.width = `${shown}px`;
  before.getContext('2d').putImageData(smooth, 0, 0);
  const picture = new ImageData(outW, outH);
  const keep = params.get('debug') ? new Float32Array(channels * outCount) : null;

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
          const from = c * count + (cy0 + y) * width + cx0;
          crop.set(input.subarray(from, from + w), (c * h + y) * w);
        }
      }
      const feeds = { [inputName]: new ort.Tensor('float32', crop, [1, channels, h, w]) };
      const result = await app.session.run(feeds);
      const out = result[app.session.outputNames[0]];
      const data = out.data, tw = w * scale, th = h * scale;
      for (let y = (y0 - cy0) * scale; y < (y1 - cy0) * scale; y++) {
        for (let x = (x0 - cx0) * scale; x < (x1 - cx0) * scale; x++) {
          const o = (cy0 * scale + y) * outW + cx0 * scale + x, t = y * tw + x;
          if (keep) for (let c = 0; c < channels; c++) keep[c * outCount + o] = data[c * th * tw + t];
          writePixel(picture.data, o, data, t, th * tw, chroma);
          picture.data[4 * o + 3] = smooth.data[4 * o + 3];
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
                      threads: app.threads, output: keep, input: keep && input,
                      pixels: keep && picture.data, bicubic: keep && smooth.data };
  setState('done', `${width}×${height} → ${outW}×${outH} in ${seconds.toFixed(2)} s (${total} tile` +
    `${total > 1 ? 's' : ''}). Drag the slider to compare.`);
}

// One output pixel (RGB): the network's, or its Y with the bicubic Cb and Cr through basicsr's ycbcr2bgr.
function writePixel(target, o, data, t, plane, chroma) {
  const p = 4 * o;
  if (!chroma) {
    target[p] = toLevel(data[t]);
    target[p + 1] = toLevel(data[plane + t]);
    target[p + 2] = toLevel(data[2 * plane + t]);
    return;
  }
  const y = Math.min(Math.max(data[t], 0), 1) * 255, cb = chroma[0][o] * 255, cr = chroma[1][o] * 255;
  target[p] = toLevel(((y * 0.00456621 + cr * 0.00625893) * 255 - 222.921) / 255);
  target[p + 1] = toLevel(((y * 0.00456621 - cb * 0.00153632 - cr * 0.00318811) * 255 + 135.576) / 255);
  target[p + 2] = toLevel(((y * 0.00456621 + cb * 0.00791071) * 255 - 276.836) / 255);
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
