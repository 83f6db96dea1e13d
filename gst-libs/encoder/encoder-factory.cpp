/* gst-vmdisplay: choosing and configuring the H.264 encoder helixframesrv and vmwebrtcsink use. */
#include "encoder-factory.h"

#include <cstring>

namespace vmd::encode {

const char *const kAutoEncoderOrder[] = {
    "vah264enc", "vaapih264enc", "nvh264enc", "qsvh264enc", "x264enc", "openh264enc",
};
const size_t kAutoEncoderOrderSize = G_N_ELEMENTS(kAutoEncoderOrder);

namespace {

struct Known {
  const char *factory;
  const char *options;      /* low latency: no B-frames, no lookahead, fast preset */
  const char *bitrate_prop; /* property name */
  uint32_t bitrate_divisor; /* bits per second / divisor = property value */
};

/* Options checked against each encoder's 1.22 properties. GOP lengths are large: keyframes
 * come from clients (force_keyframe, KEYFRAME_REQ) and from a rebuilt encoder, not a timer. */
const Known kKnown[] = {
    {"vah264enc", "b-frames=0 target-usage=7 rate-control=cbr key-int-max=1024", "bitrate", 1000},
    {"vaapih264enc", "max-bframes=0 tune=low-power rate-control=cbr keyframe-period=1024",
     "bitrate", 1000},
    {"nvh264enc", "bframes=0 zerolatency=true preset=low-latency-hq rc-mode=cbr gop-size=1024",
     "bitrate", 1000},
    {"qsvh264enc", "b-frames=0 low-latency=true rate-control=cbr gop-size=1024", "bitrate", 1000},
    {"x264enc", "tune=zerolatency speed-preset=veryfast bframes=0 key-int-max=1024", "bitrate",
     1000},
    {"openh264enc", "rate-control=bitrate gop-size=1024", "bitrate", 1},
};

const Known *find_known(const char *factory) {
  for (const Known &k : kKnown)
    if (factory && std::strcmp(k.factory, factory) == 0)
      return &k;
  return nullptr;
}

bool factory_present(const char *name) {
  GstElementFactory *f = gst_element_factory_find(name);
  if (!f)
    return false;
  gst_object_unref(f);
  return true;
}

bool is_plain_factory_name(const std::string &s) {
  if (s.empty())
    return false;
  for (char c : s)
    if (!g_ascii_isalnum(c) && c != '-' && c != '_')
      return false;
  return true;
}

}  // namespace

std::string low_latency_options(const std::string &factory) {
  const Known *k = find_known(factory.c_str());
  return k ? k->options : "";
}

bool choose_encoder(const std::string &setting, EncoderChoice *out, std::string *error) {
  if (setting.empty() || setting == "auto") {
    for (const char *name : kAutoEncoderOrder) {
      if (!factory_present(name))
        continue;
      out->factory = name;
      out->description = std::string(name) + " " + low_latency_options(name);
      return true;
    }
    *error =
        "no H.264 encoder found (tried vah264enc, vaapih264enc, nvh264enc, qsvh264enc, "
        "x264enc, openh264enc): install gst-plugins-ugly (x264enc) or a hardware "
        "encoder plugin, or set the encoder property";
    return false;
  }
  if (is_plain_factory_name(setting)) {
    if (!factory_present(setting.c_str())) {
      *error = "encoder factory '" + setting + "' is not installed (gst-inspect-1.0 " + setting +
               " should list it)";
      return false;
    }
    out->factory = setting;
    out->description = setting + " " + low_latency_options(setting);
    return true;
  }
  out->factory.clear();
  out->description = setting; /* a bin description, checked when it is first built */
  return true;
}

GstElement *find_encoder_element(GstElement *bin) {
  if (!GST_IS_BIN(bin)) {
    GstElementFactory *f = gst_element_get_factory(bin);
    return f && gst_element_factory_list_is_type(f, GST_ELEMENT_FACTORY_TYPE_ENCODER) ? bin
                                                                                      : nullptr;
  }
  GstElement *found = nullptr;
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(bin));
  GValue item = G_VALUE_INIT;
  while (!found && gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElement *e = GST_ELEMENT(g_value_get_object(&item));
    GstElementFactory *f = gst_element_get_factory(e);
    if (f && gst_element_factory_list_is_type(f, GST_ELEMENT_FACTORY_TYPE_ENCODER))
      found = e;
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return found;
}

bool set_encoder_bitrate(GstElement *encoder, uint32_t bitrate_bps) {
  if (!encoder || bitrate_bps == 0)
    return false;
  GstElementFactory *f = gst_element_get_factory(encoder);
  const Known *k = find_known(f ? GST_OBJECT_NAME(f) : nullptr);
  const char *prop = k ? k->bitrate_prop : "bitrate";
  uint32_t divisor = k ? k->bitrate_divisor : 1000; /* kbit/s is the common unit */
  GParamSpec *ps = g_object_class_find_property(G_OBJECT_GET_CLASS(encoder), prop);
  if (!ps)
    return false;
  uint64_t value = (uint64_t(bitrate_bps) + divisor / 2) / divisor;
  if (value == 0)
    value = 1;
  GValue v = G_VALUE_INIT;
  g_value_init(&v, G_TYPE_UINT64);
  g_value_set_uint64(&v, value);
  GValue t = G_VALUE_INIT;
  g_value_init(&t, ps->value_type);
  if (!g_value_transform(&v, &t)) {
    g_value_unset(&t);
    g_value_unset(&v);
    return false;
  }
  /* Out of the property's range: clamped into it rather than ignored. */
  g_param_value_validate(ps, &t);
  g_object_set_property(G_OBJECT(encoder), prop, &t);
  g_value_unset(&t);
  g_value_unset(&v);
  return true;
}

}  // namespace vmd::encode
