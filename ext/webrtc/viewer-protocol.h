/* gst-vmdisplay: the `input` data channel's messages between a viewer (the page, or any
 * client written from docs/vmwebrtcsink.md) and vmwebrtcsink. JSON text, one object each.
 *
 * viewer -> sink: pointer {x,y} (absolute, video pixels), pointer-rel {dx,dy}, button
 * {button 0..4, down}, wheel {dx,dy} (notches: dy > 0 down, dx > 0 right, as WheelEvent),
 * key {code (KeyboardEvent.code), down}, resize {width,height}, ping {t}.
 * sink -> viewer: cursor {width,height,hot_x,hot_y,png}, cursor-pos {x,y,visible},
 * pong {t}, control {granted}.
 * Plain C++ over json-glib; no GStreamer.
 */
#pragma once

#include <cstdint>
#include <string>

namespace vmd::webrtc {

/* Bound on one incoming message (bytes); longer ones are malformed. */
constexpr size_t kMaxViewerMessage = 4096;

struct ViewerMessage {
  enum class Type { Pointer, PointerRel, Button, Wheel, Key, Resize, Ping };
  Type type = Type::Ping;
  double x = 0, y = 0;   /* pointer: x, y; pointer-rel and wheel: dx, dy */
  int button = 0;        /* button: 0 left, 1 middle, 2 right, 3 back, 4 forward */
  bool down = false;     /* button, key */
  std::string code;      /* key: KeyboardEvent.code, 1..64 chars of [A-Za-z0-9] */
  unsigned width = 0, height = 0; /* resize: 1..16384 each */
  double t = 0;          /* ping: echoed in the pong */
};

/* Parses one message. False, with a short reason in *why, for anything not exactly one of
 * the messages above: not JSON, not an object, unknown type, a missing or mistyped field,
 * a value out of range (non-finite numbers, button outside 0..4, sizes outside 1..16384,
 * |x|,|y| > 1e6). Extra fields are ignored. */
bool parse_viewer_message(const std::string &text, ViewerMessage *out, std::string *why);

/* The sink's messages, serialized. */
std::string cursor_message(int width, int height, int hot_x, int hot_y,
                           const std::string &png_base64);
std::string cursor_pos_message(int x, int y, bool visible);
std::string pong_message(double t);
std::string control_message(bool granted);

}  // namespace vmd::webrtc
