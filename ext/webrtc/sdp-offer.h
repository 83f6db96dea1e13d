/* gst-vmdisplay: what a viewer's SDP offer asks of the video we send: its H.264 payload type
 * (packetization-mode=1, a profile-level-id we can send), its header extensions, the mid.
 */
#pragma once

#include <gst/gst.h>
#include <gst/sdp/sdp.h>

#include <string>
#include <utility>
#include <vector>

namespace vmd::webrtc {

struct VideoOffer {
  int payload_type = -1;
  std::string profile_level_id; /* as offered, e.g. "42e01f" */
  std::vector<std::pair<int, std::string>> extmaps; /* id, URI of the video m-line */
  std::string mid;
  unsigned media_index = 0;     /* index of the video m-line */
  bool has_data_channel = false; /* an application m-line (SCTP) is offered */
};

/* Picks the H.264 format of the first video m-line that can receive (not sendonly/inactive):
 * packetization-mode=1, preferring constrained baseline (42e0xx / 42c0xx), then baseline
 * (4200xx), then main (4d00xx), then high (6400xx). False with *why ("no video m-line",
 * "no H.264 with packetization-mode=1 offered", ...) otherwise. */
bool parse_video_offer(const GstSDPMessage *offer, VideoOffer *out, std::string *why);
bool parse_video_offer(const std::string &sdp, VideoOffer *out, std::string *why);

/* The caps for the viewer's payloader (rtph264pay src) and webrtcbin's sink pad:
 * application/x-rtp, media=video, encoding-name=H264, clock-rate=90000, payload=PT,
 * packetization-mode="1", profile-level-id, and extmap-ID=URI for the extensions we
 * implement (those whose URI is in the list `supported`). */
GstCaps *video_rtp_caps(const VideoOffer &offer, const std::vector<std::string> &supported);

}  // namespace vmd::webrtc
