/* gst-vmdisplay: vmwebrtcsink, the GObject glue: properties, the sink pad, state changes.
 * The work is done by EncodedStream (the shared H.264), ViewerHub (the viewers) and
 * WhepServer (HTTP).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstvmwebrtcsink.h"

#include "encoded-stream.h"
#include "viewer-hub.h"
#include "webrtc-log.h"
#include "whep-server.h"

#include <sys/random.h>

#include <memory>
#include <mutex>
#include <string>

GST_DEBUG_CATEGORY(vmd_webrtc_debug);
#define GST_CAT_DEFAULT vmd_webrtc_debug

using vmd::webrtc::ControlPolicy;

namespace {

constexpr const char *kCursorEvent = "qemu-cursor";

struct Settings {
  std::string bind = "127.0.0.1";
  guint port = 8080;
  std::string token;
  ControlPolicy control = ControlPolicy::First;
  std::string tls_certificate, tls_private_key;
  guint max_viewers = 8;
  guint session_timeout = 30;
  std::string stun_server, turn_server;
  std::string encoder = "auto";
  guint bitrate = 6000;
};

}  // namespace

struct GstVmWebrtcSinkPrivate {
  std::mutex lock; /* settings, url, server, hub */
  Settings settings;
  std::string url;
  std::unique_ptr<vmd::webrtc::EncodedStream> stream;
  std::shared_ptr<vmd::webrtc::ViewerHub> hub;
  std::unique_ptr<vmd::webrtc::WhepServer> server;
  GstPad *sinkpad = nullptr; /* the ghost pad */
};

/* The hub, if serving; callers use it without holding the lock. */
static std::shared_ptr<vmd::webrtc::ViewerHub> current_hub(GstVmWebrtcSinkPrivate *priv) {
  std::lock_guard<std::mutex> guard(priv->lock);
  return priv->hub;
}

struct _GstVmWebrtcSink {
  GstBin parent;
  GstVmWebrtcSinkPrivate *priv;
};

G_DEFINE_TYPE(GstVmWebrtcSink, gst_vm_webrtc_sink, GST_TYPE_BIN);
GST_ELEMENT_REGISTER_DEFINE(vmwebrtcsink, "vmwebrtcsink", GST_RANK_NONE,
                            GST_TYPE_VM_WEBRTC_SINK);

enum {
  PROP_0,
  PROP_BIND,
  PROP_PORT,
  PROP_BOUND_PORT,
  PROP_TOKEN,
  PROP_CONTROL,
  PROP_TLS_CERTIFICATE,
  PROP_TLS_PRIVATE_KEY,
  PROP_MAX_VIEWERS,
  PROP_SESSION_TIMEOUT,
  PROP_STUN_SERVER,
  PROP_TURN_SERVER,
  PROP_ENCODER,
  PROP_BITRATE,
  PROP_URL,
  PROP_VIEWERS,
};

GType gst_vm_webrtc_sink_control_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {int(ControlPolicy::All), "Every viewer may send input", "all"},
      {int(ControlPolicy::None), "Nobody: view only", "none"},
      {int(ControlPolicy::First), "The earliest viewer still connected; the others view only",
       "first"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type))
    g_once_init_leave(&type, g_enum_register_static("GstVmWebrtcSinkControl", values));
  return type;
}

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("video/x-raw; video/x-h264, stream-format=(string){byte-stream,avc}, "
                    "alignment=(string)au"));

/* 128 random bits from the kernel, as hex. */
static std::string random_token() {
  guint8 bytes[16];
  if (getrandom(bytes, sizeof bytes, 0) != ssize_t(sizeof bytes))
    for (guint8 &b : bytes)
      b = guint8(g_random_int());
  std::string hex;
  for (guint8 b : bytes) {
    gchar part[3];
    g_snprintf(part, sizeof part, "%02x", b);
    hex += part;
  }
  return hex;
}

/* Events reaching the bin: the first caps build the encoded stream; `qemu-cursor` goes to
 * the viewers (and no further: nothing inside uses it). Streaming thread. */
