/* The pages browser-driver-selftest serves besides the real viewer (ext/webrtc/web/). */
#pragma once

namespace {

/* The driver's target: a 320x240 canvas stream (red, a white bottom-right quadrant) in a
 * <video> drawn at 2x from (20, 30), recording what reaches it in page coordinates. */
constexpr const char *kTestPage = R"html(<!DOCTYPE html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<style>body { margin: 0 } video { position: absolute; left: 20px; top: 30px;
  width: 640px; height: 480px }</style></head>
<body><div id="screen" tabindex="0"><video autoplay muted playsinline></video></div>
<canvas width="320" height="240" style="display: none"></canvas>
<script>
window.clicks = []; window.moves = []; window.keys = []; window.wheels = [];
const canvas = document.querySelector('canvas'), g = canvas.getContext('2d');
function draw() {
  g.fillStyle = '#ff0000'; g.fillRect(0, 0, 320, 240);
  g.fillStyle = '#ffffff'; g.fillRect(160, 120, 160, 120);
}
draw(); setInterval(draw, 100);
const video = document.querySelector('video');
video.srcObject = canvas.captureStream(10);
video.addEventListener('mousedown', (e) => clicks.push([e.clientX, e.clientY, e.button]));
video.addEventListener('contextmenu', (e) => e.preventDefault());
video.addEventListener('mousemove', (e) => moves.push([e.clientX, e.clientY]));
video.addEventListener('wheel', (e) => wheels.push([e.deltaX, e.deltaY]));
document.getElementById('screen').addEventListener('keydown', (e) => keys.push(e.code));
window.vmViewer = { sample: (points) =>
  points.map(([x, y]) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3))) };
console.log('test page up');
</script></body></html>
)html";

/* A stand-in for vmwebrtcsink in its own tab: answers the viewer's offer with a canvas
 * stream (four quadrants: red, green / blue, white), takes the `input` channel, answers
 * pings, sends control and cursor messages, and records everything else in `received`. */
constexpr const char *kSinkPage = R"html(<!DOCTYPE html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>
<canvas width="320" height="240"></canvas>
<script>
window.received = [];
const canvas = document.querySelector('canvas'), g = canvas.getContext('2d');
function draw() {
  const q = [['#ff0000', 0, 0], ['#00ff00', 160, 0], ['#0000ff', 0, 120], ['#ffffff', 160, 120]];
  for (const [c, x, y] of q) { g.fillStyle = c; g.fillRect(x, y, 160, 120); }
}
draw(); setInterval(draw, 50);
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
window.sinkSend = (msg) => window.channel.send(JSON.stringify(msg));
window.answerOffer = async (offer) => {
  const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  window.pc = pc;
  pc.ondatachannel = (ev) => {
    const ch = ev.channel;
    window.channel = ch;
    window.channelLabel = ch.label;
    /* The first messages go out once the viewer has spoken (its first ping). Sent at once
     * from ondatachannel, none of them reached the viewer in 2 of 24 runs here while later
     * messages did (cause not found); vmwebrtcsink may want to do the same. */
    window.helloState = 'not yet';
    const hello = () => {
      window.helloState = ch.readyState;
      sinkSend({ type: 'control', granted: false });
      sinkSend({ type: 'cursor', width: 1, height: 1, hot_x: 0, hot_y: 0, png: PNG });
      sinkSend({ type: 'cursor-pos', x: 10, y: 20, visible: true });
    };
    ch.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (window.helloState === 'not yet') hello();
      if (msg.type === 'ping') ch.send(JSON.stringify({ type: 'pong', t: msg.t }));
      else received.push(msg);
    };
  };
  await pc.setRemoteDescription({ type: 'offer', sdp: offer });
  const tr = pc.getTransceivers().find((t) => t.receiver.track.kind === 'video');
  tr.direction = 'sendonly';
  await tr.sender.replaceTrack(canvas.captureStream(20).getVideoTracks()[0]);
  await pc.setLocalDescription(await pc.createAnswer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    setTimeout(resolve, 3000);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
  });
  return pc.localDescription.sdp;
};
</script></body></html>
)html";

}  // namespace
