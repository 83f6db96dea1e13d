// The browser suite's driver: Debian's Chromium (headless) through playwright-core, steered
// by JSON commands, one per line on stdin, each answered by one JSON line on stdout:
//   {"ok":true,...} or {"ok":false,"error":"..."}; a command's "seq" is echoed back.
// First line after launch: {"ready":true,"version":"<chromium version>"}.
//
// Commands ("cmd"), each bounded by "timeout_ms" (default 15000):
//   open {id,url,width?,height?}      new context + page with that viewport, goes to url
//   wait {id,expr,timeout_ms}         polls the page expression until truthy -> value
//   eval {id,expr}                    the expression's value (promises awaited)
//   click {id,x,y,button?}            at VIDEO pixels (through the <video>'s box and
//                                     videoWidth/Height, object-fit contain); button
//                                     0|1|2 or left|middle|right
//   move {id,x,y}                     mouse to VIDEO pixels
//   wheel {id,dx,dy}                  mouse.wheel (pixels) at the mouse's position
//   type {id,text,delay_ms?}          keyboard.type after focusing #screen (or the video)
//   press {id,key}                    keyboard.press (playwright key name), same focus
//   screenshot {id,path}              PNG of the page
//   sample {id,points:[[x,y],...]}    -> rgb: vmViewer.sample(points)
//   resize {id,width,height}          the viewport
//   log {id}                          -> lines: the page's console and errors so far
//   close {id}                        closes the context: abrupt, no DELETE of its own
//   quit                              closes the browser and exits
// Environment: VMD_CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import readline from 'node:readline';

