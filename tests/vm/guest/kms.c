/* DRM/KMS output with dumb buffers (bochs under QEMU -vga std; virtio-gpu
 * works the same way and needs the DIRTYFB call), and the legacy cursor
 * ioctls for the hardware cursor (virtio-gpu has a cursor plane, bochs has
 * none).
 *
 * Raw ioctls on purpose: the guest program is linked statically and libdrm
 * would only wrap these few calls. */
#include "output.h"

#include <drm.h>
#include <drm_mode.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* One dumb buffer with its framebuffer object and CPU mapping. */
struct dumb {
  uint32_t handle;
  uint32_t fb_id;
  uint32_t pitch;
  uint64_t size;
  uint8_t *map;
  int width;
  int height;
};

struct kms_output {
  struct output base;
  int fd;
  uint32_t connector_id;
  uint32_t crtc_id;
  struct drm_mode_modeinfo *modes; /* the connector's mode list */
  uint32_t n_modes;
  struct dumb shown;    /* scanned out now */
  struct dumb pending;  /* set_mode's new buffer, shown by the next present */
  struct drm_mode_modeinfo pending_mode;
  struct dumb cursor;   /* the cursor image; no framebuffer object */
  int dirty_unsupported;
};

static int xioctl(int fd, unsigned long req, void *arg)
{
  int r;
  do
    r = ioctl(fd, req, arg);
  while (r < 0 && (errno == EINTR || errno == EAGAIN));
  return r;
}

static void dumb_destroy(int fd, struct dumb *d)
{
  if (d->map)
    munmap(d->map, d->size);
  if (d->fb_id) {
    uint32_t fb_id = d->fb_id;
    xioctl(fd, DRM_IOCTL_MODE_RMFB, &fb_id);
  }
  if (d->handle) {
    struct drm_mode_destroy_dumb destroy = { .handle = d->handle };
    xioctl(fd, DRM_IOCTL_MODE_DESTROY_DUMB, &destroy);
  }
  memset(d, 0, sizeof(*d));
}

/* with_fb: also make an XRGB8888 framebuffer object for scanout. The legacy
 * cursor ioctls take the buffer's handle instead (the kernel wraps it as
 * ARGB8888 itself). */
static int dumb_create(int fd, int width, int height, int with_fb,
                       struct dumb *d, char *err, size_t errlen)
{
  memset(d, 0, sizeof(*d));

  struct drm_mode_create_dumb create = {
    .width = (uint32_t)width, .height = (uint32_t)height, .bpp = 32,
  };
  if (xioctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, &create) < 0) {
    snprintf(err, errlen, "drm: CREATE_DUMB %dx%d: %s", width, height,
             strerror(errno));
    return -1;
  }
  d->handle = create.handle;
  d->pitch = create.pitch;
  d->size = create.size;
  d->width = width;
  d->height = height;

  /* Legacy ADDFB with bpp 32 / depth 24 means XRGB8888. */
  struct drm_mode_fb_cmd fb = {
    .width = (uint32_t)width, .height = (uint32_t)height, .pitch = d->pitch,
    .bpp = 32, .depth = 24, .handle = d->handle,
  };
  if (with_fb && xioctl(fd, DRM_IOCTL_MODE_ADDFB, &fb) < 0) {
    snprintf(err, errlen, "drm: ADDFB: %s", strerror(errno));
    goto fail;
  }
  d->fb_id = with_fb ? fb.fb_id : 0;

  struct drm_mode_map_dumb map = { .handle = d->handle };
  if (xioctl(fd, DRM_IOCTL_MODE_MAP_DUMB, &map) < 0) {
    snprintf(err, errlen, "drm: MAP_DUMB: %s", strerror(errno));
    goto fail;
  }
  void *p = mmap(NULL, d->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                 (off_t)map.offset);
  if (p == MAP_FAILED) {
    snprintf(err, errlen, "drm: mmap dumb buffer: %s", strerror(errno));
    goto fail;
  }
  d->map = p;
  return 0;

fail:
  dumb_destroy(fd, d);
  return -1;
}

/* A mode for a size the connector does not list. bochs and virtio-gpu only
 * look at hdisplay/vdisplay; the timings just have to pass the kernel's
 * sanity checks (display <= sync_start <= sync_end <= total). */
static struct drm_mode_modeinfo make_mode(int width, int height)
{
  struct drm_mode_modeinfo m;
  memset(&m, 0, sizeof(m));
  m.hdisplay = (uint16_t)width;
  m.hsync_start = (uint16_t)(width + 16);
  m.hsync_end = (uint16_t)(width + 16 + 96);
  m.htotal = (uint16_t)(width + 160);
  m.vdisplay = (uint16_t)height;
  m.vsync_start = (uint16_t)(height + 3);
  m.vsync_end = (uint16_t)(height + 6);
  m.vtotal = (uint16_t)(height + 30);
  m.vrefresh = 60;
  m.clock = (uint32_t)((uint64_t)m.htotal * m.vtotal * 60 / 1000);
  m.type = DRM_MODE_TYPE_USERDEF;
  snprintf(m.name, sizeof(m.name), "%dx%d", width, height);
  return m;
}

