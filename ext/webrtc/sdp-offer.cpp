/* gst-vmdisplay: the video format a viewer's SDP offer asks for (sdp-offer.h).
 *
 * Browsers offer H.264 in several profiles, each with packetization-mode 0 and 1 under its
 * own payload type (Chromium: 42001f, 42e01f, 4d001f, 64001f; Firefox: 42e01f and 42e01f
 * without packetization-mode). webrtcbin matches our caps against the offer's fmtp, so the
 * payload type, profile-level-id and header-extension ids are taken from the offer as they
 * are. Everything read from the offer is bounded: its size, the number of extmaps, the
 * length of a mid and of an extmap URI.
 */
#include "sdp-offer.h"

#include <algorithm>
#include <cstring>
#include <memory>

namespace vmd::webrtc {

namespace {

constexpr size_t kMaxOfferBytes = 256 * 1024;
constexpr size_t kMaxExtmaps = 32;
constexpr size_t kMaxUri = 256;
constexpr size_t kMaxMid = 32;

struct SdpMessageFree {
  void operator()(GstSDPMessage *m) const { gst_sdp_message_free(m); }
};
using SdpMessagePtr = std::unique_ptr<GstSDPMessage, SdpMessageFree>;

bool equal_nocase(const std::string &a, const char *b) {
  return g_ascii_strcasecmp(a.c_str(), b) == 0;
}

/* A decimal number in lo..hi, the whole of text. */
bool parse_int(const std::string &text, int lo, int hi, int *out) {
  if (text.empty() || text.size() > 6)
    return false;
  int v = 0;
  for (const char c : text) {
    if (c < '0' || c > '9')
      return false;
    v = v * 10 + (c - '0');
  }
  if (v < lo || v > hi)
    return false;
  *out = v;
  return true;
}

/* "PT rest" of an rtpmap/fmtp attribute for payload type pt: rest, or false. */
bool attribute_for_pt(const GstSDPMedia *media, const char *key, int pt, std::string *rest) {
  for (guint i = 0; i < gst_sdp_media_attributes_len(media); i++) {
    const GstSDPAttribute *a = gst_sdp_media_get_attribute(media, i);
    if (!a->key || strcmp(a->key, key) != 0 || !a->value)
      continue;
    const std::string v(a->value, strnlen(a->value, 1024));
    const size_t sp = v.find(' ');
    int n = -1;
    if (sp == std::string::npos || !parse_int(v.substr(0, sp), 0, 127, &n) || n != pt)
      continue;
    const size_t b = v.find_first_not_of(' ', sp);
    *rest = b == std::string::npos ? std::string() : v.substr(b);
    return true;
  }
  return false;
}

/* The value of one `key=value` parameter of an fmtp line (keys case-insensitive). */
std::string fmtp_param(const std::string &fmtp, const char *key) {
  size_t pos = 0;
  while (pos <= fmtp.size()) {
    size_t end = fmtp.find(';', pos);
    if (end == std::string::npos)
      end = fmtp.size();
    std::string item = fmtp.substr(pos, end - pos);
    const size_t b = item.find_first_not_of(' ');
    item = b == std::string::npos ? "" : item.substr(b);
    const size_t eq = item.find('=');
    if (eq != std::string::npos && equal_nocase(item.substr(0, eq), key)) {
      std::string value = item.substr(eq + 1);
      while (!value.empty() && value.back() == ' ')
        value.pop_back();
      return value;
    }
    pos = end + 1;
  }
  return {};
}

/* Our preference for a profile-level-id (lower is better), or -1 for one we do not send. */
int profile_rank(const std::string &plid) {
  if (plid.size() != 6)
    return -1;
  for (const char c : plid)
    if (!g_ascii_isxdigit(c))
      return -1;
  std::string lower;
  for (size_t i = 0; i < 4; i++)
    lower.push_back(char(g_ascii_tolower(plid[i])));
  if (lower == "42e0" || lower == "42c0")
    return 0; /* constrained baseline */
  if (lower == "4200")
    return 1; /* baseline */
  if (lower == "4d00")
    return 2; /* main */
  if (lower == "6400")
    return 3; /* high */
  return -1;
}

/* The best H.264 payload type of a video m-line with packetization-mode=1. */
bool pick_h264(const GstSDPMedia *media, VideoOffer *out) {
  int best_rank = -1;
  for (guint i = 0; i < gst_sdp_media_formats_len(media); i++) {
    int pt = -1;
    const char *fmt = gst_sdp_media_get_format(media, i);
    if (!fmt || !parse_int(std::string(fmt, strnlen(fmt, 8)), 0, 127, &pt))
      continue;
    std::string rtpmap, fmtp;
    if (!attribute_for_pt(media, "rtpmap", pt, &rtpmap) ||
        !equal_nocase(rtpmap, "H264/90000") || !attribute_for_pt(media, "fmtp", pt, &fmtp))
      continue;
    if (fmtp_param(fmtp, "packetization-mode") != "1")
      continue;
    const std::string plid = fmtp_param(fmtp, "profile-level-id");
    const int rank = profile_rank(plid);
    if (rank < 0 || (best_rank >= 0 && rank >= best_rank))
      continue;
    best_rank = rank;
    out->payload_type = pt;
    out->profile_level_id = plid;
  }
  return best_rank >= 0;
}

/* a=extmap:ID[/direction] URI [attributes]; malformed lines are skipped. */
void read_extmaps(const GstSDPMedia *media, VideoOffer *out) {
  for (guint i = 0; i < gst_sdp_media_attributes_len(media); i++) {
    const GstSDPAttribute *a = gst_sdp_media_get_attribute(media, i);
    if (!a->key || strcmp(a->key, "extmap") != 0 || !a->value)
      continue;
    if (out->extmaps.size() >= kMaxExtmaps)
      return;
    const std::string v(a->value, strnlen(a->value, 1024));
    const size_t sp = v.find(' ');
    if (sp == std::string::npos)
      continue;
    int id = 0;
    const std::string id_text = v.substr(0, std::min(sp, v.find('/')));
    if (!parse_int(id_text, 1, 255, &id))
      continue;
    const size_t ub = v.find_first_not_of(' ', sp);
    if (ub == std::string::npos)
      continue;
    const std::string uri = v.substr(ub, v.find(' ', ub) - ub);
    if (uri.empty() || uri.size() > kMaxUri)
      continue;
    out->extmaps.emplace_back(id, uri);
  }
}

bool media_can_receive(const GstSDPMedia *media) {
  return !gst_sdp_media_get_attribute_val(media, "sendonly") &&
         !gst_sdp_media_get_attribute_val(media, "inactive");
}

bool is_data_channel(const GstSDPMedia *media) {
  const char *m = gst_sdp_media_get_media(media);
  const char *proto = gst_sdp_media_get_proto(media);
  return m && proto && strcmp(m, "application") == 0 && strstr(proto, "SCTP");
}

/* A mid is an RFC 8843 token: printable ASCII without spaces, short. */
bool valid_mid(const char *mid) {
  const size_t len = strnlen(mid, kMaxMid + 1);
  if (len == 0 || len > kMaxMid)
    return false;
  for (size_t i = 0; i < len; i++)
    if (mid[i] <= ' ' || mid[i] > '~')
      return false;
  return true;
}

}  // namespace

bool parse_video_offer(const GstSDPMessage *offer, VideoOffer *out, std::string *why) {
  if (!offer) {
    *why = "no offer";
    return false;
  }
  VideoOffer v;
  bool video_seen = false, found = false;
  for (guint i = 0; i < gst_sdp_message_medias_len(offer); i++) {
    const GstSDPMedia *media = gst_sdp_message_get_media(offer, i);
    if (is_data_channel(media))
      v.has_data_channel = true;
    const char *kind = gst_sdp_media_get_media(media);
    if (found || !kind || strcmp(kind, "video") != 0)
      continue;
    video_seen = true;
    if (!media_can_receive(media))
      continue;
    if (!pick_h264(media, &v)) {
      *why = "no H.264 with packetization-mode=1 offered";
      return false;
    }
    const char *mid = gst_sdp_media_get_attribute_val(media, "mid");
    if (mid && !valid_mid(mid)) {
      *why = "the video m-line's mid is not a short token";
      return false;
    }
    v.mid = mid ? mid : "";
    v.media_index = i;
    read_extmaps(media, &v);
    found = true;
  }
  if (!found) {
    *why = video_seen ? "no video m-line that can receive (all sendonly or inactive)"
                      : "no video m-line";
    return false;
  }
  *out = std::move(v);
  return true;
}

bool parse_video_offer(const std::string &sdp, VideoOffer *out, std::string *why) {
  if (sdp.size() > kMaxOfferBytes) {
    *why = "offer larger than " + std::to_string(kMaxOfferBytes) + " bytes";
    return false;
  }
  if (sdp.empty()) {
    *why = "empty offer";
    return false;
  }
  GstSDPMessage *raw = nullptr;
  if (gst_sdp_message_new(&raw) != GST_SDP_OK) {
    *why = "out of memory";
    return false;
  }
  SdpMessagePtr msg(raw);
  if (gst_sdp_message_parse_buffer(reinterpret_cast<const guint8 *>(sdp.data()),
                                   guint(sdp.size()), msg.get()) != GST_SDP_OK) {
    *why = "not SDP";
    return false;
  }
  return parse_video_offer(msg.get(), out, why);
}

GstCaps *video_rtp_caps(const VideoOffer &offer, const std::vector<std::string> &supported) {
  if (offer.payload_type < 0 || offer.payload_type > 127 || offer.profile_level_id.empty())
    return nullptr;
  GstCaps *caps = gst_caps_new_simple(
      "application/x-rtp", "media", G_TYPE_STRING, "video", "encoding-name", G_TYPE_STRING,
      "H264", "clock-rate", G_TYPE_INT, 90000, "payload", G_TYPE_INT, offer.payload_type,
      "packetization-mode", G_TYPE_STRING, "1", "profile-level-id", G_TYPE_STRING,
      offer.profile_level_id.c_str(), nullptr);
  GstStructure *s = gst_caps_get_structure(caps, 0);
  for (const auto &[id, uri] : offer.extmaps) {
    bool ours = false;
    for (const std::string &u : supported)
      ours = ours || u == uri;
    if (!ours)
      continue;
    const std::string field = "extmap-" + std::to_string(id);
    gst_structure_set(s, field.c_str(), G_TYPE_STRING, uri.c_str(), nullptr);
  }
  return caps;
}

}  // namespace vmd::webrtc
