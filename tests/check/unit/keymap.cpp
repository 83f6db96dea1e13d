/* Unit: the key name -> qnum table against lists written here by hand
 * (a PC keyboard's set 1 rows, not the table), its shape (no name twice,
 * qnums in 1..0xff), and docs/keymap.md listing every entry. */
#include "keymap.h"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

/* After the standard headers: check's fail() macro would break <istream>. */
#include <gst/check/gstcheck.h>

namespace {

struct Expect {
  const char *name;
  uint32_t qnum;
};

void check_all(const Expect *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    fail_unless(vmd::keymap_qnum(list[i].name) == list[i].qnum, "%s: 0x%02x, expected 0x%02x",
                list[i].name, vmd::keymap_qnum(list[i].name), list[i].qnum);
}

void check_name(const std::string &name, uint32_t qnum) {
  const Expect e{name.c_str(), qnum};
  check_all(&e, 1);
}

}  // namespace

/* Set 1 numbers the letter rows left to right: Q..P from 0x10, A..L from
 * 0x1e, Z..M from 0x2c. Each letter: W3C "KeyQ", keysyms "q" and "Q". */
GST_START_TEST(test_letters) {
  const struct {
    const char *row;
    uint32_t first;
  } rows[] = {{"QWERTYUIOP", 0x10}, {"ASDFGHJKL", 0x1e}, {"ZXCVBNM", 0x2c}};
  int letters = 0;
  for (auto &r : rows) {
    for (size_t i = 0; r.row[i]; i++, letters++) {
      const char upper = r.row[i];
      const char lower = char(upper - 'A' + 'a');
      check_name(std::string("Key") + upper, r.first + uint32_t(i));
      check_name(std::string(1, upper), r.first + uint32_t(i));
      check_name(std::string(1, lower), r.first + uint32_t(i));
    }
  }
  fail_unless_equals_int(letters, 26);
}
GST_END_TEST;

/* 1..9, 0 are 0x02..0x0b; the keysyms of their US shifted symbols too. */
GST_START_TEST(test_digits) {
  const char *shifted[] = {"exclam",    "at",        "numbersign", "dollar",    "percent",
                           "asciicircum", "ampersand", "asterisk",   "parenleft", "parenright"};
  const char digits[] = "1234567890";
  for (uint32_t i = 0; i < 10; i++) {
    check_name(std::string("Digit") + digits[i], 0x02 + i);
    check_name(std::string(1, digits[i]), 0x02 + i);
    check_name(shifted[i], 0x02 + i);
  }
}
GST_END_TEST;

GST_START_TEST(test_modifiers) {
  const Expect mods[] = {
      {"ShiftLeft", 0x2a},   {"Shift_L", 0x2a},   {"ShiftRight", 0x36}, {"Shift_R", 0x36},
      {"ControlLeft", 0x1d}, {"Control_L", 0x1d}, {"ControlRight", 0x9d}, {"Control_R", 0x9d},
      {"AltLeft", 0x38},     {"Alt_L", 0x38},     {"AltRight", 0xb8},   {"Alt_R", 0xb8},
      {"MetaLeft", 0xdb},    {"Super_L", 0xdb},   {"MetaRight", 0xdc},  {"Super_R", 0xdc},
      /* AltGr on non-US layouts; Meta is Shift+Alt in xkeyboard-config. */
      {"ISO_Level3_Shift", 0xb8}, {"Meta_L", 0x38}, {"Meta_R", 0xb8},
      {"ContextMenu", 0xdd}, {"Menu", 0xdd},
      {"CapsLock", 0x3a},    {"Caps_Lock", 0x3a}, {"NumLock", 0x45},    {"Num_Lock", 0x45},
      {"ScrollLock", 0x46},  {"Scroll_Lock", 0x46},
  };
  check_all(mods, G_N_ELEMENTS(mods));
}
GST_END_TEST;

/* F1-F10 follow each other, F11/F12 and F13-F24 do not (keycodemapdb's
 * AT set 1 column). "F1" is both a keysym and a W3C code. */
GST_START_TEST(test_function_keys) {
  const uint32_t f[24] = {0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x41, 0x42, 0x43, 0x44, 0x57, 0x58,
                          0x5d, 0x5e, 0x5f, 0x55, 0x83, 0xf7, 0x84, 0x5a, 0x74, 0xf9, 0x6d, 0x6f};
  for (int i = 0; i < 24; i++)
    check_name("F" + std::to_string(i + 1), f[i]);
  fail_unless_equals_int(vmd::keymap_qnum("F25"), 0);
  fail_unless_equals_int(vmd::keymap_qnum("F0"), 0);
}
GST_END_TEST;

