/* Status lines on the serial console.
 *
 * The host side (tests, demo) waits for these exact lines in the serial log,
 * so their format is an interface:
 *   VMPATTERN READY WxH bpp=B output=fb|drm
 *   VMPATTERN ERROR <what>
 *   VMPATTERN cursor X,Y hot HX,HY            (cursor.h)
 *   VMINPUT dev N name="NAME" [abs_x=MIN..MAX] [abs_y=MIN..MAX]   (input.h)
 *   VMINPUT ev N TYPE CODE VALUE              (input.h)
 *
 * Lines go to stdout: /init starts vmpattern with stdout on /dev/console
 * (the serial port with console=ttyS0), and a manual run shows them in the
 * terminal.
 */
#ifndef VMPATTERN_LOG_H
#define VMPATTERN_LOG_H

void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "VMINPUT ..." lines: the input report, a prefix of its own so host tests
 * can take every input line apart from the status lines. */
void log_input(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
