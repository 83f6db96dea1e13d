/* fake-qemu: a scripted stand-in for QEMU's D-Bus display (-display dbus),
 * for tests of qemudbussrc.
 *
 * It plays QEMU's side of both connection styles:
 *  - peer-to-peer: a QMP UNIX socket (greeting, qmp_capabilities, getfd with
 *    SCM_RIGHTS, add_client protocol "@dbus-display"), then the display
 *    objects on the handed-over socket;
 *  - bus: the same objects on a message bus, queued owner of "org.qemu".
 * Once a client registered a listener, the test drives it with exact
 * (and deliberately malformed) listener calls that real QEMU 7.2 cannot
 * produce, e.g. ScanoutMap from QEMU >= 9.2.
 *
 * The fake runs its own GMainContext on its own thread; every public method
 * may be called from the test thread. It uses GLib/GIO only (no GStreamer).
 */
#pragma once

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fakeqemu {

struct FakeQemuOptions {
  std::string vm_name = "fakevm";
  // QEMU reports the all-zero UUID when started without -uuid.
  std::string uuid = "00000000-0000-0000-0000-000000000000";
  std::vector<uint32_t> console_ids = {0};
  std::string console_type = "Graphic";  // or "Text"
  // Per console, in console_ids' order: Console.Type and Console.Label where
  // given (shorter vectors leave the rest at console_type and "VGA").
  std::vector<std::string> console_types, console_labels;
  uint32_t console_width = 640, console_height = 480;
  // Mouse.IsAbsolute at start (QEMU: true with usb-tablet/virtio-tablet).
  bool mouse_absolute = false;
  // Console.SetUIInfo succeeds (virtio-gpu) instead of failing with
  // org.qemu.Display1.Error.Unsupported (std VGA). Either way it is logged.
  bool ui_info_supported = false;
  // Right after the listener handshake, read the listener's properties with
  // org.freedesktop.DBus.Properties.GetAll, blocking like QEMU does. Every
  // QEMU version does this (7.2 through its GDBusProxy, >= 8.1 also to read
  // Interfaces); false skips it to isolate handshake problems.
  bool read_listener_interfaces = true;
  // QEMU's GDBusProxy uses GDBus' default call timeout (25 s).
  int listener_getall_timeout_ms = 25000;
  // p2p: QEMU exports its objects on a new client connection from a main
  // loop callback after the handshake, so a call sent right after the
  // handshake can fail with "Object does not exist" (UnknownMethod). The
  // fake queues early messages instead (deterministic); a value > 0 opens
  // such a window on purpose: for that long the objects are not exported.
  int p2p_export_delay_ms = 0;
  // QMP scripting: make a command fail with this error text ("" = succeed).
  std::string qmp_fail_getfd, qmp_fail_add_client;
  // Put an asynchronous {"event": ...} line in front of each reply, as real
  // QEMU can; clients must skip events while waiting for their reply.
  bool qmp_send_event_before_reply = true;
};

class FakeQemu {
 public:
  // Peer-to-peer mode: serve QMP on a UNIX socket at qmp_path (a stale file
  // there is replaced, like QEMU does). One QMP client at a time; further
  // connections wait in the listen backlog, as with QEMU's socket chardev.
  static std::unique_ptr<FakeQemu> start_p2p(const std::string &qmp_path,
                                             const FakeQemuOptions &options, std::string *error);
  // Bus mode: connect to the bus at bus_address, export the objects and
  // queue for "org.qemu" (flags 0, so several fakes queue up). Returns once
  // the RequestName reply arrived: the fake is then owner or queued.
  static std::unique_ptr<FakeQemu> start_bus(const std::string &bus_address,
                                             const FakeQemuOptions &options, std::string *error);
  // Stops everything: aborts a handshake in progress, closes the listener,
  // display and QMP connections (the client sees them close), joins the
  // thread, removes the QMP socket file.
  ~FakeQemu();

  FakeQemu(const FakeQemu &) = delete;
  FakeQemu &operator=(const FakeQemu &) = delete;

  // True once a listener registered, its handshake finished and (if enabled)
  // its properties were read. Only one listener is kept: a new registration
  // replaces (and closes) the previous one once its own handshake is done;
  // in bus mode a second registration from the same bus client is refused
  // with org.qemu.Display1.Error.Invalid "`:1.N` is already registered!"
  // (QEMU 7.2; newer QEMU keeps several listeners).
  bool wait_for_listener(int timeout_ms);
  // Console id the current listener registered on, or -1 without listener.
  int64_t listener_console() const;
  // The listener's Interfaces property (empty if absent or not read).
  std::vector<std::string> listener_interfaces() const;

  // Calls on the client's /org/qemu/Display1/Listener, synchronous with the
  // call timeout (default 5 s). They return false and fill *error (the
  // GError text, which includes the D-Bus error name) when there is no
  // listener, the client replies with an error, or the call times out.
  // Unlike QEMU these wait for the reply (see post_raw for QEMU's way).
  bool scanout(uint32_t w, uint32_t h, uint32_t stride, uint32_t pixman_format,
               const std::vector<uint8_t> &data, std::string *error = nullptr);
  bool update(int32_t x, int32_t y, int32_t w, int32_t h, uint32_t stride, uint32_t pixman_format,
              const std::vector<uint8_t> &data, std::string *error = nullptr);
  // memfd is dup'ed into a GUnixFDList; the caller keeps its own fd.
  // Interface org.qemu.Display1.Listener.Unix.Map (QEMU >= 9.2).
  bool scanout_map(int memfd, uint32_t offset, uint32_t w, uint32_t h, uint32_t stride,
                   uint32_t pixman_format, std::string *error = nullptr);
  bool update_map(int32_t x, int32_t y, int32_t w, int32_t h, std::string *error = nullptr);
  // DMA-BUF scanouts (gl=on). fds are dup'ed; the caller keeps its own.
  // ScanoutDMABUF (QEMU >= 7.0): width/height/stride of plane 0.
  bool scanout_dmabuf(int fd, uint32_t w, uint32_t h, uint32_t stride, uint32_t fourcc,
                      uint64_t modifier, bool y0_top, std::string *error = nullptr);
  // UpdateDMABUF: QEMU waits for its reply (the guest's frame acknowledgement).
  bool update_dmabuf(int32_t x, int32_t y, int32_t w, int32_t h, std::string *error = nullptr);
  // Interface org.qemu.Display1.Listener.Unix.ScanoutDMABUF2 (QEMU >= 10.1).
  struct Dmabuf2 {
    std::vector<int> fds;
    uint32_t x = 0, y = 0, w = 0, h = 0;
    std::vector<uint32_t> offsets, strides;
    uint32_t num_planes = 1, fourcc = 0, backing_width = 0, backing_height = 0;
    uint64_t modifier = 0;
    bool y0_top = false;
  };
  bool scanout_dmabuf2(const Dmabuf2 &d, std::string *error = nullptr);
  bool disable(std::string *error = nullptr);
  bool mouse_set(int32_t x, int32_t y, int32_t on, std::string *error = nullptr);
  bool cursor_define(int32_t w, int32_t h, int32_t hot_x, int32_t hot_y,
                     const std::vector<uint8_t> &argb, std::string *error = nullptr);
  // Any method on any interface with any argument tuple, for malformed
  // messages. params may be NULL or floating (it is sunk); a params that is
  // not a tuple is refused. fds may be NULL.
  bool call_raw(const std::string &interface, const std::string &method, GVariant *params,
                GUnixFDList *fds, std::string *error = nullptr);
  // Like call_raw, but the way QEMU really sends Scanout, Update, Disable,
  // MouseSet, CursorDefine and UpdateMap: flagged NO_REPLY_EXPECTED, not
  // waiting. Returns once the message is written (flushed).
  bool post_raw(const std::string &interface, const std::string &method, GVariant *params,
                GUnixFDList *fds, std::string *error = nullptr);
  void set_call_timeout(int timeout_ms);

  // Close the listener connection (QEMU dropping the client's listener).
  void drop_listener();

  // Input the client sent on any console, accepted calls only, in order:
  // "kbd.press 30", "kbd.release 30", "mouse.press 0", "mouse.release 0",
  // "mouse.abs 10 20", "mouse.rel -3 4".
  std::vector<std::string> input_log() const;
  // Every SetUIInfo call, in order: "800x600 212x159mm at 0,0".
  std::vector<std::string> ui_info_log() const;
  // Changes Mouse.IsAbsolute and emits PropertiesChanged, like QEMU when the
  // guest switches between relative and absolute pointer devices.
  void set_mouse_absolute(bool absolute);

  // QMP commands received, one per line: the command name, then its
  // arguments as compact JSON if it had any, e.g.
  // 'add_client {"protocol":"@dbus-display","fdname":"x"}'.
  std::string qmp_log() const;

 private:
  struct Impl;
  // Passkey: only start_p2p/start_bus can build one, yet std::make_unique
  // can call the public constructor.
  struct Key {
    explicit Key() = default;
  };

 public:
  FakeQemu(Key, std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fakeqemu
