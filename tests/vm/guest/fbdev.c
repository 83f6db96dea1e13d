/* fbdev output: draws straight into /dev/fb0 (vesafb under QEMU -vga std).
 *
 * vesafb cannot change modes, so the mode is whatever the kernel's vga=
 * argument chose; we convert our XRGB8888 canvas into the framebuffer's
 * pixel layout as the kernel describes it (16, 24 or 32 bpp). */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

struct fbdev_output {
  struct output base;
  int fd;
  uint8_t *map;
  size_t map_size;
  struct fb_var_screeninfo var;
  struct fb_fix_screeninfo fix;
  int bytes_per_pixel;
  /* Framebuffer is little-endian XRGB8888: rows can be copied as they are. */
  int same_as_canvas;
};

static uint32_t convert_pixel(const struct fb_var_screeninfo *v, uint32_t xrgb)
{
  uint32_t r = (xrgb >> 16) & 0xff, g = (xrgb >> 8) & 0xff, b = xrgb & 0xff;
  uint32_t px = ((r >> (8 - v->red.length)) << v->red.offset) |
                ((g >> (8 - v->green.length)) << v->green.offset) |
                ((b >> (8 - v->blue.length)) << v->blue.offset);
  if (v->transp.length)
    px |= ((1u << v->transp.length) - 1) << v->transp.offset; /* opaque */
  return px;
}

static int fbdev_set_mode(struct output *out, int width, int height, char *err,
                          size_t errlen)
{
  (void)out, (void)width, (void)height, (void)err, (void)errlen;
  return 0;
}

static int fbdev_present(struct output *out, const struct canvas *c,
                         struct rect r, char *err, size_t errlen)
{
  struct fbdev_output *fb = (struct fbdev_output *)out;
  const int bpp = fb->bytes_per_pixel;

  (void)err, (void)errlen;
  r = canvas_clip(c, r);
  for (int y = r.y; y < r.y + r.h; y++) {
    const uint32_t *src = c->pixels + (size_t)y * (size_t)c->width + r.x;
    uint8_t *dst = fb->map + (size_t)(y + fb->var.yoffset) * fb->fix.line_length +
                   (size_t)(r.x + fb->var.xoffset) * (size_t)bpp;
    if (fb->same_as_canvas) {
      memcpy(dst, src, (size_t)r.w * 4);
      continue;
    }
    for (int x = 0; x < r.w; x++, dst += bpp) {
      /* Pixel values are CPU-endian (little) packed integers. */
      uint32_t px = convert_pixel(&fb->var, src[x]);
      for (int i = 0; i < bpp; i++)
        dst[i] = (uint8_t)(px >> (8 * i));
    }
  }
  return 0;
}

static void fbdev_destroy(struct output *out)
{
  struct fbdev_output *fb = (struct fbdev_output *)out;
  if (fb->map)
    munmap(fb->map, fb->map_size);
  if (fb->fd >= 0)
    close(fb->fd);
  free(fb);
}

static int check_layout(const struct fbdev_output *fb, char *err, size_t errlen)
{
  const struct fb_var_screeninfo *v = &fb->var;

  if (fb->fix.type != FB_TYPE_PACKED_PIXELS ||
      (fb->fix.visual != FB_VISUAL_TRUECOLOR &&
       fb->fix.visual != FB_VISUAL_DIRECTCOLOR)) {
    snprintf(err, errlen, "fb: unsupported type %u visual %u", fb->fix.type,
             fb->fix.visual);
    return -1;
  }
  if (v->bits_per_pixel != 16 && v->bits_per_pixel != 24 &&
      v->bits_per_pixel != 32) {
    snprintf(err, errlen, "fb: unsupported bits_per_pixel %u",
             v->bits_per_pixel);
    return -1;
  }
  const struct fb_bitfield *f[] = { &v->red, &v->green, &v->blue, &v->transp };
  for (int i = 0; i < 4; i++) {
    if (f[i]->length > 8 || f[i]->offset + f[i]->length > v->bits_per_pixel ||
        (i < 3 && f[i]->length == 0)) {
      snprintf(err, errlen, "fb: unsupported channel layout (bitfield %d)", i);
      return -1;
    }
  }
  size_t needed = (size_t)(v->yoffset + v->yres) * fb->fix.line_length;
  if (fb->fix.line_length < (v->xoffset + v->xres) * (v->bits_per_pixel / 8) ||
      needed > fb->fix.smem_len) {
    snprintf(err, errlen, "fb: line_length %u / smem_len %u too small",
             fb->fix.line_length, fb->fix.smem_len);
    return -1;
  }
  return 0;
}

struct output *fbdev_output_open(const char *path, char *err, size_t errlen)
{
  struct fbdev_output *fb = calloc(1, sizeof(*fb));
  if (!fb) {
    snprintf(err, errlen, "fb: out of memory");
    return NULL;
  }
  fb->fd = open(path, O_RDWR | O_CLOEXEC);
  if (fb->fd < 0) {
    snprintf(err, errlen, "fb: open %s: %s", path, strerror(errno));
    goto fail;
  }
  if (ioctl(fb->fd, FBIOGET_VSCREENINFO, &fb->var) < 0 ||
      ioctl(fb->fd, FBIOGET_FSCREENINFO, &fb->fix) < 0) {
    snprintf(err, errlen, "fb: screeninfo %s: %s", path, strerror(errno));
    goto fail;
  }
  if (check_layout(fb, err, errlen) < 0)
    goto fail;

  fb->bytes_per_pixel = (int)fb->var.bits_per_pixel / 8;
  fb->same_as_canvas = fb->var.bits_per_pixel == 32 &&
                       fb->var.red.offset == 16 && fb->var.red.length == 8 &&
                       fb->var.green.offset == 8 && fb->var.green.length == 8 &&
                       fb->var.blue.offset == 0 && fb->var.blue.length == 8 &&
                       fb->var.transp.length == 0;
  fb->map_size = (size_t)(fb->var.yoffset + fb->var.yres) * fb->fix.line_length;
  fb->map = mmap(NULL, fb->map_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                 fb->fd, 0);
  if (fb->map == MAP_FAILED) {
    fb->map = NULL;
    snprintf(err, errlen, "fb: mmap %s: %s", path, strerror(errno));
    goto fail;
  }

  fb->base.name = "fb";
  fb->base.width = (int)fb->var.xres;
  fb->base.height = (int)fb->var.yres;
  /* Report depth the way QEMU's VGA names it: 15 for 16-bit x1r5g5b5, so
   * tests can tell it from r5g6b5. */
  fb->base.bpp = fb->var.bits_per_pixel == 16 && fb->var.green.length == 5
                     ? 15
                     : (int)fb->var.bits_per_pixel;
  fb->base.set_mode = fbdev_set_mode;
  fb->base.present = fbdev_present;
  fb->base.destroy = fbdev_destroy;
  return &fb->base;

fail:
  fbdev_destroy(&fb->base);
  return NULL;
}
