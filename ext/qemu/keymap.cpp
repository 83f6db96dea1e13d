/* gst-vmdisplay: key name -> QEMU qnum table.
 *
 * qnum is what keycodemapdb (QEMU's ui/keycodemapdb) derives from its
 * "AT set1 keycode" column: the set 1 make code, 0xE0 xx becoming 0x80 | xx.
 * QEMU turns it into a QKeyCode (qemu_input_key_number_to_qcode()) and the
 * emulated keyboard sends whatever the guest expects from there. Exceptions
 * and traps, each checked against keycodemapdb's generated qnum -> qcode map:
 *  - Pause has no plain make code (E1 1D 45); its qnum is 0xc6 (E0 46).
 *  - Hangeul and Hanja are 0xf2 and 0xf1 in set 1 (keys without a release
 *    code), but their qnums stay 0x72 and 0x71: keymap-gen special-cases
 *    them so the wire values QEMU always used do not change.
 *  - PrintScreen is 0x54 (the SysRq code; QEMU also accepts 0xb7 for it).
 *  - The context-menu key is E0 5D = 0xdd (QEMU's "compose"); 0x9e is a
 *    different, rare key (KEY_MENU).
 *  - F13-F24 only have QKeyCodes from QEMU 8.0; older QEMU drops them.
 * Keys QEMU has no QKeyCode for (Katakana, Lang3/Lang5, KP_Separator's own
 * JIS keypad comma, BrowserSearch, ...) are left out: QEMU would drop them.
 *
 * X names are what xkeyboard-config puts on the key (symbols/pc, inet,
 * keypad, jp, kr): level 1 is what xvimagesink/glimagesink send whatever
 * the modifiers, the shifted level is what gdk_keyval_name() gives with Shift
 * held. Shifted symbols are placed as on a US keyboard ("less" is
 * Shift+Comma, not the ISO 102nd key).
 * tests/check/unit/keymap.cpp checks the table against a list of its own.
 */
#include "keymap.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <vector>