static GstPadProbeReturn on_input_event(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *self = GST_VM_WEBRTC_SINK(data);
  GstVmWebrtcSinkPrivate *priv = self->priv;
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
  if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS) {
    GstCaps *caps = nullptr;
    gst_event_parse_caps(event, &caps);
    std::string error;
    if (!priv->stream->build_for(caps, &error)) {
      GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("Cannot serve this stream."),
                        ("%s", error.c_str()));
      return GST_PAD_PROBE_DROP;
    }
    return GST_PAD_PROBE_OK;
  }
  const GstStructure *s = gst_event_get_structure(event);
  if ((GST_EVENT_TYPE(event) == GST_EVENT_CUSTOM_DOWNSTREAM ||
       GST_EVENT_TYPE(event) == GST_EVENT_CUSTOM_DOWNSTREAM_STICKY) &&
      s && gst_structure_has_name(s, kCursorEvent)) {
    if (auto hub = current_hub(priv))
      hub->set_cursor(s);
    return GST_PAD_PROBE_DROP;
  }
  return GST_PAD_PROBE_OK;
}

static void gst_vm_webrtc_sink_init(GstVmWebrtcSink *self) {
  self->priv = new GstVmWebrtcSinkPrivate();
  GstVmWebrtcSinkPrivate *priv = self->priv;
  priv->settings.token = random_token();
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SINK);

  GstElement *in = gst_element_factory_make("identity", "in");
  g_object_set(in, "silent", TRUE, nullptr);
  gst_bin_add(GST_BIN(self), in);
  GstPad *target = gst_element_get_static_pad(in, "sink");
  GstPadTemplate *templ = gst_static_pad_template_get(&sink_template);
  priv->sinkpad = gst_ghost_pad_new_from_template("sink", target, templ);
  gst_object_unref(templ);
  gst_pad_add_probe(target, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, on_input_event, self, nullptr);
  gst_object_unref(target);
  gst_element_add_pad(GST_ELEMENT(self), priv->sinkpad);
  priv->stream = std::make_unique<vmd::webrtc::EncodedStream>(
      GST_BIN(self), in, vmd::webrtc::EncodedStream::Settings{});
}

static void gst_vm_webrtc_sink_finalize(GObject *object) {
  auto *self = GST_VM_WEBRTC_SINK(object);
  delete self->priv;
  G_OBJECT_CLASS(gst_vm_webrtc_sink_parent_class)->finalize(object);
}

static vmd::webrtc::ViewerHub::Hooks hub_hooks(GstVmWebrtcSink *self) {
  GstVmWebrtcSinkPrivate *priv = self->priv;
  vmd::webrtc::ViewerHub::Hooks hooks;
  hooks.tee = [priv] { return priv->stream->tee(); };
  hooks.push_upstream = [priv](GstEvent *event) { gst_pad_push_event(priv->sinkpad, event); };
  hooks.keyframe = [priv] { priv->stream->request_keyframe(); };
  hooks.viewers_changed = [self, priv](unsigned n) {
    priv->stream->set_watched(n > 0);
    GST_INFO_OBJECT(self, "%u viewer(s)", n);
    g_object_notify(G_OBJECT(self), "viewers");
  };
  return hooks;
}

/* NULL -> READY: the viewers' hub and the HTTP server; the URL is posted. */
static bool start_serving(GstVmWebrtcSink *self) {
  GstVmWebrtcSinkPrivate *priv = self->priv;
  std::unique_lock<std::mutex> guard(priv->lock);
  const Settings &s = priv->settings;
  priv->stream->set_bitrate(s.bitrate);
  vmd::webrtc::HubSettings hub;
  hub.max_viewers = s.max_viewers;
  hub.control = s.control;
  hub.session_timeout_s = s.session_timeout;
  hub.session.stun_server = s.stun_server;
  hub.session.turn_server = s.turn_server;
  priv->hub = std::make_shared<vmd::webrtc::ViewerHub>(GST_BIN(self), hub, hub_hooks(self));

  vmd::webrtc::WhepServerConfig config;
  config.bind = s.bind;
  config.port = s.port;
  config.token = s.token;
  config.tls_certificate = s.tls_certificate;
  config.tls_private_key = s.tls_private_key;
  config.stun_server = s.stun_server;
  if (!s.turn_server.empty())
    config.turn_servers.push_back(s.turn_server);
  priv->server = std::make_unique<vmd::webrtc::WhepServer>(config, priv->hub.get());
  std::string error;
  if (!priv->server->start(&error)) {
    priv->server.reset();
    priv->hub.reset();
    guard.unlock();
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ_WRITE, ("Cannot serve viewers."),
                      ("%s", error.c_str()));
    return false;
  }
  priv->url = priv->server->page_url();
  const guint port = priv->server->bound_port();
  const std::string url = priv->url, token = s.token;
  guard.unlock();
  /* gst-launch-1.0 prints an INFO message's debug text only: the line is in both. */
  const std::string line = "Open " + url + " in a browser to watch (WHEP: " +
                           url.substr(0, url.find("/#")) + "/whep)";
  GST_ELEMENT_INFO(self, RESOURCE, OPEN_READ_WRITE, ("%s", line.c_str()),
                   ("%s", line.c_str()));
  gst_element_post_message(
      GST_ELEMENT(self),
      gst_message_new_element(GST_OBJECT(self),
                              gst_structure_new("vmwebrtcsink", "url", G_TYPE_STRING,
                                                url.c_str(), "token", G_TYPE_STRING,
                                                token.c_str(), "port", G_TYPE_UINT, port,
                                                nullptr)));
  g_object_notify(G_OBJECT(self), "bound-port");
  return true;
}

