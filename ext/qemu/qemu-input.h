/* gst-vmdisplay: keyboard and pointer input for a QEMU console, as plain
 * values.
 *
 * The element turns GstNavigation events into InputEvents (in its output
 * frame's pixels) and queues them; the D-Bus thread takes them from the
 * queue and InputState turns them into the calls QEMU's
 * org.qemu.Display1.Keyboard and .Mouse take, for the console's current
 * pointer mode (absolute with a tablet, relative without) and size. Nothing
 * here knows about D-Bus or GStreamer, so clamping, deltas, coalescing and
 * release-on-stop are unit-tested directly.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <set>
#include <vector>

namespace vmd {

/* QEMU's Mouse.Press/Release button numbers (InputButton in qapi/ui.json). */
enum QemuButton : uint32_t {
  kButtonLeft = 0,
  kButtonMiddle = 1,
  kButtonRight = 2,
  kButtonWheelUp = 3,
  kButtonWheelDown = 4,
  kButtonSide = 5,
  kButtonExtra = 6,
  kButtonWheelLeft = 7, /* QEMU 7.1 and later */
  kButtonWheelRight = 8,
};
constexpr uint32_t kMaxQemuButton = kButtonWheelRight;

enum class InputKind : uint8_t {
  Key,        /* code = qnum, down */
  Button,     /* code = QemuButton, down */
  MoveTo,     /* x, y: pointer position in the console's pixels */
  MoveBy,     /* x, y: relative motion in pixels */
  ReleaseAll, /* release every key and button still pressed */
};

struct InputEvent {
  InputKind kind = InputKind::MoveTo;
  bool down = false;
  uint32_t code = 0;
  double x = 0, y = 0;

  static InputEvent key(uint32_t qnum, bool down) { return {InputKind::Key, down, qnum, 0, 0}; }
  static InputEvent button(uint32_t b, bool down) { return {InputKind::Button, down, b, 0, 0}; }
  static InputEvent move_to(double x, double y) { return {InputKind::MoveTo, false, 0, x, y}; }
  static InputEvent move_by(double dx, double dy) { return {InputKind::MoveBy, false, 0, dx, dy}; }
  static InputEvent release_all() { return {InputKind::ReleaseAll, false, 0, 0, 0}; }
};

/* One call on the console's Keyboard or Mouse interface. */
struct InputCall {
  enum Method : uint8_t {
    KeyPress,
    KeyRelease,
    ButtonPress,
    ButtonRelease,
    SetAbsPosition,
    RelMotion,
    ReleaseAll, /* not a call: tells InputPacer to release what it pressed */
  };
  Method method;
  uint32_t code = 0; /* qnum or button */
  int32_t x = 0, y = 0; /* SetAbsPosition: position; RelMotion: delta */

  bool operator==(const InputCall &o) const {
    return method == o.method && code == o.code && x == o.x && y == o.y;
  }
};

/* Events waiting for the D-Bus thread. Bounded: while it is full, presses
 * and motion are dropped (and counted) but releases are still taken, so
 * nothing accepted can stay pressed. Consecutive motions are merged (the
 * latest position wins, relative deltas add up), so a burst of mouse
 * moves costs one call. Not thread-safe: the owner locks. */
class InputQueue {
 public:
  static constexpr size_t kCapacity = 512;

  /* False when the event was dropped. */
  bool push(const InputEvent &event);
  void take(std::vector<InputEvent> *out);
  uint64_t dropped() const { return dropped_; }

 private:
  std::vector<InputEvent> events_;
  uint64_t dropped_ = 0;
};

/* The console's pointer as we drive it: its mode and the last position
 * sent. Turns events into calls; what is pressed is InputPacer's business
 * (it knows what was really sent). D-Bus thread only. */
class InputState {
 public:
  /* Mouse.IsAbsolute changed (or was read at connection). */
  void set_absolute(bool absolute);
  bool absolute() const { return absolute_; }

  /* Appends the calls for one event on a width x height console. Pointer
   * positions are clamped inside it; with no surface (0x0) pointer events
   * are dropped. ReleaseAll becomes the ReleaseAll marker. */
  void translate(const InputEvent &event, uint32_t width, uint32_t height,
                 std::vector<InputCall> *out);
  /* A new connection: the pointer position QEMU has is unknown. */
  void forget_position() { have_pos_ = false; }

 private:
  void move_to(double x, double y, uint32_t width, uint32_t height, std::vector<InputCall> *out);
  void move_by(double dx, double dy, uint32_t width, uint32_t height, std::vector<InputCall> *out);

  bool absolute_ = false;
  bool have_pos_ = false;
  int32_t pos_x_ = 0, pos_y_ = 0;      /* last position sent (or reached by deltas) */
  double rest_x_ = 0, rest_y_ = 0;     /* fractions of relative motion not sent yet */
};

/* Calls on their way out, paced: a key or button call goes at least
 * kIntervalUs after the previous one, and everything keeps its order (a
 * move waits behind a paced click). It also knows what is pressed in the
 * guest, from the calls as they go out: ReleaseAll (stop, flush, input
 * switched off) drops everything still waiting, typing included, and sends
 * the releases of what went out pressed, first; a new connection gets
 * those releases too and nothing of the old queue. QEMU's PS/2 keyboard and mouse hold 16
 * bytes for the guest and drop what does not fit (hw/input/ps2.c, a key is
 * up to 3 bytes), and a press and release arriving together in one mouse
 * packet is no click at all: a burst (typed text pasted, xdotool) loses
 * keys and clicks without this. Bounded: beyond kCapacity calls presses and
 * moves are dropped, releases still taken. Not thread-safe. */
class InputPacer {
 public:
  static constexpr int64_t kIntervalUs = 8000;
  static constexpr size_t kCapacity = 2048;

  void add(const std::vector<InputCall> &calls);
  /* Appends to *out the calls that may go at now_us; *next_us is when the
   * next waiting one may (0: none waits). */
  void take_due(int64_t now_us, std::vector<InputCall> *out, int64_t *next_us);
  /* The queue belonged to a lost connection: only releases of what went
   * out pressed remain, for the new one. */
  void new_connection();
  bool empty() const { return calls_.empty(); }
  size_t pressed() const { return keys_down_.size() + buttons_down_.size(); }
  uint64_t dropped() const { return dropped_; }

 private:
  void release_all();

  std::deque<InputCall> calls_;
  std::set<uint32_t> keys_down_, buttons_down_; /* pressed by calls that went out */
  int64_t next_paced_us_ = 0;
  uint64_t dropped_ = 0;
};

/* x clamped into [0, size - 1] and rounded; size must be > 0. */
int32_t clamp_coordinate(double x, uint32_t size);

}  // namespace vmd