static struct drm_mode_modeinfo find_mode(const struct kms_output *k, int width,
                                          int height)
{
  const struct drm_mode_modeinfo *found = NULL;
  for (uint32_t i = 0; i < k->n_modes; i++) {
    const struct drm_mode_modeinfo *m = &k->modes[i];
    if (m->hdisplay != width || m->vdisplay != height ||
        (m->flags & DRM_MODE_FLAG_INTERLACE))
      continue;
    if (!found || (m->type & DRM_MODE_TYPE_PREFERRED))
      found = m;
  }
  return found ? *found : make_mode(width, height);
}

static int kms_set_mode(struct output *out, int width, int height, char *err,
                        size_t errlen)
{
  struct kms_output *k = (struct kms_output *)out;

  dumb_destroy(k->fd, &k->pending);
  if (dumb_create(k->fd, width, height, 1, &k->pending, err, errlen) < 0)
    return -1;
  k->pending_mode = find_mode(k, width, height);
  out->width = width;
  out->height = height;
  return 0;
}

static void mark_dirty(struct kms_output *k, struct rect r)
{
  if (k->dirty_unsupported)
    return;
  struct drm_clip_rect clip = {
    .x1 = (unsigned short)r.x, .y1 = (unsigned short)r.y,
    .x2 = (unsigned short)(r.x + r.w), .y2 = (unsigned short)(r.y + r.h),
  };
  struct drm_mode_fb_dirty_cmd dirty = {
    .fb_id = k->shown.fb_id, .num_clips = 1,
    .clips_ptr = (uint64_t)(uintptr_t)&clip,
  };
  /* Drivers that scan out video memory directly (bochs) have no dirty
   * callback and answer ENOSYS; stop asking them. */
  if (xioctl(k->fd, DRM_IOCTL_MODE_DIRTYFB, &dirty) < 0 && errno == ENOSYS)
    k->dirty_unsupported = 1;
}

static int kms_present(struct output *out, const struct canvas *c,
                       struct rect r, char *err, size_t errlen)
{
  struct kms_output *k = (struct kms_output *)out;
  struct dumb *target = k->pending.handle ? &k->pending : &k->shown;

  r = canvas_clip(c, r);
  if (c->width != target->width || c->height != target->height) {
    snprintf(err, errlen, "drm: canvas %dx%d does not match mode %dx%d",
             c->width, c->height, target->width, target->height);
    return -1;
  }
  for (int y = r.y; y < r.y + r.h; y++)
    memcpy(target->map + (size_t)y * target->pitch + (size_t)r.x * 4,
           c->pixels + (size_t)y * (size_t)c->width + r.x, (size_t)r.w * 4);

  if (target == &k->pending) {
    struct drm_mode_crtc crtc = {
      .crtc_id = k->crtc_id, .fb_id = k->pending.fb_id,
      .set_connectors_ptr = (uint64_t)(uintptr_t)&k->connector_id,
      .count_connectors = 1, .mode = k->pending_mode, .mode_valid = 1,
    };
    if (xioctl(k->fd, DRM_IOCTL_MODE_SETCRTC, &crtc) < 0) {
      snprintf(err, errlen, "drm: SETCRTC %dx%d: %s", target->width,
               target->height, strerror(errno));
      return -1;
    }
    dumb_destroy(k->fd, &k->shown);
    k->shown = k->pending;
    memset(&k->pending, 0, sizeof(k->pending));
  }
  mark_dirty(k, r);
  return 0;
}

static void kms_destroy(struct output *out)
{
  struct kms_output *k = (struct kms_output *)out;
  if (k->fd >= 0) {
    dumb_destroy(k->fd, &k->cursor);
    dumb_destroy(k->fd, &k->pending);
    dumb_destroy(k->fd, &k->shown);
    close(k->fd);
  }
  free(k->modes);
  free(k);
}

/* The usual two-call dance: ask for counts, allocate, ask again. Counts can
 * grow in between (hotplug), so retry until they are stable. */
