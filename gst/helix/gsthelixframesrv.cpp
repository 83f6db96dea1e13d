/* gst-vmdisplay: helixframesrv.
 *
 * A bin. Each request pad sink_N ends in an appsink that keeps the latest frame of scanout N in
 * a vmd::helix::ScanoutRegistry; the HXFR server (vmd::helix::FrameServer, its own threads)
 * serves clients from it and from their pixel uploads. The server listens from NULL->READY to
 * READY->NULL, so the element serves pixel-upload clients with no pad linked at all.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gsthelixframesrv.h"

#include "encoder-factory.h"
#include "frame-server-scanouts.h"
#include "frame-server.h"
#include "hxfr-protocol.h"

#include <gst/app/app.h>
#include <gst/video/video.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

GST_DEBUG_CATEGORY_STATIC(gst_helix_frame_srv_debug);
#define GST_CAT_DEFAULT gst_helix_frame_srv_debug

namespace {

constexpr const char *kDefaultAddress = "vsock://-1:5000";
constexpr const char *kDefaultEncoder = "auto";
constexpr guint kDefaultMaxClients = 16;
constexpr guint kMaxMaxClients = 1024;
constexpr guint kDefaultMaxPayload = vmd::hxfr::kDefaultMaxPayload;
/* The largest useful payload: a 16384x16384 4-byte frame plus the request. */
constexpr guint kMaxMaxPayload = 1024u * 1024 * 1024 + vmd::hxfr::kFrameRequestSize;

constexpr guint kDefaultClientTimeoutMs = 10000;
constexpr guint kDefaultIdleTimeoutMs = 60000;
constexpr guint kMinClientTimeoutMs = 100;

enum {
  PROP_0,
  PROP_ADDRESS,
  PROP_ENCODER,
  PROP_MAX_CLIENTS,
  PROP_MAX_PAYLOAD,
  PROP_BOUND_PORT,
  PROP_CLIENT_TIMEOUT,
  PROP_IDLE_TIMEOUT,
  PROP_TOKEN,
};

struct Settings {
  std::string address = kDefaultAddress;
  std::string encoder = kDefaultEncoder;
  guint max_clients = kDefaultMaxClients;
  guint max_payload = kDefaultMaxPayload;
  guint client_timeout_ms = kDefaultClientTimeoutMs;
  guint idle_timeout_ms = kDefaultIdleTimeoutMs;
  std::string token; /* empty: no authentication; never logged */
};

}  // namespace

struct GstHelixFrameSrvPrivate {
  std::mutex lock; /* settings, server */
  Settings settings;
  std::shared_ptr<vmd::helix::ScanoutRegistry> scanouts =
      std::make_shared<vmd::helix::ScanoutRegistry>();
  std::unique_ptr<vmd::helix::FrameServer> server;
};

struct _GstHelixFrameSrv {
  GstBin parent;
  GstHelixFrameSrvPrivate *priv;
};

G_DEFINE_TYPE(GstHelixFrameSrv, gst_helix_frame_srv, GST_TYPE_BIN);
GST_ELEMENT_REGISTER_DEFINE(helixframesrv, "helixframesrv", GST_RANK_NONE,
                            GST_TYPE_HELIX_FRAME_SRV);

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink_%u", GST_PAD_SINK, GST_PAD_REQUEST,
    GST_STATIC_CAPS("video/x-raw, format = (string) { BGRx, BGRA, RGBx, RGBA, xRGB, ARGB, "
                    "RGB, BGR, RGB16, RGB15, NV12, I420 }, width = (int) [ 1, 16384 ], "
                    "height = (int) [ 1, 16384 ], framerate = (fraction) [ 0/1, MAX ]"));

/* Qdata on each appsink: which scanout it feeds. */
static GQuark scanout_quark() {
  static GQuark q = g_quark_from_static_string("gst-vmdisplay-helix-scanout");
  return q;
}

static GstFlowReturn on_new_sample(GstAppSink *sink, gpointer user_data) {
  auto *self = static_cast<GstHelixFrameSrv *>(user_data);
  GstSample *sample = gst_app_sink_pull_sample(sink);
  if (!sample)
    return GST_FLOW_EOS;
  guint id = GPOINTER_TO_UINT(g_object_get_qdata(G_OBJECT(sink), scanout_quark()));
  self->priv->scanouts->push(id, sample);
  return GST_FLOW_OK;
}

