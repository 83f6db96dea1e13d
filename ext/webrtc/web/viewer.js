/* vmwebrtcsink's viewer: WHEP (draft-ietf-wish-whep) playback of the VM's video, input over
 * the `input` data channel (the protocol is in docs/vmwebrtcsink.md and
 * ext/webrtc/viewer-protocol.h), the guest's cursor as a CSS cursor, a stats line.
 * Plain JS, standard APIs only (Chromium and Firefox); no build step, no external URL.
 *
 * Test hooks: window.vmViewer (state, frames, sample(), setFit(), close(), ...) and
 * window.vmViewerInternals (the pure functions below, tested without a sink by
 * tests/check/support/browser-driver-selftest.cpp). */
'use strict';

(function () {
  /* ---------------------------------------------------------------- pure logic */

  const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

  /* Where the picture lies inside the video element: a <video> draws object-fit: contain
   * (its default), so this holds at native size (scale 1, no offset) and in fit mode. */
  function contentBox(rect, videoWidth, videoHeight) {
    if (!(videoWidth > 0 && videoHeight > 0 && rect.width > 0 && rect.height > 0)) return null;
    const scale = Math.min(rect.width / videoWidth, rect.height / videoHeight);
    return {
      left: rect.left + (rect.width - videoWidth * scale) / 2,
      top: rect.top + (rect.height - videoHeight * scale) / 2,
      scale,
    };
  }

  /* Client (CSS px) coordinates -> integer video pixels, clamped into the picture. */
  function elementToVideo(clientX, clientY, rect, videoWidth, videoHeight) {
    const box = contentBox(rect, videoWidth, videoHeight);
    if (!box) return null;
    return {
      x: clamp(Math.floor((clientX - box.left) / box.scale), 0, videoWidth - 1),
      y: clamp(Math.floor((clientY - box.top) / box.scale), 0, videoHeight - 1),
    };
  }

  /* WheelEvent deltas -> whole notches, the remainder kept for the next event. One notch:
   * 100 px (DOM_DELTA_PIXEL), 3 lines (DOM_DELTA_LINE), 1 page (DOM_DELTA_PAGE). Raw
   * units are accumulated (exact for line and page deltas); a change of mode restarts. */
  const WHEEL_UNITS = [100, 3, 1];
  function makeWheelAccumulator() {
    let mode = 0, ax = 0, ay = 0;
    return function add(deltaX, deltaY, deltaMode) {
      const m = WHEEL_UNITS[deltaMode] ? deltaMode : 0;
      if (m !== mode) { mode = m; ax = 0; ay = 0; }
      const unit = WHEEL_UNITS[m];
      ax += Number(deltaX) || 0;
      ay += Number(deltaY) || 0;
      const dx = Math.trunc(ax / unit), dy = Math.trunc(ay / unit);
      ax -= dx * unit;
      ay -= dy * unit;
      return { dx, dy };
    };
  }

  /* Fractional relative motion (movementX / scale) -> whole video pixels, remainder kept. */
  function makeMotionAccumulator() {
    let ax = 0, ay = 0;
    return function add(dx, dy) {
      ax += dx;
      ay += dy;
      const ix = Math.trunc(ax), iy = Math.trunc(ay);
      ax -= ix;
      ay -= iy;
      return { dx: ix, dy: iy };
    };
  }

  /* One Link header value (several headers arrive joined with ", ") -> [{url, params}]. */
  function parseLinkHeader(header) {
    const s = header || '', links = [];
    let i = 0;
    while (i < s.length) {
      const lt = s.indexOf('<', i), gt = lt < 0 ? -1 : s.indexOf('>', lt);
      if (gt < 0) break;
      const link = { url: s.slice(lt + 1, gt), params: {} };
      i = parseLinkParams(s, gt + 1, link.params);
      links.push(link);
      const comma = s.indexOf(',', i);
      if (comma < 0) break;
      i = comma + 1;
    }
    return links;
  }

  /* `; name=value` / `; name="quoted \" value"` pairs from s[i]; returns where they end. */
  function parseLinkParams(s, i, params) {
    for (;;) {
      while (s[i] === ' ' || s[i] === '\t') i++;
      if (s[i] !== ';') return i;
      const m = /^;\s*([A-Za-z0-9!#$&+.^_`|~-]+)\s*/.exec(s.slice(i));
      if (!m) return i + 1;
      i += m[0].length;
      let value = '';
      if (s[i] === '=') {
        i++;
        while (s[i] === ' ') i++;
        if (s[i] === '"') {
          for (i++; i < s.length && s[i] !== '"'; i++) {
            if (s[i] === '\\' && i + 1 < s.length) i++;
            value += s[i];
          }
          i++;
        } else {
          value = /^[^;,\s]*/.exec(s.slice(i))[0];
          i += value.length;
        }
      }
      const name = m[1].toLowerCase();
      if (!(name in params)) params[name] = value;
    }
  }

  /* WHEP's `rel="ice-server"` links -> RTCIceServer dictionaries. */
  function iceServersFromLinks(links) {
    return links
      .filter((l) => (l.params.rel || '').split(/\s+/).includes('ice-server'))
      .map((l) => {
        const server = { urls: l.url };
        if ('username' in l.params) server.username = l.params.username;
        if ('credential' in l.params) server.credential = l.params.credential;
        return server;
      });
  }

  /* Two inbound-rtp snapshots (plus the pair's RTT in s) a second apart -> the stats line's
   * figures. Latency is an estimate: jitter buffer + decode per frame + half the RTT. */
  function computeStats(prev, cur) {
    const out = {
      width: cur.frameWidth || 0, height: cur.frameHeight || 0,
      fps: null, kbps: null, rttMs: cur.rtt != null ? cur.rtt * 1000 : null, latencyMs: null,
    };
    if (!prev) return out;
    const dt = (cur.t - prev.t) / 1000;
    const frames = (cur.framesDecoded || 0) - (prev.framesDecoded || 0);
    if (cur.framesPerSecond != null) out.fps = cur.framesPerSecond;
    else if (dt > 0) out.fps = frames / dt;
    if (dt > 0) out.kbps = ((cur.bytesReceived || 0) - (prev.bytesReceived || 0)) * 8 / 1000 / dt;
    const emitted = (cur.jitterBufferEmittedCount || 0) - (prev.jitterBufferEmittedCount || 0);
    if (emitted > 0 && frames > 0) {
      const jitter = ((cur.jitterBufferDelay || 0) - (prev.jitterBufferDelay || 0)) / emitted;
      const decode = ((cur.totalDecodeTime || 0) - (prev.totalDecodeTime || 0)) / frames;
      out.latencyMs = (jitter + decode) * 1000 + (out.rttMs != null ? out.rttMs / 2 : 0);
    }
    return out;
  }

  function formatStats(st) {
    const parts = [st.width && st.height ? `${st.width}x${st.height}` : '-'];
    if (st.fps != null) parts.push(`${st.fps.toFixed(0)} fps`);
    if (st.kbps != null) parts.push(st.kbps >= 1000 ? `${(st.kbps / 1000).toFixed(1)} Mb/s`
                                                   : `${st.kbps.toFixed(0)} kb/s`);
    if (st.rttMs != null) parts.push(`RTT ${st.rttMs.toFixed(0)} ms`);
    if (st.latencyMs != null) parts.push(`est. latency ${st.latencyMs.toFixed(0)} ms`);
    return parts.join(' \u00b7 ');
  }

  window.vmViewerInternals = {
    contentBox, elementToVideo, makeWheelAccumulator, makeMotionAccumulator,
    parseLinkHeader, iceServersFromLinks, computeStats, formatStats,
  };

  /* ---------------------------------------------------------------- the page */

  const $ = (id) => document.getElementById(id);
  const video = $('video'), screen = $('screen'), overlay = $('cursor-overlay');
  const whepUrl = new URL('whep', location.href).href;
  const token = new URLSearchParams(location.hash.slice(1)).get('token') || '';

  const S = {
    state: 'connecting', error: null, pc: null, channel: null, sessionUrl: null, gen: 0,
    control: null, cursor: null, cursorCss: null, lastPong: null,
    statsFrames: 0, presentedFrames: 0, messagesReceived: 0, stats: null, prevSnapshot: null,
    fit: false, fitVm: false, lock: false,
  };

  function setState(state, error) {
    S.state = state;
    if (error !== undefined) S.error = error;
    $('state').textContent = state;
    $('state').dataset.state = state;
    $('error').hidden = state !== 'failed';
    $('error-text').textContent = state === 'failed' ? String(S.error || 'failed') : '';
  }

  function authHeaders(extra) {
    const h = Object.assign({}, extra);
    if (token) h.Authorization = `Bearer ${token}`;
    return h;
  }

  class HttpError extends Error {}

  async function httpError(what, response) {
    let reason = '';
    try { reason = (await response.text()).trim(); } catch (e) { /* no body */ }
    if (reason.length > 300) reason = `${reason.slice(0, 300)}...`;
    return new HttpError(`${what}: ${response.status} ${response.statusText}` +
                         (reason ? `: ${reason}` : ''));
  }

  /* OPTIONS /whep: the ICE servers (STUN/TURN) the sink advertises. Never fatal. */
  async function fetchIceServers() {
    try {
      const r = await fetch(whepUrl, { method: 'OPTIONS', headers: authHeaders() });
      return iceServersFromLinks(parseLinkHeader(r.headers.get('Link')));
    } catch (e) {
      return [];
    }
  }

  /* Receive as soon as possible: no jitter buffer beyond what the network needs. */
  function lowLatencyReceiver(receiver) {
    if ('jitterBufferTarget' in receiver) receiver.jitterBufferTarget = 0;
    if ('playoutDelayHint' in receiver) receiver.playoutDelayHint = 0;
  }

  function createPeer(iceServers, gen) {
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', iceServers });
    const transceiver = pc.addTransceiver('video', { direction: 'recvonly' });
    lowLatencyReceiver(transceiver.receiver);
    /* WHEP forbids renegotiation: the channel must be in the first offer. */
    const channel = pc.createDataChannel('input');
    pc.ontrack = (ev) => {
      lowLatencyReceiver(ev.receiver);
      video.srcObject = ev.streams[0] || new MediaStream([ev.track]);
      video.play().catch(() => {});
    };
    const onIce = () => {
      if (gen !== S.gen) return;
      const st = pc.connectionState || pc.iceConnectionState;
      if (st === 'failed') fail(new Error('connection failed (ICE)'));
    };
    pc.onconnectionstatechange = onIce;
    pc.oniceconnectionstatechange = onIce;
    attachChannel(channel, gen);
    return { pc, channel };
  }

  /* Non-trickle WHEP: the offer goes out with every candidate, or what there is after 2 s. */
  function gatheringDone(pc, timeoutMs) {
    return new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const timer = setTimeout(resolve, timeoutMs);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); }
      });
    });
  }

  async function postOffer(sdp) {
    const r = await fetch(whepUrl, {
      method: 'POST', body: sdp,
      headers: authHeaders({ 'Content-Type': 'application/sdp' }),
    });
    if (r.status !== 201) throw await httpError('POST /whep', r);
    const where = r.headers.get('Location');
    return { answer: await r.text(), sessionUrl: where ? new URL(where, whepUrl).href : null };
  }

  async function connect() {
    const gen = ++S.gen;
    setState('connecting', null);
    try {
      const iceServers = await fetchIceServers();
      if (gen !== S.gen) return;
      const { pc, channel } = createPeer(iceServers, gen);
      S.pc = pc;
      S.channel = channel;
      await pc.setLocalDescription(await pc.createOffer());
      await gatheringDone(pc, 2000);
      if (gen !== S.gen) return;
      const { answer, sessionUrl } = await postOffer(pc.localDescription.sdp);
      S.sessionUrl = sessionUrl;
      if (gen !== S.gen) return;
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    } catch (e) {
      if (gen === S.gen) fail(e);
    }
  }

  function deleteSession(keepalive) {
    const url = S.sessionUrl;
    S.sessionUrl = null;
    if (!url) return Promise.resolve(null);
    const signal = AbortSignal.timeout ? AbortSignal.timeout(3000) : undefined;
    return fetch(url, { method: 'DELETE', keepalive, headers: authHeaders(), signal })
      .then((r) => r.status, () => null);
  }

  function teardown() {
    S.gen++;
    releaseAll();
    if (S.pc) S.pc.close();
    S.pc = null;
    S.channel = null;
    S.control = null;
    S.prevSnapshot = null;
    video.srcObject = null;
    showControl();
  }

  function fail(e) {
    const message = e && e.message ? e.message : String(e);
    deleteSession(true);
    teardown();
    setState('failed', message);
  }

  async function close() {
    const status = await deleteSession(false);
    teardown();
    setState('closed', null);
    return status;
  }

  /* ---------------------------------------------------------------- data channel */

  function send(msg) {
    const ch = S.channel;
    if (!ch || ch.readyState !== 'open') return false;
    ch.send(JSON.stringify(msg));
    return true;
  }

  function attachChannel(channel, gen) {
    let pinger = null;
    channel.onopen = () => {
      if (gen !== S.gen) return;
      pinger = setInterval(() => send({ type: 'ping', t: performance.now() }), 1000);
      if (S.fitVm) sendResize();
    };
    channel.onclose = () => clearInterval(pinger);
    channel.onmessage = (ev) => {
      if (gen !== S.gen || typeof ev.data !== 'string') return;
      S.messagesReceived++;
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg && typeof msg === 'object') onSinkMessage(msg);
    };
  }

  function onSinkMessage(msg) {
    switch (msg.type) {
      case 'pong':
        if (typeof msg.t === 'number')
          S.lastPong = { t: msg.t, rtt: performance.now() - msg.t, at: Date.now() };
        break;
      case 'control':
        S.control = msg.granted === true;
        showControl();
        break;
      case 'cursor': onCursorImage(msg); break;
      case 'cursor-pos': onCursorPos(msg); break;
      default: break; /* unknown messages: ignored, as the sink does */
    }
  }

  function showControl() {
    $('control').hidden = S.control !== false;
  }

  /* The guest's cursor as a CSS cursor (drawn by the browser: moving it costs no frame).
   * CSS cannot scale a cursor, so in fit mode it stays at its native size. */
  function onCursorImage(msg) {
    const int = (v) => (Number.isFinite(v) ? Math.trunc(v) : 0);
    const png = typeof msg.png === 'string' && /^[A-Za-z0-9+/=]*$/.test(msg.png) ? msg.png : '';
    const prev = S.cursor || { visible: true };
    S.cursor = {
      width: int(msg.width), height: int(msg.height), hot_x: int(msg.hot_x),
      hot_y: int(msg.hot_y), visible: prev.visible, x: prev.x, y: prev.y,
    };
    S.cursorPng = png;
    S.cursorCss = png ? `url("data:image/png;base64,${png}") ${S.cursor.hot_x} ${S.cursor.hot_y}, default`
                      : null;
    overlay.style.backgroundImage = png ? `url("data:image/png;base64,${png}")` : 'none';
    overlay.style.width = `${S.cursor.width}px`;
    overlay.style.height = `${S.cursor.height}px`;
    applyCursor();
  }

  function onCursorPos(msg) {
    const c = S.cursor || { width: 0, height: 0, hot_x: 0, hot_y: 0 };
    c.visible = msg.visible !== false;
    if (Number.isFinite(msg.x)) c.x = msg.x;
    if (Number.isFinite(msg.y)) c.y = msg.y;
    S.cursor = c;
    applyCursor();
  }

  function applyCursor() {
    const c = S.cursor;
    video.style.cursor = c && !c.visible ? 'none' : (S.cursorCss || 'default');
    const locked = document.pointerLockElement === video;
    overlay.hidden = !(locked && c && c.visible && S.cursorCss && Number.isFinite(c.x));
    if (overlay.hidden) return;
    const box = contentBox(video.getBoundingClientRect(), video.videoWidth, video.videoHeight);
    const origin = screen.getBoundingClientRect();
    if (!box) return;
    overlay.style.left = `${box.left - origin.left + c.x * box.scale - c.hot_x}px`;
    overlay.style.top = `${box.top - origin.top + c.y * box.scale - c.hot_y}px`;
  }

  /* ---------------------------------------------------------------- input */

  const wheel = makeWheelAccumulator();
  const motion = makeMotionAccumulator();
  const keysDown = new Set(), buttonsDown = new Set();
  let pendingAbs = null, pendingRel = null, frameRequested = false;

  function videoScale() {
    const box = contentBox(video.getBoundingClientRect(), video.videoWidth, video.videoHeight);
    return box ? box.scale : 1;
  }

  /* Pointer motion goes out at most once per animation frame, the latest position (or the
   * summed relative motion) of that frame. Buttons and wheel flush it first. */
  function flushPointer() {
    frameRequested = false;
    if (pendingAbs) send({ type: 'pointer', x: pendingAbs.x, y: pendingAbs.y });
    if (pendingRel && (pendingRel.dx || pendingRel.dy))
      send({ type: 'pointer-rel', dx: pendingRel.dx, dy: pendingRel.dy });
    pendingAbs = null;
    pendingRel = null;
  }

  function schedulePointer() {
    if (frameRequested) return;
    frameRequested = true;
    requestAnimationFrame(flushPointer);
  }

  function onPointerMove(ev) {
    if (document.pointerLockElement === video) {
      const scale = videoScale();
      const d = motion(ev.movementX / scale, ev.movementY / scale);
      pendingRel = pendingRel || { dx: 0, dy: 0 };
      pendingRel.dx += d.dx;
      pendingRel.dy += d.dy;
    } else {
      const p = elementToVideo(ev.clientX, ev.clientY, video.getBoundingClientRect(),
                               video.videoWidth, video.videoHeight);
      if (!p) return;
      pendingAbs = p;
    }
    schedulePointer();
  }

  function onMouseButton(ev, down) {
    if (ev.button < 0 || ev.button > 4) return;
    if (down || buttonsDown.has(ev.button)) ev.preventDefault();
    if (down) {
      screen.focus({ preventScroll: true });
      if (S.lock && document.pointerLockElement !== video && video.requestPointerLock) {
        const p = video.requestPointerLock();
        if (p && p.catch) p.catch(() => {});
      }
    } else if (!buttonsDown.has(ev.button)) {
      return;
    }
    if (down && ev.target === video) onPointerMove(ev);
    flushPointer();
    if (send({ type: 'button', button: ev.button, down })) {
      if (down) buttonsDown.add(ev.button); else buttonsDown.delete(ev.button);
    }
  }

  function onWheel(ev) {
    ev.preventDefault();
    const n = wheel(ev.deltaX, ev.deltaY, ev.deltaMode);
    if (!n.dx && !n.dy) return;
    flushPointer();
    send({ type: 'wheel', dx: n.dx, dy: n.dy });
  }

  /* Keys by KeyboardEvent.code (layout-independent); the guest autorepeats by itself. */
  function onKey(ev, down) {
    ev.preventDefault();
    if (!/^[A-Za-z0-9]{1,64}$/.test(ev.code)) return;
    if (down && (ev.repeat || keysDown.has(ev.code))) return;
    if (!down && !keysDown.has(ev.code)) return;
    if (send({ type: 'key', code: ev.code, down })) {
      if (down) keysDown.add(ev.code); else keysDown.delete(ev.code);
    }
  }

  /* Focus gone: nothing may stay pressed in the guest. */
  function releaseAll() {
    for (const code of keysDown) send({ type: 'key', code, down: false });
    for (const button of buttonsDown) send({ type: 'button', button, down: false });
    keysDown.clear();
    buttonsDown.clear();
  }

  /* ---------------------------------------------------------------- layout */

  function stageSize() {
    const bar = $('toolbar').getBoundingClientRect().height;
    const err = $('error').hidden ? 0 : $('error').getBoundingClientRect().height;
    return {
      width: Math.max(1, Math.floor(window.innerWidth)),
      height: Math.max(1, Math.floor(window.innerHeight - bar - err)),
    };
  }

  function sendResize() {
    const { width, height } = stageSize();
    send({ type: 'resize', width, height });
  }

  let resizeTimer = null;
  function onWindowResize() {
    applyCursor();
    if (!S.fitVm) return;
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(sendResize, 250);
  }

  /* Native size: one CSS pixel per video pixel (fit mode's CSS overrides these). */
  function onVideoResize() {
    if (video.videoWidth > 0) {
      video.style.width = `${video.videoWidth}px`;
      video.style.height = `${video.videoHeight}px`;
    }
    applyCursor();
  }

  function setFit(on) {
    S.fit = !!on;
    $('fit').checked = S.fit;
    document.body.classList.toggle('fit', S.fit);
    applyCursor();
  }

  function setFitVm(on) {
    S.fitVm = !!on;
    $('fit-vm').checked = S.fitVm;
    if (S.fitVm) sendResize();
  }

  /* ---------------------------------------------------------------- frames and stats */

  function countPresentedFrames() {
    if (!('requestVideoFrameCallback' in HTMLVideoElement.prototype)) return;
    const onFrame = () => {
      S.presentedFrames++;
      if (S.state === 'connecting') setState('playing');
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }

  function selectedPairRtt(report) {
    let pair = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId)
        pair = report.get(s.selectedCandidatePairId) || pair;
    });
    if (!pair) {
      report.forEach((s) => {
        if (s.type === 'candidate-pair' && (s.selected || (s.nominated && s.state === 'succeeded')))
          pair = pair || s;
      });
    }
    return pair && pair.currentRoundTripTime != null ? pair.currentRoundTripTime : null;
  }

  async function pollStats() {
    const pc = S.pc;
    if (!pc) return;
    let report;
    try { report = await pc.getStats(); } catch (e) { return; }
    let rtp = null;
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && (s.kind || s.mediaType) === 'video') rtp = s;
    });
    if (!rtp || pc !== S.pc) return;
    const snap = Object.assign({ t: performance.now(), rtt: selectedPairRtt(report) }, rtp);
    if (snap.rtt == null && S.lastPong) snap.rtt = S.lastPong.rtt / 1000;
    if (!snap.frameWidth) { snap.frameWidth = video.videoWidth; snap.frameHeight = video.videoHeight; }
    S.stats = computeStats(S.prevSnapshot, snap);
    S.prevSnapshot = snap;
    S.statsFrames = rtp.framesDecoded || 0;
    if (S.statsFrames > 0 && S.state === 'connecting' && video.videoWidth > 0) setState('playing');
    $('stats').textContent = formatStats(S.stats);
  }

  /* The current frame's pixels at video coordinates, [[r,g,b], ...] (null without a frame). */
  function sample(points) {
    const w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) return null;
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(video, 0, 0, w, h);
    return points.map(([x, y]) => {
      const d = ctx.getImageData(clamp(Math.floor(x), 0, w - 1), clamp(Math.floor(y), 0, h - 1),
                                 1, 1).data;
      return [d[0], d[1], d[2]];
    });
  }

  /* ---------------------------------------------------------------- wiring */

  function wire() {
    video.addEventListener('pointermove', onPointerMove);
    video.addEventListener('pointerdown', (ev) => {
      if (video.setPointerCapture) try { video.setPointerCapture(ev.pointerId); } catch (e) { /* */ }
    });
    video.addEventListener('mousedown', (ev) => onMouseButton(ev, true));
    window.addEventListener('mouseup', (ev) => onMouseButton(ev, false));
    video.addEventListener('auxclick', (ev) => ev.preventDefault());
    video.addEventListener('contextmenu', (ev) => ev.preventDefault());
    video.addEventListener('wheel', onWheel, { passive: false });
    video.addEventListener('resize', onVideoResize);
    video.addEventListener('loadedmetadata', onVideoResize);
    screen.addEventListener('keydown', (ev) => onKey(ev, true));
    screen.addEventListener('keyup', (ev) => onKey(ev, false));
    screen.addEventListener('blur', releaseAll);
    window.addEventListener('blur', releaseAll);
    document.addEventListener('visibilitychange', () => { if (document.hidden) releaseAll(); });
    document.addEventListener('pointerlockchange', applyCursor);
    window.addEventListener('resize', onWindowResize);
    window.addEventListener('pagehide', () => deleteSession(true));
    $('fit').addEventListener('change', (ev) => setFit(ev.target.checked));
    $('fit-vm').addEventListener('change', (ev) => setFitVm(ev.target.checked));
    $('lock').addEventListener('change', (ev) => {
      S.lock = ev.target.checked;
      if (!S.lock && document.pointerLockElement && document.exitPointerLock) document.exitPointerLock();
    });
    $('retry').addEventListener('click', () => { deleteSession(true); teardown(); connect(); });
  }

  window.vmViewer = {
    get state() { return S.state; },
    get error() { return S.error; },
    get framesDecoded() { return Math.max(S.statsFrames, S.presentedFrames); },
    get framesPresented() { return S.presentedFrames; },
    get videoWidth() { return video.videoWidth; },
    get videoHeight() { return video.videoHeight; },
    get control() { return S.control; },
    get cursor() { return S.cursor ? Object.assign({}, S.cursor) : null; },
    get lastPong() { return S.lastPong; },
    get stats() { return S.stats; },
    get messagesReceived() { return S.messagesReceived; },
    get channelOpen() { return !!S.channel && S.channel.readyState === 'open'; },
    get sessionUrl() { return S.sessionUrl; },
    get cursorStyle() { return video.style.cursor; },
    /* Diagnostics for tests: the receiver's inbound-rtp statistics. */
    async inboundStats() {
      if (!S.pc) return null;
      const out = [];
      (await S.pc.getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp')
          out.push({ packets: r.packetsReceived, lost: r.packetsLost, bytes: r.bytesReceived,
                     framesReceived: r.framesReceived, decoded: r.framesDecoded,
                     keyFrames: r.keyFramesDecoded, dropped: r.framesDropped,
                     pli: r.pliCount, nack: r.nackCount, decoder: r.decoderImplementation,
                     codec: r.codecId, jitterBufferDelay: r.jitterBufferDelay,
                     jitterBufferEmitted: r.jitterBufferEmittedCount,
                     totalDecodeTime: r.totalDecodeTime });
      });
      return out;
    },
    /* Diagnostics for tests: the peer connection's and the video element's states. */
    get diagnostics() {
      const pc = S.pc;
      return {
        gen: S.gen,
        pc: pc ? { connection: pc.connectionState, ice: pc.iceConnectionState,
                   gathering: pc.iceGatheringState, signaling: pc.signalingState,
                   remote: pc.remoteDescription ? pc.remoteDescription.type : null } : null,
        channel: S.channel ? S.channel.readyState : null,
        video: { readyState: video.readyState, paused: video.paused,
                 src: !!video.srcObject, width: video.videoWidth },
      };
    },
    sample, setFit, setFitVm, close,
  };

  wire();
  countPresentedFrames();
  setInterval(pollStats, 1000);
  connect();
})();