const DEFAULT_TIMEOUT_MS = 15000;
const pages = new Map(); // id -> { context, page, log: [] }
let browser = null;

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function pageOf(cmd) {
  const p = pages.get(String(cmd.id));
  if (!p) throw new Error(`no page with id ${JSON.stringify(cmd.id)}`);
  return p;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Runs in the page: VIDEO pixel (x, y) -> page coordinates inside that pixel. Chromium's
// mouse events carry whole CSS pixels, so the point is a whole number inside the pixel's
// span when there is one (the layout may put the video at a fractional offset).
function videoToPage([x, y]) {
  const v = document.querySelector('video');
  if (!v || !v.videoWidth || !v.videoHeight) throw new Error('no video with a frame size');
  const r = v.getBoundingClientRect();
  const scale = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
  const inside = (lo) => {
    const whole = Math.ceil(lo);
    return whole < lo + scale ? whole : lo + scale / 2;
  };
  return [inside(r.left + (r.width - v.videoWidth * scale) / 2 + x * scale),
          inside(r.top + (r.height - v.videoHeight * scale) / 2 + y * scale)];
}

function focusScreen() {
  const el = document.getElementById('screen') || document.querySelector('video');
  if (el) el.focus();
}

const BUTTONS = { 0: 'left', 1: 'middle', 2: 'right', left: 'left', middle: 'middle', right: 'right' };

const commands = {
  async open(cmd) {
    if (pages.has(String(cmd.id))) throw new Error(`page ${cmd.id} already open`);
    const context = await browser.newContext({
      viewport: { width: cmd.width || 1280, height: cmd.height || 800 },
    });
    const page = await context.newPage();
    const entry = { context, page, log: [] };
    page.on('console', (m) => entry.log.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => entry.log.push(`pageerror: ${e.message}`));
    pages.set(String(cmd.id), entry);
    await page.goto(cmd.url, { timeout: cmd.timeout_ms || DEFAULT_TIMEOUT_MS });
    return {};
  },
  async wait(cmd) {
    const { page } = pageOf(cmd);
    const deadline = Date.now() + (cmd.timeout_ms || DEFAULT_TIMEOUT_MS);
    let last = 'never evaluated';
    for (;;) {
      try {
        const value = await page.evaluate(cmd.expr);
        if (value) return { value };
        last = `last value ${JSON.stringify(value)}`;
      } catch (e) {
        last = `last error ${e.message.split('\n')[0]}`;
      }
      if (Date.now() >= deadline) throw new Error(`wait timed out (${last}): ${cmd.expr}`);
      await sleep(50);
    }
  },
  async eval(cmd) {
    return { value: await pageOf(cmd).page.evaluate(cmd.expr) };
  },
  async click(cmd) {
    const { page } = pageOf(cmd);
    const [px, py] = await page.evaluate(videoToPage, [cmd.x, cmd.y]);
    const button = BUTTONS[cmd.button ?? 0];
    if (!button) throw new Error(`unknown button ${cmd.button}`);
    await page.mouse.click(px, py, { button });
    return { page_x: px, page_y: py };
  },
  async move(cmd) {
    const { page } = pageOf(cmd);
    const [px, py] = await page.evaluate(videoToPage, [cmd.x, cmd.y]);
    await page.mouse.move(px, py);
    return { page_x: px, page_y: py };
  },
  async wheel(cmd) {
    await pageOf(cmd).page.mouse.wheel(cmd.dx || 0, cmd.dy || 0);
    return {};
  },
  async type(cmd) {
    const { page } = pageOf(cmd);
    await page.evaluate(focusScreen);
    await page.keyboard.type(String(cmd.text), { delay: cmd.delay_ms ?? 30 });
    return {};
  },
  async press(cmd) {
    const { page } = pageOf(cmd);
    await page.evaluate(focusScreen);
    await page.keyboard.press(String(cmd.key));
    return {};
  },
  async screenshot(cmd) {
    await pageOf(cmd).page.screenshot({ path: cmd.path });
    return { path: cmd.path };
  },
  async sample(cmd) {
    const rgb = await pageOf(cmd).page.evaluate((pts) => window.vmViewer.sample(pts), cmd.points);
    if (!rgb) throw new Error('no video frame to sample');
    return { rgb };
  },
  async resize(cmd) {
    await pageOf(cmd).page.setViewportSize({ width: cmd.width, height: cmd.height });
    return {};
  },
  async log(cmd) {
    return { lines: pageOf(cmd).log.slice() };
  },
  async close(cmd) {
    const entry = pageOf(cmd);
    pages.delete(String(cmd.id));
    await entry.context.close();
    return {};
  },
};

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function quit(code) {
  try {
    if (browser) await withTimeout(browser.close(), 5000, 'browser.close');
  } catch (e) {
    /* exiting anyway */
  }
  process.exit(code);
}

async function run(line) {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    return { ok: false, error: `not JSON: ${e.message}` };
  }
  const seq = cmd && cmd.seq !== undefined ? { seq: cmd.seq } : {};
  if (!cmd || typeof cmd.cmd !== 'string') return { ok: false, error: 'no "cmd"', ...seq };
  if (cmd.cmd === 'quit') return { ok: true, quit: true, ...seq };
  const fn = Object.hasOwn(commands, cmd.cmd) ? commands[cmd.cmd] : null;
  if (!fn) return { ok: false, error: `unknown command ${cmd.cmd}`, ...seq };
  // wait's own bound is its condition's; the command gets a little more to report it.
  const bound = (cmd.timeout_ms || DEFAULT_TIMEOUT_MS) + (cmd.cmd === 'wait' ? 1000 : 0);
  try {
    const result = await withTimeout(fn(cmd), bound, cmd.cmd);
    return { ok: true, ...result, ...seq };
  } catch (e) {
    return { ok: false, error: String(e && e.message ? e.message : e), ...seq };
  }
}

async function main() {
  const executablePath = process.env.VMD_CHROMIUM || '/usr/bin/chromium';
  try {
    browser = await withTimeout(chromium.launch({
      executablePath,
      headless: true,
      args: ['--no-sandbox', '--disable-features=WebRtcHideLocalIpsWithMdns',
             '--autoplay-policy=no-user-gesture-required', '--use-fake-ui-for-media-stream'],
    }), 60000, 'launch');
  } catch (e) {
    reply({ ready: false, error: `cannot launch ${executablePath}: ${e.message}` });
    process.exit(1);
  }
  reply({ ready: true, version: browser.version() });

  // One command at a time, in order.
  let chain = Promise.resolve();
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  rl.on('line', (line) => {
    if (!line.trim()) return;
    chain = chain.then(async () => {
      const answer = await run(line);
      reply(answer);
      if (answer.quit) await quit(0);
    });
  });
  rl.on('close', () => { chain = chain.then(() => quit(0)); });
}

main();