static GstPad *gst_helix_frame_srv_request_new_pad(GstElement *element, GstPadTemplate *templ,
                                                   const gchar *name, const GstCaps *) {
  auto *self = GST_HELIX_FRAME_SRV(element);
  guint id = 0;
  if (name && g_str_has_prefix(name, "sink_")) {
    gchar *end = nullptr;
    guint64 v = g_ascii_strtoull(name + 5, &end, 10);
    if (!end || *end || end == name + 5 || v > G_MAXUINT16) {
      GST_WARNING_OBJECT(self, "bad pad name %s: use sink_N with N the scanout (0-65535)", name);
      return nullptr;
    }
    id = guint(v);
  } else {
    while (id <= G_MAXUINT16) {
      gchar *n = g_strdup_printf("sink_%u", id);
      GstPad *existing = gst_element_get_static_pad(element, n);
      g_free(n);
      if (!existing)
        break;
      gst_object_unref(existing);
      id++;
    }
  }
  gchar *pad_name = g_strdup_printf("sink_%u", id);
  gchar *sink_name = g_strdup_printf("scanout_%u", id);
  GstPad *existing = gst_element_get_static_pad(element, pad_name);
  if (existing) {
    gst_object_unref(existing);
    GST_WARNING_OBJECT(self, "pad %s already exists", pad_name);
    g_free(pad_name);
    g_free(sink_name);
    return nullptr;
  }
  /* Keeps only the newest frame; never syncs or prerolls (clients pull at their own pace). */
  GstElement *sink = gst_element_factory_make("appsink", sink_name);
  g_free(sink_name);
  if (!sink) {
    g_free(pad_name);
    GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN, ("appsink is missing"),
                      ("install gst-plugins-base (the app plugin)"));
    return nullptr;
  }
  g_object_set(sink, "sync", FALSE, "async", FALSE, "max-buffers", 1, "drop", TRUE,
               "enable-last-sample", FALSE, nullptr);
  g_object_set_qdata(G_OBJECT(sink), scanout_quark(), GUINT_TO_POINTER(id));
  GstAppSinkCallbacks callbacks = {};
  callbacks.new_sample = on_new_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(sink), &callbacks, self, nullptr);
  gst_bin_add(GST_BIN(self), sink);
  GstPad *target = gst_element_get_static_pad(sink, "sink");
  GstPad *ghost = gst_ghost_pad_new_from_template(pad_name, target, templ);
  gst_object_unref(target);
  g_free(pad_name);
  self->priv->scanouts->add(id);
  gst_element_sync_state_with_parent(sink);
  gst_pad_set_active(ghost, TRUE);
  gst_element_add_pad(element, ghost);
  GST_INFO_OBJECT(self, "scanout %u attached", id);
  return ghost;
}

static void gst_helix_frame_srv_release_pad(GstElement *element, GstPad *pad) {
  auto *self = GST_HELIX_FRAME_SRV(element);
  GstPad *target = gst_ghost_pad_get_target(GST_GHOST_PAD(pad));
  GstElement *sink = target ? gst_pad_get_parent_element(target) : nullptr;
  if (target)
    gst_object_unref(target);
  gst_element_remove_pad(element, pad);
  if (sink) {
    guint id = GPOINTER_TO_UINT(g_object_get_qdata(G_OBJECT(sink), scanout_quark()));
    gst_element_set_state(sink, GST_STATE_NULL);
    gst_bin_remove(GST_BIN(self), sink);
    gst_object_unref(sink);
    self->priv->scanouts->remove(id);
    GST_INFO_OBJECT(self, "scanout %u detached", id);
  }
}

/* TCP without a token: anyone who can reach the port is served. Said once per start. */
static void warn_if_open(GstHelixFrameSrv *self, const Settings &s,
                         const vmd::helix::FrameServer &server) {
  if (!s.token.empty() || !g_str_has_prefix(s.address.c_str(), "tcp://"))
    return;
  std::string where = s.address;
  const size_t colon = where.rfind(':');
  if (colon != std::string::npos && colon > 5)
    where = where.substr(0, colon + 1) + std::to_string(server.bound_tcp_port());
  GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS, ("Serving HXFR on %s without a token.",
                                                 where.c_str()),
                      ("anyone who can reach %s can see the VM's screen and have frames "
                       "encoded: set token (and the same token on vsockenc)",
                       where.c_str()));
}

/* Works on a copy of the settings and posts its errors and warning without priv->lock held:
 * posting runs sync bus handlers on this thread, and one that reads a property (bound-port,
 * say) would otherwise take the same lock again. */
