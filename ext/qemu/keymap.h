/* gst-vmdisplay: key names -> QEMU "qnum" key numbers.
 *
 * QEMU's D-Bus keyboard (org.qemu.Display1.Keyboard.Press/Release) takes a
 * qnum: the XT (PC scan code set 1) make code of the key, with E0-prefixed
 * keys sent as 0x80 | code (Right Ctrl E0 1D -> 0x9d). GstNavigation key
 * events carry a key *name* instead: an X keysym name from the X11 sinks and
 * GTK applications, a W3C KeyboardEvent.code from a browser. This table maps
 * both to the physical key, so the guest applies its own layout.
 * docs/keymap.md lists every entry and why.
 *
 * Plain C++: no GLib, safe to call from any thread.
 */
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmd {

struct KeyName {
  const char *name; /* X keysym name ("KP_End") or W3C code ("Numpad1") */
  uint16_t qnum;    /* 1..0xff */
};

/* QEMU qnum for a key name, or 0 when the name is unknown. Accepts both
 * X keysym names (what xvimagesink/ximagesink/glimagesink, and so
 * autovideosink, put in GstNavigation key events: the key's first-level
 * keysym, "a", "1", "Return", "Shift_L", "KP_End", "F1", "Up"; applications
 * forwarding GTK events with gdk_keyval_name() send the produced keysym, "A",
 * "exclam", "KP_1", "ISO_Left_Tab", ...) and W3C
 * KeyboardEvent.code names ("KeyA", "Digit1", "ShiftLeft", "NumpadEnter",
 * "IntlBackslash", "MetaLeft", ...). Keysyms that are the shifted symbol of
 * a key map to that key on a US layout ("exclam" -> Digit1, "A" -> KeyA,
 * "colon" -> Semicolon, "ISO_Left_Tab" -> Tab); numlock-off keypad keysyms
 * ("KP_End") map to the keypad key. Case-sensitive, as both sources are. */
uint32_t keymap_qnum(const char *name); /* nullptr -> 0 */

/* Every entry (one table both lookups use), for docs and tests. */
const KeyName *keymap_entries(size_t *count);

}  // namespace vmd
