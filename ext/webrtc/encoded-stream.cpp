/* gst-vmdisplay: vmwebrtcsink's shared H.264 stream (see encoded-stream.h). */
#include "encoded-stream.h"

#include "encoder-factory.h"
#include "webrtc-log.h"

#include <gst/video/video.h>

#define GST_CAT_DEFAULT vmd_webrtc_debug

namespace vmd::webrtc {

namespace {

GstElement *make(const char *factory, const char *name, std::string *error) {
  GstElement *e = gst_element_factory_make(factory, name);
  if (!e)
    *error = std::string("element '") + factory + "' is missing; install the package that "
             "provides it (gst-inspect-1.0 " + factory + ")";
  return e;
}

GstElement *caps_filter(const char *caps_text, const char *name) {
  GstElement *f = gst_element_factory_make("capsfilter", name);
  if (!f)
    return nullptr;
  GstCaps *caps = gst_caps_from_string(caps_text);
  g_object_set(f, "caps", caps, nullptr);
  gst_caps_unref(caps);
  return f;
}

/* The browser's decoders take constrained baseline everywhere (and every offer has it). */
constexpr const char *kEncodedCaps =
    "video/x-h264,profile=(string){constrained-baseline,baseline}";
constexpr const char *kParsedCaps = "video/x-h264,stream-format=byte-stream,alignment=au";

}  // namespace

EncodedStream::EncodedStream(GstBin *bin, GstElement *in, Settings settings)
    : bin_(bin), in_(in), settings_(std::move(settings)) {}

EncodedStream::~EncodedStream() = default;

GstElement *EncodedStream::build_encoder(std::string *error) {
  Settings settings;
  {
    std::lock_guard<std::mutex> guard(lock_);
    settings = settings_;
  }
  encode::EncoderChoice choice;
  if (!encode::choose_encoder(settings.encoder, &choice, error))
    return nullptr;
  GError *err = nullptr;
  GstElement *enc = gst_parse_bin_from_description(choice.description.c_str(), TRUE, &err);
  if (!enc) {
    *error = "cannot build encoder '" + choice.description + "': " +
             (err ? err->message : "unknown error") + "; check the encoder property";
    g_clear_error(&err);
    return nullptr;
  }
  g_clear_error(&err);
  GstElement *encoder = encode::find_encoder_element(enc);
  if (encoder && !encode::set_encoder_bitrate(encoder, settings.bitrate_kbps * 1000))
    GST_WARNING("encoder %s has no bitrate property we know: bitrate ignored",
                GST_OBJECT_NAME(encoder));
  encoder_ = encoder;
  GST_INFO("encoding with '%s'", choice.description.c_str());
  return enc;
}

bool EncodedStream::add_and_link(GstElement *const *chain, size_t n, std::string *error) {
  for (size_t i = 0; i < n; i++)
    gst_bin_add(bin_, chain[i]);
  GstElement *prev = in_;
  for (size_t i = 0; i < n; i++) {
    if (!gst_element_link(prev, chain[i])) {
      *error = std::string("cannot link ") + GST_OBJECT_NAME(prev) + " to " +
               GST_OBJECT_NAME(chain[i]);
      return false;
    }
    prev = chain[i];
  }
  for (size_t i = 0; i < n; i++)
    gst_element_sync_state_with_parent(chain[i]);
  return true;
}

bool EncodedStream::build_for(GstCaps *caps, std::string *error) {
  const GstStructure *s = gst_caps_get_structure(caps, 0);
  const bool raw = gst_structure_has_name(s, "video/x-raw");
  if (tee_) {
    if (raw == raw_)
      return true;
    *error = std::string("the input changed from ") + (raw_ ? "raw video" : "H.264") +
             " to " + (raw ? "raw video" : "H.264") + "; restart the pipeline";
    return false;
  }
  raw_ = raw;
  GstElement *tee = make("tee", "tee", error);
  GstElement *sink = make("fakesink", "nobody", error);
  GstElement *parse = make("h264parse", "parse", error);
  GstElement *parsed = caps_filter(kParsedCaps, "parsed");
  if (!tee || !sink || !parse || !parsed) {
    for (GstElement *e : {tee, sink, parse, parsed})
      if (e)
        gst_object_unref(gst_object_ref_sink(e));
    return false;
  }
  g_object_set(parse, "config-interval", -1, nullptr);
  g_object_set(sink, "sync", FALSE, "async", FALSE, "enable-last-sample", FALSE, nullptr);

  bool ok;
  if (raw) {
    GstElement *conv = make("videoconvert", "convert", error);
    GstElement *i420 = caps_filter("video/x-raw,format=I420", "i420");
    GstElement *enc = conv ? build_encoder(error) : nullptr;
    if (!enc) {
      for (GstElement *e : {tee, sink, parse, parsed, conv, i420})
        if (e)
          gst_object_unref(gst_object_ref_sink(e));
      return false;
    }
    GstElement *profile = caps_filter(kEncodedCaps, "profile");
    GstElement *chain[] = {conv, i420, enc, profile, parse, parsed, tee};
    ok = add_and_link(chain, G_N_ELEMENTS(chain), error);
    GstPad *pad = gst_element_get_static_pad(enc, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, drop_unwatched, this, nullptr);
    gst_object_unref(pad);
  } else {
    GstElement *chain[] = {parse, parsed, tee};
    ok = add_and_link(chain, G_N_ELEMENTS(chain), error);
  }
  gst_bin_add(bin_, sink);
  if (ok && !gst_element_link(tee, sink)) {
    *error = "cannot link the tee to its fakesink";
    ok = false;
  }
  gst_element_sync_state_with_parent(sink);
  if (ok)
    tee_ = tee;
  return ok;
}

GstPadProbeReturn EncodedStream::drop_unwatched(GstPad *, GstPadProbeInfo *, gpointer data) {
  auto *self = static_cast<EncodedStream *>(data);
  return self->watched_ ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
}

void EncodedStream::request_keyframe() {
  GstElement *tee = tee_.load();
  if (!tee)
    return;
  GstPad *pad = gst_element_get_static_pad(tee, "sink");
  gst_pad_push_event(pad, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE,
                                                                      TRUE, 0));
  gst_object_unref(pad);
}

void EncodedStream::set_bitrate(uint32_t kbps) {
  {
    std::lock_guard<std::mutex> guard(lock_);
    settings_.bitrate_kbps = kbps;
  }
  if (GstElement *encoder = encoder_.load())
    encode::set_encoder_bitrate(encoder, kbps * 1000);
}

void EncodedStream::set_encoder(const std::string &encoder) {
  std::lock_guard<std::mutex> guard(lock_);
  settings_.encoder = encoder;
}

}  // namespace vmd::webrtc