static int get_resources(int fd, struct drm_mode_card_res *res,
                         uint32_t **connectors, uint32_t **crtcs)
{
  for (int attempt = 0; attempt < 5; attempt++) {
    memset(res, 0, sizeof(*res));
    if (xioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, res) < 0)
      return -1;
    uint32_t n_conn = res->count_connectors, n_crtc = res->count_crtcs;
    *connectors = calloc(n_conn + 1, sizeof(uint32_t));
    *crtcs = calloc(n_crtc + 1, sizeof(uint32_t));
    if (!*connectors || !*crtcs)
      return -1;
    struct drm_mode_card_res again = {
      .connector_id_ptr = (uint64_t)(uintptr_t)*connectors,
      .crtc_id_ptr = (uint64_t)(uintptr_t)*crtcs,
      .count_connectors = n_conn, .count_crtcs = n_crtc,
    };
    if (xioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &again) < 0)
      return -1;
    if (again.count_connectors == n_conn && again.count_crtcs == n_crtc) {
      *res = again;
      return 0;
    }
    free(*connectors);
    free(*crtcs);
    *connectors = *crtcs = NULL;
  }
  errno = EAGAIN;
  return -1;
}

/* Fills conn (with count_* and the mode / encoder arrays) for one connector.
 * The first call with count_modes == 0 makes the kernel probe the outputs. */
static int get_connector(int fd, uint32_t id, struct drm_mode_get_connector *conn,
                         struct drm_mode_modeinfo **modes, uint32_t **encoders)
{
  for (int attempt = 0; attempt < 5; attempt++) {
    memset(conn, 0, sizeof(*conn));
    conn->connector_id = id;
    if (xioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, conn) < 0)
      return -1;
    uint32_t n_modes = conn->count_modes, n_enc = conn->count_encoders;
    *modes = calloc(n_modes + 1, sizeof(**modes));
    *encoders = calloc(n_enc + 1, sizeof(uint32_t));
    if (!*modes || !*encoders)
      return -1;
    struct drm_mode_get_connector again = {
      .connector_id = id,
      .modes_ptr = (uint64_t)(uintptr_t)*modes, .count_modes = n_modes,
      .encoders_ptr = (uint64_t)(uintptr_t)*encoders, .count_encoders = n_enc,
    };
    if (xioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &again) < 0)
      return -1;
    if (again.count_modes == n_modes && again.count_encoders == n_enc) {
      *conn = again;
      return 0;
    }
    free(*modes);
    free(*encoders);
    *modes = NULL;
    *encoders = NULL;
  }
  errno = EAGAIN;
  return -1;
}

/* Picks the first connected connector and a CRTC that can drive it. */
static int pick_pipe(struct kms_output *k, char *err, size_t errlen)
{
  struct drm_mode_card_res res;
  uint32_t *connectors = NULL, *crtcs = NULL;
  int ok = -1;

  if (get_resources(k->fd, &res, &connectors, &crtcs) < 0) {
    snprintf(err, errlen, "drm: GETRESOURCES: %s (not a KMS device?)",
             strerror(errno));
    goto out;
  }
  for (uint32_t i = 0; i < res.count_connectors && ok < 0; i++) {
    struct drm_mode_get_connector conn;
    struct drm_mode_modeinfo *modes = NULL;
    uint32_t *encoders = NULL;

    if (get_connector(k->fd, connectors[i], &conn, &modes, &encoders) < 0 ||
        conn.connection != 1 /* connected */) {
      free(modes);
      free(encoders);
      continue;
    }
    /* Prefer the encoder already in use (fbdev emulation set one up), else
     * any encoder and CRTC the connector can use. */
    uint32_t crtc_id = 0;
    for (uint32_t e = 0; e <= conn.count_encoders && !crtc_id; e++) {
      uint32_t enc_id = e == 0 ? conn.encoder_id : encoders[e - 1];
      struct drm_mode_get_encoder enc = { .encoder_id = enc_id };
      if (!enc_id || xioctl(k->fd, DRM_IOCTL_MODE_GETENCODER, &enc) < 0)
        continue;
      if (enc.crtc_id) {
        crtc_id = enc.crtc_id;
        break;
      }
      for (uint32_t c = 0; c < res.count_crtcs && c < 32; c++) {
        if (enc.possible_crtcs & (1u << c)) {
          crtc_id = crtcs[c];
          break;
        }
      }
    }
    free(encoders);
    if (!crtc_id) {
      free(modes);
      continue;
    }
    k->connector_id = connectors[i];
    k->crtc_id = crtc_id;
    k->modes = modes;
    k->n_modes = conn.count_modes;
    ok = 0;
  }
  if (ok < 0)
    snprintf(err, errlen, "drm: no connected connector with a usable CRTC");
out:
  free(connectors);
  free(crtcs);
  return ok;
}