static bool start_server(GstHelixFrameSrv *self) {
  GstHelixFrameSrvPrivate *priv = self->priv;
  Settings s;
  {
    std::lock_guard<std::mutex> g(priv->lock);
    s = priv->settings;
  }
  vmd::helix::ServerConfig config;
  config.address = s.address;
  config.max_clients = s.max_clients;
  config.max_payload = s.max_payload;
  config.limits.client_timeout_ms = s.client_timeout_ms;
  config.limits.idle_timeout_ms = s.idle_timeout_ms;
  config.token = s.token;
  std::string error;
  if (config.token.size() > vmd::hxfr::kMaxTokenSize) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                      ("The token is %zu bytes long; HXFR carries at most %u",
                       config.token.size(), vmd::hxfr::kMaxTokenSize),
                      ("set a shorter token, the same on vsockenc and helixframesrv"));
    return false;
  }
  if (!vmd::encode::choose_encoder(s.encoder, &config.encoder, &error)) {
    GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN, ("No usable H.264 encoder."),
                      ("%s", error.c_str()));
    return false;
  }
  if (s.encoder == "auto" || s.encoder.empty())
    GST_INFO_OBJECT(self, "encoder=auto picked %s (%s)", config.encoder.factory.c_str(),
                    config.encoder.description.c_str());
  else
    GST_INFO_OBJECT(self, "encoder: %s", config.encoder.description.c_str());
  auto server = std::make_unique<vmd::helix::FrameServer>(config, priv->scanouts);
  if (!server->start(&error)) {
    GST_ELEMENT_ERROR(
        self, RESOURCE, OPEN_READ_WRITE, ("Cannot serve HXFR on %s.", s.address.c_str()),
        ("%s. Check the address property and that no other server uses it.", error.c_str()));
    return false;
  }
  warn_if_open(self, s, *server);
  std::lock_guard<std::mutex> g(priv->lock);
  priv->server = std::move(server);
  return true;
}

static void stop_server(GstHelixFrameSrv *self) {
  std::unique_ptr<vmd::helix::FrameServer> server;
  {
    std::lock_guard<std::mutex> g(self->priv->lock);
    server = std::move(self->priv->server);
  }
  server.reset(); /* joins every client thread, outside the lock */
  self->priv->scanouts->clear_frames();
}

static GstStateChangeReturn gst_helix_frame_srv_change_state(GstElement *element,
                                                             GstStateChange transition) {
  auto *self = GST_HELIX_FRAME_SRV(element);
  if (transition == GST_STATE_CHANGE_NULL_TO_READY && !start_server(self))
    return GST_STATE_CHANGE_FAILURE;
  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS(gst_helix_frame_srv_parent_class)->change_state(element, transition);
  if (transition == GST_STATE_CHANGE_READY_TO_NULL ||
      (transition == GST_STATE_CHANGE_NULL_TO_READY && ret == GST_STATE_CHANGE_FAILURE))
    stop_server(self);
  return ret;
}