GST_START_TEST(test_navigation) {
  const Expect nav[] = {
      {"ArrowUp", 0xc8},   {"Up", 0xc8},     {"ArrowDown", 0xd0},  {"Down", 0xd0},
      {"ArrowLeft", 0xcb}, {"Left", 0xcb},   {"ArrowRight", 0xcd}, {"Right", 0xcd},
      {"Insert", 0xd2},    {"Delete", 0xd3}, {"Home", 0xc7},       {"End", 0xcf},
      {"PageUp", 0xc9},    {"Prior", 0xc9},  {"Page_Up", 0xc9},    {"PageDown", 0xd1},
      {"Next", 0xd1},      {"Page_Down", 0xd1},
      {"PrintScreen", 0x54}, {"Print", 0x54}, {"Sys_Req", 0x54},
      {"Pause", 0xc6},     {"Break", 0xc6},
  };
  check_all(nav, G_N_ELEMENTS(nav));
}
GST_END_TEST;

/* The keypad's set 1 codes go row by row: 7 8 9 - / 4 5 6 + / 1 2 3 / 0 .
 * Each digit: W3C "NumpadN", keysym "KP_N" (NumLock on) and the NumLock-off
 * keysym of the same key. */
GST_START_TEST(test_keypad) {
  const struct {
    int digit;
    uint32_t qnum;
    const char *numlock_off;
  } digits[] = {{7, 0x47, "KP_Home"}, {8, 0x48, "KP_Up"},    {9, 0x49, "KP_Prior"},
                {4, 0x4b, "KP_Left"}, {5, 0x4c, "KP_Begin"}, {6, 0x4d, "KP_Right"},
                {1, 0x4f, "KP_End"},  {2, 0x50, "KP_Down"},  {3, 0x51, "KP_Next"},
                {0, 0x52, "KP_Insert"}};
  for (auto &d : digits) {
    check_name("Numpad" + std::to_string(d.digit), d.qnum);
    check_name("KP_" + std::to_string(d.digit), d.qnum);
    check_name(d.numlock_off, d.qnum);
  }
  const Expect rest[] = {
      {"NumpadDecimal", 0x53},  {"KP_Decimal", 0x53},  {"KP_Delete", 0x53},
      {"KP_Separator", 0x53},   {"NumpadAdd", 0x4e},   {"KP_Add", 0x4e},
      {"NumpadSubtract", 0x4a}, {"KP_Subtract", 0x4a}, {"NumpadMultiply", 0x37},
      {"KP_Multiply", 0x37},    {"NumpadDivide", 0xb5}, {"KP_Divide", 0xb5},
      {"NumpadEnter", 0x9c},    {"KP_Enter", 0x9c},    {"NumpadEqual", 0x59},
      {"KP_Equal", 0x59},       {"KP_Page_Up", 0x49},  {"KP_Page_Down", 0x51},
  };
  check_all(rest, G_N_ELEMENTS(rest));
}
GST_END_TEST;

GST_START_TEST(test_punctuation_and_others) {
  const Expect keys[] = {
      {"Backquote", 0x29}, {"grave", 0x29},      {"asciitilde", 0x29},
      {"Minus", 0x0c},     {"underscore", 0x0c}, {"Equal", 0x0d},      {"plus", 0x0d},
      {"BracketLeft", 0x1a}, {"braceleft", 0x1a}, {"BracketRight", 0x1b}, {"braceright", 0x1b},
      {"Backslash", 0x2b}, {"bar", 0x2b},        {"Semicolon", 0x27},  {"colon", 0x27},
      {"Quote", 0x28},     {"apostrophe", 0x28}, {"quotedbl", 0x28},
      {"Comma", 0x33},     {"less", 0x33},       {"Period", 0x34},     {"greater", 0x34},
      {"Slash", 0x35},     {"question", 0x35},
      {"Enter", 0x1c},     {"Return", 0x1c},     {"Tab", 0x0f},        {"ISO_Left_Tab", 0x0f},
      {"Escape", 0x01},    {"Backspace", 0x0e},  {"BackSpace", 0x0e},
      {"Space", 0x39},     {"space", 0x39},
      /* ISO / JIS / Korean keys; Lang1/Lang2 keep their historical qnums,
       * not their 0xf2/0xf1 set 1 codes. */
      {"IntlBackslash", 0x56}, {"IntlRo", 0x73}, {"IntlYen", 0x7d}, {"KanaMode", 0x70},
      {"Convert", 0x79},   {"NonConvert", 0x7b}, {"Lang1", 0x72},      {"Lang2", 0x71},
      {"Hangul", 0x72},    {"Hangul_Hanja", 0x71},
      /* Media and power. */
      {"AudioVolumeMute", 0xa0}, {"XF86AudioMute", 0xa0}, {"AudioVolumeDown", 0xae},
      {"AudioVolumeUp", 0xb0},   {"MediaPlayPause", 0xa2}, {"XF86AudioPlay", 0xa2},
      {"MediaStop", 0xa4},       {"MediaTrackNext", 0x99}, {"MediaTrackPrevious", 0x90},
      {"BrowserHome", 0xb2},     {"Power", 0xde},          {"Sleep", 0xdf},
      {"WakeUp", 0xe3},
  };
  check_all(keys, G_N_ELEMENTS(keys));
}
GST_END_TEST;

