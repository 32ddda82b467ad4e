// Drive the exported page in Debian's headless Chromium: load it, choose an image, wait for the upscale, write
// what the page computed (and a screenshot) for the Python test to compare with onnxruntime in Python.
// node web/test/check_page.mjs URL IMAGE RESULT.json SCREENSHOT.png   (WEBGPU=1: with a WebGPU adapter)
import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [url, image, resultPath, screenshotPath] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // As root, and on a machine whose network is closed: no sandbox, no background connections.
  // WEBGPU=1 gives the page SwiftShader's software WebGPU adapter (correct, about 100 times slower than WASM).
  args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync',
         ...(process.env.WEBGPU ? ['--enable-unsafe-webgpu', '--use-angle=swiftshader'] : ['--disable-gpu'])],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const messages = [];
  page.on('console', (message) => messages.push(`${message.type()}: ${message.text()}`));
  page.on('pageerror', (err) => messages.push(`pageerror: ${err.message}`));
  await page.goto(url);
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null, { timeout: 120000 });
  const startState = await page.evaluate(() => [document.body.dataset.state, document.getElementById('status').textContent]);
  if (startState[0] !== 'ready') throw new Error(`the page did not start: ${startState[1]} ${messages.join(' | ')}`);
  await page.setInputFiles('#file', image);
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 300000 });
  await page.waitForFunction(() => document.body.dataset.state === 'error' || document.getElementById('download').download,
                             null, { timeout: 30000 });  // the PNG is encoded after the picture shows
  const result = await page.evaluate(() => ({
    state: document.body.dataset.state,
    status: document.getElementById('status').textContent,
    runtime: document.getElementById('runtime').textContent,
    isolated: crossOriginIsolated,
    download: document.getElementById('download').download,
    ...Object.fromEntries(Object.entries(window.srResult || {}).map(  // typed arrays as plain arrays for JSON
      ([key, value]) => [key, ArrayBuffer.isView(value) ? Array.from(value) : value])),
  }));
  result.console = messages;
  await page.screenshot({ path: screenshotPath, fullPage: true });
  writeFileSync(resultPath, JSON.stringify(result));
} finally {
  await browser.close();
}