static void gst_helix_frame_srv_set_property(GObject *object, guint prop_id, const GValue *value,
                                             GParamSpec *pspec) {
  auto *self = GST_HELIX_FRAME_SRV(object);
  GstHelixFrameSrvPrivate *priv = self->priv;
  std::lock_guard<std::mutex> g(priv->lock);
  if (priv->server && prop_id != PROP_BOUND_PORT) {
    GST_WARNING_OBJECT(self, "%s can only be changed in the NULL state: ignored", pspec->name);
    return;
  }
  switch (prop_id) {
    case PROP_ADDRESS: {
      const gchar *s = g_value_get_string(value);
      priv->settings.address = s ? s : kDefaultAddress;
      break;
    }
    case PROP_ENCODER: {
      const gchar *s = g_value_get_string(value);
      priv->settings.encoder = s && *s ? s : kDefaultEncoder;
      break;
    }
    case PROP_MAX_CLIENTS:
      priv->settings.max_clients = g_value_get_uint(value);
      break;
    case PROP_MAX_PAYLOAD:
      priv->settings.max_payload = g_value_get_uint(value);
      break;
    case PROP_CLIENT_TIMEOUT:
      priv->settings.client_timeout_ms = g_value_get_uint(value);
      break;
    case PROP_IDLE_TIMEOUT:
      priv->settings.idle_timeout_ms = g_value_get_uint(value);
      break;
    case PROP_TOKEN: {
      const gchar *t = g_value_get_string(value);
      priv->settings.token = t ? t : "";
      break;
    }
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_helix_frame_srv_get_property(GObject *object, guint prop_id, GValue *value,
                                             GParamSpec *pspec) {
  auto *self = GST_HELIX_FRAME_SRV(object);
  GstHelixFrameSrvPrivate *priv = self->priv;
  std::lock_guard<std::mutex> g(priv->lock);
  switch (prop_id) {
    case PROP_ADDRESS:
      g_value_set_string(value, priv->settings.address.c_str());
      break;
    case PROP_ENCODER:
      g_value_set_string(value, priv->settings.encoder.c_str());
      break;
    case PROP_MAX_CLIENTS:
      g_value_set_uint(value, priv->settings.max_clients);
      break;
    case PROP_MAX_PAYLOAD:
      g_value_set_uint(value, priv->settings.max_payload);
      break;
    case PROP_CLIENT_TIMEOUT:
      g_value_set_uint(value, priv->settings.client_timeout_ms);
      break;
    case PROP_IDLE_TIMEOUT:
      g_value_set_uint(value, priv->settings.idle_timeout_ms);
      break;
    case PROP_BOUND_PORT:
      g_value_set_uint(value, priv->server ? priv->server->bound_tcp_port() : 0);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_helix_frame_srv_finalize(GObject *object) {
  auto *self = GST_HELIX_FRAME_SRV(object);
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS(gst_helix_frame_srv_parent_class)->finalize(object);
}

static void gst_helix_frame_srv_class_init(GstHelixFrameSrvClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);

  gobject_class->set_property = gst_helix_frame_srv_set_property;
  gobject_class->get_property = gst_helix_frame_srv_get_property;
  gobject_class->finalize = gst_helix_frame_srv_finalize;

  /* No GST_PARAM_MUTABLE_*: the server runs from READY on, so these change in NULL only. */
  const auto flags = GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_property(
      gobject_class, PROP_ADDRESS,
      g_param_spec_string("address", "Address",
                          "Where to listen for HXFR clients: vsock://-1:PORT (any guest), "
                          "vsock://CID:PORT, tcp://HOST:PORT (port 0 picks a free one, see "
                          "bound-port) or unix:///PATH (created mode 0600, a stale file is "
                          "replaced). Changeable in the NULL state only.",
                          kDefaultAddress, flags));
  g_object_class_install_property(
      gobject_class, PROP_ENCODER,
      g_param_spec_string("encoder", "Encoder",
                          "H.264 encoder: 'auto' (the first present of vah264enc, "
                          "vaapih264enc, nvh264enc, qsvh264enc, x264enc, openh264enc, set for "
                          "low latency), a factory name (also set for low latency when we know "
                          "it), or a bin description used as given, e.g. 'x264enc "
                          "tune=zerolatency bitrate=4000'.",
                          kDefaultEncoder, flags));
  g_object_class_install_property(
      gobject_class, PROP_MAX_CLIENTS,
      g_param_spec_uint("max-clients", "Maximum clients",
                        "Connections served at once; more are answered ERROR and closed.", 1,
                        kMaxMaxClients, kDefaultMaxClients, flags));
  g_object_class_install_property(
      gobject_class, PROP_MAX_PAYLOAD,
      g_param_spec_uint("max-payload", "Maximum payload",
                        "Largest message payload accepted, in bytes (a pixel upload counts "
                        "its pixels); a larger one is answered ERROR INVALID_MSG and the "
                        "connection closed.",
                        vmd::hxfr::kErrorSize, kMaxMaxPayload, kDefaultMaxPayload, flags));
  g_object_class_install_property(
      gobject_class, PROP_BOUND_PORT,
      g_param_spec_uint("bound-port", "Bound TCP port",
                        "The TCP port listened on (useful with tcp://HOST:0); 0 when not "
                        "listening or not on TCP.",
                        0, G_MAXUINT16, 0, GParamFlags(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_CLIENT_TIMEOUT,
      g_param_spec_uint("client-timeout", "Client timeout",
                        "Milliseconds a client has to complete a message once its first byte "
                        "came, however slowly the rest trickles in; later, the client is "
                        "answered ERROR INVALID_MSG and closed.",
                        kMinClientTimeoutMs, G_MAXINT, kDefaultClientTimeoutMs, flags));
  g_object_class_install_property(
      gobject_class, PROP_IDLE_TIMEOUT,
      g_param_spec_uint("idle-timeout", "Idle timeout",
                        "Milliseconds a connection may send no request (PING does not count) "
                        "before it is closed, freeing its max-clients slot; a subscribed "
                        "connection is never idle. 0: never.",
                        0, G_MAXINT, kDefaultIdleTimeoutMs, flags));
  g_object_class_install_property(
      gobject_class, PROP_TOKEN,
      g_param_spec_string("token", "Token",
                          "Shared secret every client must send in HELLO (vsockenc's token); "
                          "others get ERROR UNAUTHORIZED and are closed, v1 clients included. "
                          "NULL: no authentication. Write-only (kept out of property dumps "
                          "such as pipeline graphs), never logged",
                          nullptr, GParamFlags(G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS)));

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_set_static_metadata(
      element_class, "Helix frame server", "Sink/Video/Network",
      "Serves HXFR (Helix frame export) clients: encodes their uploaded frames, or the frames "
      "of the scanouts fed to its sink pads, to H.264",
      "gst-vmdisplay");
  element_class->change_state = gst_helix_frame_srv_change_state;
  element_class->request_new_pad = gst_helix_frame_srv_request_new_pad;
  element_class->release_pad = gst_helix_frame_srv_release_pad;

  GST_DEBUG_CATEGORY_INIT(gst_helix_frame_srv_debug, "helixframesrv", 0,
                          "Helix frame server element");
}

static void gst_helix_frame_srv_init(GstHelixFrameSrv *self) {
  self->priv = new GstHelixFrameSrvPrivate();
}
