/* gst-vmdisplay: the `qemu-cursor` structure. */
#include "cursor-event.h"

#include <memory>

namespace vmd {

GstBuffer *cursor_image_buffer(const std::shared_ptr<const CursorImage> &image) {
  if (!image)
    return nullptr;
  /* The buffer keeps the image alive: no copy of the pixels. */
  auto hold = std::make_unique<std::shared_ptr<const CursorImage>>(image);
  const gsize size = image->argb.size() * sizeof(uint32_t);
  gpointer data = const_cast<uint32_t *>(image->argb.data());
  return gst_buffer_new_wrapped_full(
      GST_MEMORY_FLAG_READONLY, data, size, 0, size, hold.release(), [](gpointer p) {
        std::unique_ptr<std::shared_ptr<const CursorImage>> owned(
            static_cast<std::shared_ptr<const CursorImage> *>(p));
      });
}

GstStructure *cursor_structure(const CursorState &cursor, GstBuffer *image, bool image_changed) {
  const CursorImage *img = cursor.image.get();
  GstStructure *s = gst_structure_new(
      kCursorStructureName, "width", G_TYPE_INT, img ? int(img->width) : 0, "height", G_TYPE_INT,
      img ? int(img->height) : 0, "hot-x", G_TYPE_INT, img ? int(img->hot_x) : 0, "hot-y",
      G_TYPE_INT, img ? int(img->hot_y) : 0, "x", G_TYPE_INT, cursor.pointer_x(), "y", G_TYPE_INT,
      cursor.pointer_y(), "visible", G_TYPE_BOOLEAN, gboolean(cursor.visible && img),
      "image-changed", G_TYPE_BOOLEAN, gboolean(image_changed), nullptr);
  if (image)
    gst_structure_set(s, "image", GST_TYPE_BUFFER, image, nullptr);
  return s;
}

}  // namespace vmd
