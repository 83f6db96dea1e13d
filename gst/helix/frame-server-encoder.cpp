/* gst-vmdisplay: one H.264 encoding pipeline of helixframesrv. */
#include "frame-server-encoder.h"

#include "h264-au.h"

#include <algorithm>

#include <gst/app/app.h>

GST_DEBUG_CATEGORY_EXTERN(helix_frame_server_debug);
#define GST_CAT_DEFAULT helix_frame_server_debug

namespace vmd::helix {

namespace {

const char *profile_caps(uint8_t profile_idc) {
  switch (profile_idc) {
    case 66:
      return ",profile=(string){ constrained-baseline, baseline }";
    case 77:
      return ",profile=(string)main";
    case 100:
      return ",profile=(string)high";
    default:
      return "";
  }
}

}  // namespace

FrameEncoder::FrameEncoder(encode::EncoderChoice choice, std::function<bool()> cancelled)
    : choice_(std::move(choice)), cancelled_(std::move(cancelled)) {
  gst_video_info_init(&info_);
}

FrameEncoder::~FrameEncoder() {
  teardown();
}

void FrameEncoder::teardown() {
  if (convert_sink_) {
    gst_object_unref(convert_sink_);
    convert_sink_ = nullptr;
  }
  if (pipeline_) {
    if (frame_inside_) {
      /* Stopping waits for the streaming thread, which may be stuck inside an element that
       * cannot be interrupted: done on GStreamer's async call pool (it holds a reference
       * until the pipeline is down), so whoever is stopping us does not wait for it. */
      GST_DEBUG("encoding pipeline may still hold a frame: stopping it in the background");
      gst_element_call_async(
          pipeline_, [](GstElement *p, gpointer) { gst_element_set_state(p, GST_STATE_NULL); },
          nullptr, nullptr);
    } else {
      gst_element_set_state(pipeline_, GST_STATE_NULL);
    }
    gst_object_unref(pipeline_);
    pipeline_ = nullptr;
  }
  appsrc_ = appsink_ = encoder_ = nullptr;
  have_info_ = false;
  frame_inside_ = false;
}

std::string FrameEncoder::bus_error() {
  if (!pipeline_)
    return "no pipeline";
  GstBus *bus = gst_element_get_bus(pipeline_);
  std::string text;
  while (GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
    GError *err = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_error(m, &err, &dbg);
    if (text.empty())
      text = std::string(err->message) + (dbg ? std::string(" (") + dbg + ")" : "");
    g_clear_error(&err);
    g_free(dbg);
    gst_message_unref(m);
  }
  gst_object_unref(bus);
  return text;
}

bool FrameEncoder::build(const GstVideoInfo &info, std::string *error) {
  teardown();
  /* H.264 codes 4:2:0 in whole chroma samples: an odd side cannot be coded (x264 refuses it,
   * and SPS cropping works in steps of 2). Such a frame is padded by one black column or row
   * (negative videobox borders add pixels) in its own format, before the conversion to YUV,
   * so the last real column keeps its own chroma; the coded picture is one pixel larger
   * there (vsockenc's caps keep the size that was sent, which crops it again). */
  const int pad_x = GST_VIDEO_INFO_WIDTH(&info) & 1, pad_y = GST_VIDEO_INFO_HEIGHT(&info) & 1;
  std::string pad;
  if (pad_x || pad_y) {
    /* videobox takes the packed RGB formats and planar YUV, not NV12 or RGB16/15: those are
     * converted first (NV12 to I420 only moves chroma samples, it does not resample them). */
    const GstVideoFormat f = GST_VIDEO_INFO_FORMAT(&info);
    const bool boxable = f != GST_VIDEO_FORMAT_NV12 && f != GST_VIDEO_FORMAT_RGB16 &&
                         f != GST_VIDEO_FORMAT_RGB15;
    pad = std::string(boxable ? "" : "videoconvert ! ") + "videobox fill=black right=" +
          std::to_string(-pad_x) + " bottom=" + std::to_string(-pad_y) + " ! ";
  }
  std::string desc =
      "appsrc name=src format=time is-live=false block=false ! " + pad +
      "videoconvert name=conv ! " + choice_.description +
      " ! h264parse config-interval=-1 "
      "! video/x-h264,stream-format=byte-stream,alignment=au" +
      profile_caps(profile_) +
      " ! appsink name=sink sync=false async=false max-buffers=8 "
      "enable-last-sample=false";
  GError *err = nullptr;
  GstElement *p = gst_parse_launch_full(desc.c_str(), nullptr, GST_PARSE_FLAG_FATAL_ERRORS, &err);
  if (!p) {
    *error = "cannot build the encoding pipeline '" + desc + "': " + (err ? err->message : "?");
    g_clear_error(&err);
    return false;
  }
  g_clear_error(&err);
  pipeline_ = p;
  appsrc_ = gst_bin_get_by_name(GST_BIN(p), "src");
  appsink_ = gst_bin_get_by_name(GST_BIN(p), "sink");
  GstElement *conv = gst_bin_get_by_name(GST_BIN(p), "conv");
  /* The pipeline keeps them alive; we only want borrowed pointers. */
  gst_object_unref(appsrc_);
  gst_object_unref(appsink_);
  convert_sink_ = gst_element_get_static_pad(conv, "sink");
  gst_object_unref(conv);
  encoder_ = encode::find_encoder_element(p);

  GstVideoInfo with_rate = info;
  GST_VIDEO_INFO_FPS_N(&with_rate) = gint(fps_num_);
  GST_VIDEO_INFO_FPS_D(&with_rate) = gint(fps_den_);
  GstCaps *caps = gst_video_info_to_caps(&with_rate);
  gst_app_src_set_caps(GST_APP_SRC(appsrc_), caps);
  gst_caps_unref(caps);
  if (bitrate_bps_ && encoder_ && !encode::set_encoder_bitrate(encoder_, bitrate_bps_))
    GST_WARNING("encoder %s has no bitrate property we know: bitrate ignored",
                GST_OBJECT_NAME(encoder_));

  if (gst_element_set_state(p, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    *error = "cannot start the encoding pipeline '" + desc + "': " + bus_error();
    teardown();
    return false;
  }
  info_ = info;
  have_info_ = true;
  rebuild_ = false;
  GST_INFO("encoding pipeline built for %dx%d %s: %s", GST_VIDEO_INFO_WIDTH(&info),
           GST_VIDEO_INFO_HEIGHT(&info), GST_VIDEO_INFO_NAME(&info), desc.c_str());
  return true;
}

bool FrameEncoder::encode(GstBuffer *buffer, const GstVideoInfo &info, bool force_keyframe,
                          int timeout_ms, EncodedFrame *out, std::string *error) {
  *out = EncodedFrame();
  bool same = have_info_ && GST_VIDEO_INFO_FORMAT(&info) == GST_VIDEO_INFO_FORMAT(&info_) &&
              GST_VIDEO_INFO_WIDTH(&info) == GST_VIDEO_INFO_WIDTH(&info_) &&
              GST_VIDEO_INFO_HEIGHT(&info) == GST_VIDEO_INFO_HEIGHT(&info_);
  if (!pipeline_ || !same || rebuild_) {
    if (!build(info, error)) {
      gst_buffer_unref(buffer);
      return false;
    }
  }
  if (force_keyframe || keyframe_pending_) {
    keyframe_pending_ = false;
    /* Sent straight to videoconvert's sink pad: the streaming thread is idle between frames
     * (encode() waits for each), so the event lands before the buffer below. */
    GstEvent *ev = gst_video_event_new_downstream_force_key_unit(
        GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE, TRUE, 0);
    gst_pad_send_event(convert_sink_, ev);
  }
  GstClockTime duration = gst_util_uint64_scale(GST_SECOND, fps_den_, fps_num_);
  buffer = gst_buffer_make_writable(buffer);
  const GstClockTime pushed_pts = frame_count_ * duration;
  GST_BUFFER_PTS(buffer) = pushed_pts;
  GST_BUFFER_DTS(buffer) = GST_CLOCK_TIME_NONE;
  GST_BUFFER_DURATION(buffer) = duration;
  frame_count_++;
  if (gst_app_src_push_buffer(GST_APP_SRC(appsrc_), buffer) != GST_FLOW_OK) {
    *error = "the encoding pipeline refused a frame: " + bus_error();
    rebuild_ = true;
    return false;
  }
  frame_inside_ = true;
  /* The answer must be this frame's access unit: anything older (output an
   * encoder with delay held back) is dropped rather than sent as this one. Waited for in
   * slices, so a stop (cancelled_) is seen within kPollSliceMs. */
  const int64_t deadline = g_get_monotonic_time() + int64_t(timeout_ms) * 1000;
  GstSample *sample = nullptr;
  for (;;) {
    if (cancelled_ && cancelled_()) {
      *error = "encoding cancelled: the server is stopping";
      rebuild_ = true; /* the frame may still come out: never as a later frame's answer */
      return false;
    }
    int64_t left_us = deadline - g_get_monotonic_time();
    if (left_us <= 0)
      break;
    left_us = std::min<int64_t>(left_us, int64_t(kPollSliceMs) * 1000);
    sample = gst_app_sink_try_pull_sample(GST_APP_SINK(appsink_),
                                          GstClockTime(left_us) * GST_USECOND);
    if (!sample) {
      if (gst_app_sink_is_eos(GST_APP_SINK(appsink_)))
        break; /* an error ended the stream: nothing more will come */
      continue;
    }
    GstBuffer *b = gst_sample_get_buffer(sample);
    if (!b || !GST_BUFFER_PTS_IS_VALID(b) || GST_BUFFER_PTS(b) >= pushed_pts)
      break;
    gst_sample_unref(sample);
    sample = nullptr;
  }
  if (sample)
    frame_inside_ = false; /* its access unit (or a later one) is out */
  if (!sample) {
    std::string bus = bus_error();
    /* Whatever comes out late must never answer a later request: start over. */
    rebuild_ = true;
    if (!bus.empty()) {
      *error = "encoding failed: " + bus;
      return false;
    }
    return true; /* the encoder held the frame (delay): nothing to send for it */
  }
  /* No copy: the access unit stays in the encoder's buffer until it is sent. */
  out->data = AccessUnit(gst_sample_get_buffer(sample));
  out->keyframe = vmd::h264_au_is_idr(out->data.data(), out->data.size());
  out->empty = out->data.empty();
  gst_sample_unref(sample);
  return true;
}

void FrameEncoder::set_bitrate(uint32_t bitrate_bps) {
  if (!bitrate_bps)
    return;
  bitrate_bps_ = bitrate_bps;
  if (encoder_ && !encode::set_encoder_bitrate(encoder_, bitrate_bps))
    GST_WARNING("encoder %s has no bitrate property we know: bitrate ignored",
                GST_OBJECT_NAME(encoder_));
}

void FrameEncoder::set_framerate(uint32_t num, uint32_t den) {
  if (!num || !den || num > 1000 * den || den > 1000000)
    return;
  if (num != fps_num_ || den != fps_den_) {
    fps_num_ = num;
    fps_den_ = den;
    rebuild_ = true; /* the caps carry the rate; rate control follows them */
  }
}

void FrameEncoder::set_profile(uint8_t profile_idc) {
  if (profile_idc != 66 && profile_idc != 77 && profile_idc != 100)
    profile_idc = 0;
  if (profile_idc != profile_) {
    profile_ = profile_idc;
    rebuild_ = true;
  }
}

}  // namespace vmd::helix