static void stop_serving(GstVmWebrtcSink *self) {
  GstVmWebrtcSinkPrivate *priv = self->priv;
  std::unique_ptr<vmd::webrtc::WhepServer> server;
  std::shared_ptr<vmd::webrtc::ViewerHub> hub;
  {
    std::lock_guard<std::mutex> guard(priv->lock);
    server = std::move(priv->server);
    hub = std::move(priv->hub);
    priv->url.clear();
  }
  if (server)
    server->stop(); /* no new offers, no new deletes */
  if (hub)
    hub->close_all();
}

static GstStateChangeReturn gst_vm_webrtc_sink_change_state(GstElement *element,
                                                            GstStateChange transition) {
  auto *self = GST_VM_WEBRTC_SINK(element);
  if (transition == GST_STATE_CHANGE_NULL_TO_READY && !start_serving(self))
    return GST_STATE_CHANGE_FAILURE;
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    if (auto hub = current_hub(self->priv))
      hub->close_all(); /* the stream stops: viewers go before the elements do */
  }
  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS(gst_vm_webrtc_sink_parent_class)->change_state(element, transition);
  if (transition == GST_STATE_CHANGE_READY_TO_NULL)
    stop_serving(self);
  return ret;
}

/* Messages from a viewer's branch (see in_viewer_branch). Each one holds a ref on its source
 * until the application pops it: a viewer's start and teardown post about 250 (state changes
 * of webrtcbin's ~40 elements, stream status, tags, rtpsession's element messages), and on a
 * bus nobody pops they kept every torn-down webrtcbin, its ICE agent and DTLS state alive
 * (3-5 MB per viewer). None of them means anything to the application, and GstBin only
 * forwards these types (its own bookkeeping: ASYNC_*, EOS, CLOCK_*, ERROR, ... still runs).
 * A latency change is re-posted from the sink itself: the application still recalculates
 * the latency, without a message pinning the viewer's nicesink (and its ICE agent and
 * sockets). Posting thread. */
static void gst_vm_webrtc_sink_handle_message(GstBin *bin, GstMessage *message) {
  const GstMessageType type = GST_MESSAGE_TYPE(message);
  const bool noise = type == GST_MESSAGE_STATE_CHANGED || type == GST_MESSAGE_STREAM_STATUS ||
                     type == GST_MESSAGE_TAG || type == GST_MESSAGE_ELEMENT ||
                     type == GST_MESSAGE_QOS || type == GST_MESSAGE_LATENCY;
  if (noise && vmd::webrtc::in_viewer_branch(GST_MESSAGE_SRC(message))) {
    gst_message_unref(message);
    if (type == GST_MESSAGE_LATENCY)
      gst_element_post_message(GST_ELEMENT(bin), gst_message_new_latency(GST_OBJECT(bin)));
    return;
  }
  GST_BIN_CLASS(gst_vm_webrtc_sink_parent_class)->handle_message(bin, message);
}

/* Properties that shape the server and the viewers take effect at the next NULL -> READY. */
static bool server_property(guint prop_id) {
  return prop_id != PROP_BITRATE;
}