GST_START_TEST(test_unknown_names) {
  const char *unknown[] = {"",      "NoSuchKey", "keya",   "KEYA",   "Keya",    "shift_l",
                           "KeyA ", " KeyA",     "KeyAA",  "Digit10", "Numpad10", "KP_10",
                           "Key",   "XF86",      "enter",  "RETURN",  "\xc3\xa4",
                           /* the X11 sinks' name for a key without a keysym */
                           "unknown"};
  for (const char *name : unknown)
    fail_unless_equals_int(vmd::keymap_qnum(name), 0);
  fail_unless_equals_int(vmd::keymap_qnum(nullptr), 0);
}
GST_END_TEST;

GST_START_TEST(test_table_shape) {
  size_t n = 0;
  const vmd::KeyName *keys = vmd::keymap_entries(&n);
  fail_unless(n >= 300, "only %zu entries", n);
  std::set<std::string> seen;
  for (size_t i = 0; i < n; i++) {
    fail_unless(keys[i].name && *keys[i].name, "entry %zu has no name", i);
    fail_unless(seen.insert(keys[i].name).second, "%s appears twice", keys[i].name);
    fail_unless(keys[i].qnum >= 1 && keys[i].qnum <= 0xff, "%s: qnum 0x%x", keys[i].name,
                keys[i].qnum);
    fail_unless(vmd::keymap_qnum(keys[i].name) == keys[i].qnum, "%s: lookup disagrees",
                keys[i].name);
  }
}
GST_END_TEST;

/* The first lookups race to build the sorted copy (each check test runs in
 * a fresh process, so this is the first use here). */
GST_START_TEST(test_concurrent_first_use) {
  size_t n = 0;
  const vmd::KeyName *keys = vmd::keymap_entries(&n);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&] {
      for (size_t i = 0; i < n; i++)
        if (vmd::keymap_qnum(keys[i].name) != keys[i].qnum)
          wrong++;
    });
  }
  for (auto &t : threads)
    t.join();
  fail_unless_equals_int(wrong.load(), 0);
}
GST_END_TEST;

/* docs/keymap.md has every entry on a line with its qnum ("`KP_End`" and
 * "0x4f" on the keypad-1 row). */
GST_START_TEST(test_docs_list_every_entry) {
  const char *dir = g_getenv("VMD_DOCS_DIR");
  fail_unless(dir && *dir, "VMD_DOCS_DIR is not set (meson sets it)");
  const std::string path = std::string(dir) + "/keymap.md";
  std::ifstream in(path);
  fail_unless(in.good(), "cannot read %s", path.c_str());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  size_t n = 0;
  const vmd::KeyName *keys = vmd::keymap_entries(&n);
  for (size_t i = 0; i < n; i++) {
    const std::string name = std::string("`") + keys[i].name + "`";
    char qnum[8];
    snprintf(qnum, sizeof qnum, "0x%02x", keys[i].qnum);
    bool found = false;
    for (const std::string &line : lines)
      found = found || (line.find(name) != std::string::npos && line.find(qnum) != std::string::npos);
    fail_unless(found, "%s: no line with %s and %s", path.c_str(), name.c_str(), qnum);
  }
}
GST_END_TEST;

static Suite *keymap_suite() {
  Suite *s = suite_create("keymap");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_letters);
  tcase_add_test(tc, test_digits);
  tcase_add_test(tc, test_modifiers);
  tcase_add_test(tc, test_function_keys);
  tcase_add_test(tc, test_navigation);
  tcase_add_test(tc, test_keypad);
  tcase_add_test(tc, test_punctuation_and_others);
  tcase_add_test(tc, test_unknown_names);
  tcase_add_test(tc, test_table_shape);
  tcase_add_test(tc, test_concurrent_first_use);
  tcase_add_test(tc, test_docs_list_every_entry);
  return s;
}

GST_CHECK_MAIN(keymap);