namespace vmd {
namespace {

constexpr KeyName kKeys[] = {
    /* Letters: W3C code, X keysym unshifted and shifted. */
    {"KeyA", 0x1e}, {"a", 0x1e}, {"A", 0x1e},
    {"KeyB", 0x30}, {"b", 0x30}, {"B", 0x30},
    {"KeyC", 0x2e}, {"c", 0x2e}, {"C", 0x2e},
    {"KeyD", 0x20}, {"d", 0x20}, {"D", 0x20},
    {"KeyE", 0x12}, {"e", 0x12}, {"E", 0x12},
    {"KeyF", 0x21}, {"f", 0x21}, {"F", 0x21},
    {"KeyG", 0x22}, {"g", 0x22}, {"G", 0x22},
    {"KeyH", 0x23}, {"h", 0x23}, {"H", 0x23},
    {"KeyI", 0x17}, {"i", 0x17}, {"I", 0x17},
    {"KeyJ", 0x24}, {"j", 0x24}, {"J", 0x24},
    {"KeyK", 0x25}, {"k", 0x25}, {"K", 0x25},
    {"KeyL", 0x26}, {"l", 0x26}, {"L", 0x26},
    {"KeyM", 0x32}, {"m", 0x32}, {"M", 0x32},
    {"KeyN", 0x31}, {"n", 0x31}, {"N", 0x31},
    {"KeyO", 0x18}, {"o", 0x18}, {"O", 0x18},
    {"KeyP", 0x19}, {"p", 0x19}, {"P", 0x19},
    {"KeyQ", 0x10}, {"q", 0x10}, {"Q", 0x10},
    {"KeyR", 0x13}, {"r", 0x13}, {"R", 0x13},
    {"KeyS", 0x1f}, {"s", 0x1f}, {"S", 0x1f},
    {"KeyT", 0x14}, {"t", 0x14}, {"T", 0x14},
    {"KeyU", 0x16}, {"u", 0x16}, {"U", 0x16},
    {"KeyV", 0x2f}, {"v", 0x2f}, {"V", 0x2f},
    {"KeyW", 0x11}, {"w", 0x11}, {"W", 0x11},
    {"KeyX", 0x2d}, {"x", 0x2d}, {"X", 0x2d},
    {"KeyY", 0x15}, {"y", 0x15}, {"Y", 0x15},
    {"KeyZ", 0x2c}, {"z", 0x2c}, {"Z", 0x2c},

    /* Digit row, with the US shifted symbols. */
    {"Digit1", 0x02}, {"1", 0x02}, {"exclam", 0x02},
    {"Digit2", 0x03}, {"2", 0x03}, {"at", 0x03},
    {"Digit3", 0x04}, {"3", 0x04}, {"numbersign", 0x04},
    {"Digit4", 0x05}, {"4", 0x05}, {"dollar", 0x05},
    {"Digit5", 0x06}, {"5", 0x06}, {"percent", 0x06},
    {"Digit6", 0x07}, {"6", 0x07}, {"asciicircum", 0x07},
    {"Digit7", 0x08}, {"7", 0x08}, {"ampersand", 0x08},
    {"Digit8", 0x09}, {"8", 0x09}, {"asterisk", 0x09},
    {"Digit9", 0x0a}, {"9", 0x0a}, {"parenleft", 0x0a},
    {"Digit0", 0x0b}, {"0", 0x0b}, {"parenright", 0x0b},

    /* US punctuation keys. */
    {"Backquote", 0x29}, {"grave", 0x29}, {"asciitilde", 0x29},
    {"Minus", 0x0c}, {"minus", 0x0c}, {"underscore", 0x0c},
    {"Equal", 0x0d}, {"equal", 0x0d}, {"plus", 0x0d},
    {"BracketLeft", 0x1a}, {"bracketleft", 0x1a}, {"braceleft", 0x1a},
    {"BracketRight", 0x1b}, {"bracketright", 0x1b}, {"braceright", 0x1b},
    {"Backslash", 0x2b}, {"backslash", 0x2b}, {"bar", 0x2b},
    {"Semicolon", 0x27}, {"semicolon", 0x27}, {"colon", 0x27},
    {"Quote", 0x28}, {"apostrophe", 0x28}, {"quotedbl", 0x28},
    {"Comma", 0x33}, {"comma", 0x33}, {"less", 0x33},
    {"Period", 0x34}, {"period", 0x34}, {"greater", 0x34},
    {"Slash", 0x35}, {"slash", 0x35}, {"question", 0x35},

    /* Whitespace and editing; "Tab" is both a W3C code and a keysym, and
     * Shift+Tab is ISO_Left_Tab in X. */
    {"Space", 0x39}, {"space", 0x39},
    {"Enter", 0x1c}, {"Return", 0x1c},
    {"Tab", 0x0f}, {"ISO_Left_Tab", 0x0f},
    {"Backspace", 0x0e}, {"BackSpace", 0x0e},
    {"Escape", 0x01},
    {"CapsLock", 0x3a}, {"Caps_Lock", 0x3a},

    /* Function keys: the same names in both schemes. F11/F12 and F13-F24
     * are not in sequence with F1-F10 in set 1. */
    {"F1", 0x3b}, {"F2", 0x3c}, {"F3", 0x3d}, {"F4", 0x3e},
    {"F5", 0x3f}, {"F6", 0x40}, {"F7", 0x41}, {"F8", 0x42},
    {"F9", 0x43}, {"F10", 0x44}, {"F11", 0x57}, {"F12", 0x58},
    {"F13", 0x5d}, {"F14", 0x5e}, {"F15", 0x5f}, {"F16", 0x55},
    {"F17", 0x83}, {"F18", 0xf7}, {"F19", 0x84}, {"F20", 0x5a},
    {"F21", 0x74}, {"F22", 0xf9}, {"F23", 0x6d}, {"F24", 0x6f},

    /* Modifiers. X: Super_L/R are the Windows keys; Meta_L/R are Shift+Alt
     * in xkeyboard-config's default (altwin(meta_alt)); AltGr sends
     * ISO_Level3_Shift on most non-US layouts. Firefox before 118 sent
     * OSLeft/OSRight for the Windows keys. */
    {"ShiftLeft", 0x2a}, {"Shift_L", 0x2a},
    {"ShiftRight", 0x36}, {"Shift_R", 0x36},
    {"ControlLeft", 0x1d}, {"Control_L", 0x1d},
    {"ControlRight", 0x9d}, {"Control_R", 0x9d},
    {"AltLeft", 0x38}, {"Alt_L", 0x38}, {"Meta_L", 0x38},
    {"AltRight", 0xb8}, {"Alt_R", 0xb8}, {"Meta_R", 0xb8}, {"ISO_Level3_Shift", 0xb8},
    {"MetaLeft", 0xdb}, {"OSLeft", 0xdb}, {"Super_L", 0xdb},
    {"MetaRight", 0xdc}, {"OSRight", 0xdc}, {"Super_R", 0xdc},
    {"ContextMenu", 0xdd}, {"Menu", 0xdd},

    /* Navigation block. X names Page Up/Down "Prior"/"Next" (XKeysymToString)
     * or "Page_Up"/"Page_Down" (gdk_keyval_name). */
    {"Insert", 0xd2},
    {"Delete", 0xd3},
    {"Home", 0xc7},
    {"End", 0xcf},
    {"PageUp", 0xc9}, {"Prior", 0xc9}, {"Page_Up", 0xc9},
    {"PageDown", 0xd1}, {"Next", 0xd1}, {"Page_Down", 0xd1},
    {"ArrowUp", 0xc8}, {"Up", 0xc8},
    {"ArrowDown", 0xd0}, {"Down", 0xd0},
    {"ArrowLeft", 0xcb}, {"Left", 0xcb},
    {"ArrowRight", 0xcd}, {"Right", 0xcd},

    /* Print/SysRq and Pause/Break: one key each, the second X name is its
     * Alt (Sys_Req) or Ctrl (Break) level. */
    {"PrintScreen", 0x54}, {"Print", 0x54}, {"Sys_Req", 0x54},
    {"ScrollLock", 0x46}, {"Scroll_Lock", 0x46},
    {"Pause", 0xc6}, {"Break", 0xc6},
    {"NumLock", 0x45}, {"Num_Lock", 0x45},

    /* Keypad: W3C code, X with NumLock on, X with NumLock off (level 1,
     * what the X11 sinks always send). KP_Separator is on the decimal key
     * in locales with a decimal comma (xkeyboard-config symbols/kpdl). */
    {"Numpad0", 0x52}, {"KP_0", 0x52}, {"KP_Insert", 0x52},
    {"Numpad1", 0x4f}, {"KP_1", 0x4f}, {"KP_End", 0x4f},
    {"Numpad2", 0x50}, {"KP_2", 0x50}, {"KP_Down", 0x50},
    {"Numpad3", 0x51}, {"KP_3", 0x51}, {"KP_Next", 0x51}, {"KP_Page_Down", 0x51},
    {"Numpad4", 0x4b}, {"KP_4", 0x4b}, {"KP_Left", 0x4b},
    {"Numpad5", 0x4c}, {"KP_5", 0x4c}, {"KP_Begin", 0x4c},
    {"Numpad6", 0x4d}, {"KP_6", 0x4d}, {"KP_Right", 0x4d},
    {"Numpad7", 0x47}, {"KP_7", 0x47}, {"KP_Home", 0x47},
    {"Numpad8", 0x48}, {"KP_8", 0x48}, {"KP_Up", 0x48},
    {"Numpad9", 0x49}, {"KP_9", 0x49}, {"KP_Prior", 0x49}, {"KP_Page_Up", 0x49},
    {"NumpadDecimal", 0x53}, {"KP_Decimal", 0x53}, {"KP_Delete", 0x53},
    {"KP_Separator", 0x53},
    {"NumpadAdd", 0x4e}, {"KP_Add", 0x4e},
    {"NumpadSubtract", 0x4a}, {"KP_Subtract", 0x4a},
    {"NumpadMultiply", 0x37}, {"KP_Multiply", 0x37},
    {"NumpadDivide", 0xb5}, {"KP_Divide", 0xb5},
    {"NumpadEnter", 0x9c}, {"KP_Enter", 0x9c},
    {"NumpadEqual", 0x59}, {"KP_Equal", 0x59},
    {"NumpadComma", 0x7e},

    /* ISO and JIS/Korean extra keys. The ISO 102nd key's X names depend on
     * the layout ("less" on US is Shift+Comma), so only its W3C code is
     * here. Zenkaku_Hankaku is the JIS key left of 1, the Backquote
     * position (xkeyboard-config aliases <HZTG> to <TLDE>). */
    {"IntlBackslash", 0x56},
    {"IntlRo", 0x73},
    {"IntlYen", 0x7d},
    {"KanaMode", 0x70}, {"Hiragana_Katakana", 0x70},
    {"Convert", 0x79}, {"Henkan", 0x79}, {"Henkan_Mode", 0x79},
    {"NonConvert", 0x7b}, {"Muhenkan", 0x7b},
    {"Lang4", 0x77}, {"Hiragana", 0x77},
    {"Zenkaku_Hankaku", 0x29},
    {"Lang1", 0x72}, {"Hangul", 0x72},
    {"Lang2", 0x71}, {"Hangul_Hanja", 0x71},

    /* Media and browser keys (E0-prefixed "consumer" codes). X names from
     * xkeyboard-config symbols/inet. */
    {"AudioVolumeMute", 0xa0}, {"XF86AudioMute", 0xa0},
    {"AudioVolumeDown", 0xae}, {"XF86AudioLowerVolume", 0xae},
    {"AudioVolumeUp", 0xb0}, {"XF86AudioRaiseVolume", 0xb0},
    {"MediaPlayPause", 0xa2}, {"XF86AudioPlay", 0xa2},
    {"MediaStop", 0xa4}, {"XF86AudioStop", 0xa4},
    {"MediaTrackNext", 0x99}, {"XF86AudioNext", 0x99},
    {"MediaTrackPrevious", 0x90}, {"XF86AudioPrev", 0x90},
    {"MediaSelect", 0xed}, {"XF86AudioMedia", 0xed},
    {"BrowserHome", 0xb2}, {"XF86HomePage", 0xb2},
    {"BrowserBack", 0xea}, {"XF86Back", 0xea},
    {"BrowserForward", 0xe9}, {"XF86Forward", 0xe9},
    {"BrowserRefresh", 0xe7}, {"XF86Reload", 0xe7},
    {"BrowserStop", 0xe8}, {"Cancel", 0xe8},
    {"BrowserFavorites", 0xe6}, {"XF86Favorites", 0xe6},
    {"LaunchMail", 0xec}, {"XF86Mail", 0xec},
    {"LaunchApp1", 0xeb}, {"XF86MyComputer", 0xeb},
    {"LaunchApp2", 0xa1}, {"XF86Calculator", 0xa1},

    /* ACPI power keys, E0 5E / E0 5F / E0 63 in set 1. */
    {"Power", 0xde}, {"XF86PowerOff", 0xde},
    {"Sleep", 0xdf}, {"XF86Sleep", 0xdf},
    {"WakeUp", 0xe3}, {"XF86WakeUp", 0xe3},

    /* Sun-style editing keys (xkeyboard-config symbols/inet names the
     * Again key "Redo"). Help, Undo and Find are names in both schemes. */
    {"Help", 0xf5},
    {"Undo", 0x87},
    {"Find", 0xc1},
    {"Again", 0x85}, {"Redo", 0x85},
    {"Props", 0x86}, {"SunProps", 0x86},
    {"SunFront", 0x8c},
    {"Copy", 0xf8}, {"XF86Copy", 0xf8},
    {"Paste", 0x65}, {"XF86Paste", 0x65},
    {"Cut", 0xbc}, {"XF86Cut", 0xbc},
    {"Open", 0x64}, {"XF86Open", 0x64},
};

bool name_less(const KeyName &a, const KeyName &b) { return std::strcmp(a.name, b.name) < 0; }

/* The table sorted by name, built once (C++11 guarantees a function-local
 * static is initialised once, even with concurrent first calls). */
const std::vector<KeyName> &sorted_keys() {
  static const std::vector<KeyName> sorted = [] {
    std::vector<KeyName> v(std::begin(kKeys), std::end(kKeys));
    std::sort(v.begin(), v.end(), name_less);
    return v;
  }();
  return sorted;
}

}  // namespace

uint32_t keymap_qnum(const char *name) {
  if (!name)
    return 0;
  const std::vector<KeyName> &keys = sorted_keys();
  const KeyName needle{name, 0};
  auto it = std::lower_bound(keys.begin(), keys.end(), needle, name_less);
  if (it == keys.end() || std::strcmp(it->name, name) != 0)
    return 0;
  return it->qnum;
}

const KeyName *keymap_entries(size_t *count) {
  *count = std::size(kKeys);
  return kKeys;
}

}  // namespace vmd