static void gst_vm_webrtc_sink_set_property(GObject *object, guint prop_id,
                                            const GValue *value, GParamSpec *pspec) {
  auto *self = GST_VM_WEBRTC_SINK(object);
  GstVmWebrtcSinkPrivate *priv = self->priv;
  std::lock_guard<std::mutex> guard(priv->lock);
  if (server_property(prop_id) && priv->server)
    GST_WARNING_OBJECT(self, "%s changes at the next start (set it in the NULL state)",
                       pspec->name);
  Settings &s = priv->settings;
  auto str = [value] { return std::string(g_value_get_string(value) ? g_value_get_string(value) : ""); };
  switch (prop_id) {
    case PROP_BIND: s.bind = str(); break;
    case PROP_PORT: s.port = g_value_get_uint(value); break;
    case PROP_TOKEN: s.token = str(); break;
    case PROP_CONTROL: s.control = ControlPolicy(g_value_get_enum(value)); break;
    case PROP_TLS_CERTIFICATE: s.tls_certificate = str(); break;
    case PROP_TLS_PRIVATE_KEY: s.tls_private_key = str(); break;
    case PROP_MAX_VIEWERS: s.max_viewers = g_value_get_uint(value); break;
    case PROP_SESSION_TIMEOUT: s.session_timeout = g_value_get_uint(value); break;
    case PROP_STUN_SERVER: s.stun_server = str(); break;
    case PROP_TURN_SERVER: s.turn_server = str(); break;
    case PROP_ENCODER: s.encoder = str(); break;
    case PROP_BITRATE:
      s.bitrate = g_value_get_uint(value);
      priv->stream->set_bitrate(s.bitrate);
      break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  if (prop_id == PROP_ENCODER)
    priv->stream->set_encoder(s.encoder);
}

static void gst_vm_webrtc_sink_get_property(GObject *object, guint prop_id, GValue *value,
                                            GParamSpec *pspec) {
  auto *self = GST_VM_WEBRTC_SINK(object);
  GstVmWebrtcSinkPrivate *priv = self->priv;
  {
    std::lock_guard<std::mutex> guard(priv->lock);
    const Settings &s = priv->settings;
    switch (prop_id) {
      case PROP_BIND: g_value_set_string(value, s.bind.c_str()); break;
      case PROP_PORT: g_value_set_uint(value, s.port); break;
      case PROP_BOUND_PORT: g_value_set_uint(value, priv->server ? priv->server->bound_port() : 0); break;
      case PROP_TOKEN: g_value_set_string(value, s.token.c_str()); break;
      case PROP_CONTROL: g_value_set_enum(value, int(s.control)); break;
      case PROP_TLS_CERTIFICATE: g_value_set_string(value, s.tls_certificate.c_str()); break;
      case PROP_TLS_PRIVATE_KEY: g_value_set_string(value, s.tls_private_key.c_str()); break;
      case PROP_MAX_VIEWERS: g_value_set_uint(value, s.max_viewers); break;
      case PROP_SESSION_TIMEOUT: g_value_set_uint(value, s.session_timeout); break;
      case PROP_STUN_SERVER: g_value_set_string(value, s.stun_server.c_str()); break;
      case PROP_TURN_SERVER: g_value_set_string(value, s.turn_server.c_str()); break;
      case PROP_ENCODER: g_value_set_string(value, s.encoder.c_str()); break;
      case PROP_BITRATE: g_value_set_uint(value, s.bitrate); break;
      case PROP_URL: g_value_set_string(value, priv->url.empty() ? nullptr : priv->url.c_str()); break;
      /* Under the lock, no copy of the hub: a copy dropped last in a notify::viewers
       * handler on the hub's own thread would destroy the hub there. The hub never takes
       * priv->lock. */
      case PROP_VIEWERS: g_value_set_uint(value, priv->hub ? priv->hub->viewers() : 0); break;
      default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
  }
}

static void install_string(GObjectClass *klass, guint id, const char *name, const char *nick,
                           const char *blurb, const char *def) {
  g_object_class_install_property(
      klass, id,
      g_param_spec_string(name, nick, blurb, def,
                          GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                      GST_PARAM_MUTABLE_READY)));
}

static void install_uint(GObjectClass *klass, guint id, const char *name, const char *nick,
                         const char *blurb, guint min, guint max, guint def, bool playing) {
  g_object_class_install_property(
      klass, id,
      g_param_spec_uint(name, nick, blurb, min, max, def,
                        GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                    (playing ? GST_PARAM_MUTABLE_PLAYING
                                             : GST_PARAM_MUTABLE_READY))));
}