static int kms_set_cursor(struct output *out, const uint32_t *argb, int w,
                          int h, int hot_x, int hot_y, int x, int y,
                          char *err, size_t errlen)
{
  struct kms_output *k = (struct kms_output *)out;
  struct dumb image;

  if (dumb_create(k->fd, w, h, 0, &image, err, errlen) < 0)
    return -1;
  for (int row = 0; row < h; row++)
    memcpy(image.map + (size_t)row * image.pitch,
           argb + (size_t)row * (size_t)w, (size_t)w * 4);
  /* Image and position in one call, so the host's first cursor update is
   * already at (x, y). The kernel stores the hotspot with the buffer; QEMU's
   * virtio-gpu gets it in VIRTIO_GPU_CMD_UPDATE_CURSOR. */
  struct drm_mode_cursor2 req = {
    .flags = DRM_MODE_CURSOR_BO | DRM_MODE_CURSOR_MOVE,
    .crtc_id = k->crtc_id, .x = x, .y = y,
    .width = (uint32_t)w, .height = (uint32_t)h, .handle = image.handle,
    .hot_x = hot_x, .hot_y = hot_y,
  };
  if (xioctl(k->fd, DRM_IOCTL_MODE_CURSOR2, &req) < 0) {
    snprintf(err, errlen, "drm: CURSOR2 %dx%d: %s%s", w, h, strerror(errno),
             errno == ENXIO ? " (no cursor plane: use virtio-gpu, not bochs)"
                            : "");
    dumb_destroy(k->fd, &image);
    return -1;
  }
  dumb_destroy(k->fd, &k->cursor);
  k->cursor = image;
  return 0;
}

static int kms_move_cursor(struct output *out, int x, int y, char *err,
                           size_t errlen)
{
  struct kms_output *k = (struct kms_output *)out;
  struct drm_mode_cursor req = {
    .flags = DRM_MODE_CURSOR_MOVE, .crtc_id = k->crtc_id, .x = x, .y = y,
  };
  if (xioctl(k->fd, DRM_IOCTL_MODE_CURSOR, &req) < 0) {
    snprintf(err, errlen, "drm: CURSOR move to %d,%d: %s", x, y,
             strerror(errno));
    return -1;
  }
  return 0;
}

/* Re-reads the connector (GETCONNECTOR probes it: virtio-gpu then reports
 * the size the host asked for with SetUIInfo) and keeps its new mode list,
 * so set_mode uses the real timings of the preferred mode. */
static int kms_preferred_mode(struct output *out, int *width, int *height,
                              char *err, size_t errlen)
{
  struct kms_output *k = (struct kms_output *)out;
  struct drm_mode_get_connector conn;
  struct drm_mode_modeinfo *modes = NULL;
  uint32_t *encoders = NULL;

  if (get_connector(k->fd, k->connector_id, &conn, &modes, &encoders) < 0) {
    snprintf(err, errlen, "drm: GETCONNECTOR %u: %s", k->connector_id,
             strerror(errno));
    free(modes);
    free(encoders);
    return -1;
  }
  free(encoders);
  free(k->modes);
  k->modes = modes;
  k->n_modes = conn.count_modes;

  /* Nothing to follow while the connector is off or has no modes. */
  *width = *height = 0;
  if (conn.connection != 1 /* connected */)
    return 0;
  for (uint32_t i = 0; i < k->n_modes; i++) {
    if (k->modes[i].type & DRM_MODE_TYPE_PREFERRED) {
      *width = k->modes[i].hdisplay;
      *height = k->modes[i].vdisplay;
      return 0;
    }
  }
  if (k->n_modes > 0) {
    *width = k->modes[0].hdisplay;
    *height = k->modes[0].vdisplay;
  }
  return 0;
}

struct output *kms_output_open(const char *path, char *err, size_t errlen)
{
  struct kms_output *k = calloc(1, sizeof(*k));
  if (!k) {
    snprintf(err, errlen, "drm: out of memory");
    return NULL;
  }
  k->fd = open(path, O_RDWR | O_CLOEXEC);
  if (k->fd < 0) {
    snprintf(err, errlen, "drm: open %s: %s", path, strerror(errno));
    goto fail;
  }
  uint64_t has_dumb = 0;
  struct drm_get_cap cap = { .capability = DRM_CAP_DUMB_BUFFER };
  if (xioctl(k->fd, DRM_IOCTL_GET_CAP, &cap) == 0)
    has_dumb = cap.value;
  if (!has_dumb) {
    snprintf(err, errlen, "drm: %s has no dumb buffers", path);
    goto fail;
  }
  if (pick_pipe(k, err, errlen) < 0)
    goto fail;

  k->base.name = "drm";
  k->base.bpp = 32;
  k->base.set_mode = kms_set_mode;
  k->base.present = kms_present;
  k->base.set_cursor = kms_set_cursor;
  k->base.move_cursor = kms_move_cursor;
  k->base.preferred_mode = kms_preferred_mode;
  k->base.destroy = kms_destroy;
  return &k->base;

fail:
  kms_destroy(&k->base);
  return NULL;
}
