// gst-vmdisplay benchmark: glass-to-glass latency of vmwebrtcsink, from the test VM drawing a
// frame to Chromium presenting it, on one machine (one wall clock).
//
// The guest (vmpattern.frames=1) writes "VMFRAME N" on its serial console after counter N is
// on screen; this script timestamps each line as it appears in the serial file (polled every
// millisecond). In the page, requestVideoFrameCallback reads the counter back from the
// presented frame (the 32 cells at the top left, sampled through a canvas) and takes
// performance.timeOrigin + presentationTime/expectedDisplayTime. Latency = presented - drawn.
// The receiver's own figures (jitter buffer delay, decode time per frame) come from getStats.
//
// usage: node glass-to-glass.mjs URL SERIAL_FILE SECONDS [VIEWERS]   (prints one JSON line)
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'browser', 'package.json'));
const { chromium } = require('playwright-core');

const [url, serialFile, secondsArg, viewersArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 20);
const viewers = Number(viewersArg || 1);

/* Serial: counter -> wall-clock ms when its line appeared. */
const drawn = new Map();
let offset = 0;
let partial = '';
function pollSerial() {
  let fd;
  try { fd = fs.openSync(serialFile, 'r'); } catch { return; }
  const buf = Buffer.alloc(65536);
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, offset);
    if (n <= 0) break;
    offset += n;
    const now = Date.now() + (Number(process.hrtime.bigint() % 1000000n) / 1e6);
    partial += buf.toString('latin1', 0, n);
    const lines = partial.split('\n');
    partial = lines.pop();
    for (const line of lines) {
      const m = /VMFRAME (\d+)/.exec(line);
      if (m && !drawn.has(Number(m[1]))) drawn.set(Number(m[1]), now);
    }
  }
  fs.closeSync(fd);
}

/* In the page: every presented frame's counter and time. */
const pageScript = () => {
  window.__frames = [];
  const video = document.querySelector('video');
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const onFrame = (now, meta) => {
    if (video.videoWidth > 0) {
      canvas.width = 512; canvas.height = 16;
      ctx.drawImage(video, 0, 0, 512, 16, 0, 0, 512, 16);
      const px = ctx.getImageData(0, 0, 512, 16).data;
      let counter = 0;
      for (let b = 0; b < 32; b++) {
        const i = (8 * 512 + 16 * b + 8) * 4;
        if (px[i] + px[i + 1] + px[i + 2] > 3 * 128) counter |= (1 << b);
      }
      window.__frames.push({ counter: counter >>> 0,
                             presented: performance.timeOrigin + meta.presentationTime,
                             expected: performance.timeOrigin + meta.expectedDisplayTime,
                             received: meta.receiveTime ? performance.timeOrigin + meta.receiveTime : null });
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
};

/* The receiver's inbound-rtp figures, as the page exposes them. */
const receiverStats = async () => {
  const s = await window.vmViewer.inboundStats();
  return s && s[0];
};

function quantile(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const browser = await chromium.launch({
  executablePath: process.env.VMD_CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-features=WebRtcHideLocalIpsWithMdns',
         '--autoplay-policy=no-user-gesture-required'],
});
const pages = [];
for (let i = 0; i < viewers; i++) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1200 } });
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForFunction(() => window.vmViewer && window.vmViewer.state === 'playing',
                             null, { timeout: 30000 });
  pages.push(page);
}
await pages[0].evaluate(pageScript);
const timer = setInterval(pollSerial, 1);
const before = await pages[0].evaluate(receiverStats);
await new Promise((r) => setTimeout(r, seconds * 1000));
const after = await pages[0].evaluate(receiverStats);
clearInterval(timer);
pollSerial();
const frames = await pages[0].evaluate(() => window.__frames);
await browser.close();

const lat = [];
const toReceive = [];
let unmatched = 0;
for (const f of frames) {
  const t = drawn.get(f.counter);
  if (t === undefined) { unmatched++; continue; }
  lat.push(f.presented - t);
  if (f.received) toReceive.push(f.received - t);
}
lat.sort((a, b) => a - b);
toReceive.sort((a, b) => a - b);
const d = (k) => (after && before && after[k] != null && before[k] != null) ? after[k] - before[k] : null;
const decodedDelta = d('decoded');
const emitted = d('jitterBufferEmitted');
const result = {
  viewers, seconds, frames: frames.length, matched: lat.length, unmatched,
  median_ms: quantile(lat, 0.5), p95_ms: quantile(lat, 0.95), min_ms: lat[0] ?? null,
  max_ms: lat.length ? lat[lat.length - 1] : null,
  drawn_to_received_median_ms: quantile(toReceive, 0.5),
  jitter_buffer_ms: emitted ? 1000 * d('jitterBufferDelay') / emitted : null,
  decode_ms: decodedDelta ? 1000 * d('totalDecodeTime') / decodedDelta : null,
  decoded: decodedDelta,
};
console.log(JSON.stringify(result));