static void install_properties(GObjectClass *klass) {
  install_string(klass, PROP_BIND, "bind", "Bind address",
                 "Address the HTTP(S) server listens on (0.0.0.0: every IPv4 interface)",
                 "127.0.0.1");
  install_uint(klass, PROP_PORT, "port", "Port", "TCP port of the page and WHEP (0: any free port, see bound-port)",
               0, 65535, 8080, false);
  g_object_class_install_property(
      klass, PROP_BOUND_PORT,
      g_param_spec_uint("bound-port", "Bound port",
                        "The port actually listened on (0 while not serving)", 0, 65535, 0,
                        GParamFlags(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
  install_string(klass, PROP_TOKEN, "token", "Token",
                 "Secret a viewer must present (Bearer token; the page takes it from its URL "
                 "fragment #token=...). Default: 128 random bits, new per element",
                 nullptr);
  g_object_class_install_property(
      klass, PROP_CONTROL,
      g_param_spec_enum("control", "Control", "Which viewers may send keyboard and mouse input",
                        GST_TYPE_VM_WEBRTC_SINK_CONTROL, int(ControlPolicy::First),
                        GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                    GST_PARAM_MUTABLE_READY)));
  install_string(klass, PROP_TLS_CERTIFICATE, "tls-certificate", "TLS certificate",
                 "PEM certificate file: serve HTTPS (with tls-private-key)", nullptr);
  install_string(klass, PROP_TLS_PRIVATE_KEY, "tls-private-key", "TLS private key",
                 "PEM private key file of tls-certificate", nullptr);
  install_uint(klass, PROP_MAX_VIEWERS, "max-viewers", "Maximum viewers",
               "Viewers at once; one more is answered 503", 1, 64, 8, false);
  install_uint(klass, PROP_SESSION_TIMEOUT, "session-timeout", "Session timeout",
               "Seconds a viewer may go without a sign of life (ICE connecting, RTCP "
               "receiver reports) before it is dropped: a tab closed without a DELETE",
               1, 3600, 30, false);
  install_string(klass, PROP_STUN_SERVER, "stun-server", "STUN server",
                 "stun://HOST:PORT for the viewers' ICE (also offered to browsers)", nullptr);
  install_string(klass, PROP_TURN_SERVER, "turn-server", "TURN server",
                 "turn(s)://USER:PASSWORD@HOST:PORT for the viewers' ICE (also offered to "
                 "browsers)",
                 nullptr);
  install_string(klass, PROP_ENCODER, "encoder", "Encoder",
                 "H.264 encoder for raw input, as helixframesrv's: auto (the best hardware "
                 "encoder, else x264enc), a factory name, or a bin description",
                 "auto");
  install_uint(klass, PROP_BITRATE, "bitrate", "Bitrate",
               "Target bitrate of the encoder in kbit/s (raw input only)", 100, 100000, 6000,
               true);
  g_object_class_install_property(
      klass, PROP_URL,
      g_param_spec_string("url", "URL", "The page to open, with the token (null while not serving)",
                          nullptr, GParamFlags(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      klass, PROP_VIEWERS,
      g_param_spec_uint("viewers", "Viewers", "Viewers connected or connecting now", 0, 64, 0,
                        GParamFlags(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
}

static void gst_vm_webrtc_sink_class_init(GstVmWebrtcSinkClass *klass) {
  /* Here, not at registration: a plugin loaded from the registry cache may register nothing
   * before the class is made. */
  GST_DEBUG_CATEGORY_INIT(vmd_webrtc_debug, "vmwebrtcsink", 0, "vmwebrtcsink");
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  gobject_class->set_property = gst_vm_webrtc_sink_set_property;
  gobject_class->get_property = gst_vm_webrtc_sink_get_property;
  gobject_class->finalize = gst_vm_webrtc_sink_finalize;
  element_class->change_state = gst_vm_webrtc_sink_change_state;
  GST_BIN_CLASS(klass)->handle_message = gst_vm_webrtc_sink_handle_message;
  install_properties(gobject_class);
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_set_static_metadata(
      element_class, "VM WebRTC sink", "Sink/Network",
      "Serves video to browsers over WebRTC: a page at /, a WHEP endpoint at /whep, one "
      "webrtcbin per viewer (at most max-viewers), H.264 encoded once for all (raw input) or "
      "passed through; keyboard, mouse and resize come back over the viewer's data channel "
      "as navigation and qemu-ui-info events upstream",
      "gst-vmdisplay");
  gst_type_mark_as_plugin_api(GST_TYPE_VM_WEBRTC_SINK_CONTROL, GstPluginAPIFlags(0));
}
