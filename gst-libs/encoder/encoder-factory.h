/* gst-vmdisplay: choosing and configuring the H.264 encoder helixframesrv and vmwebrtcsink use.
 *
 * The `encoder` property is "auto" (the best hardware encoder present, then software), a
 * factory name ("x264enc") or a bin description ("x264enc bitrate=2000 ! queue"). This file
 * knows each encoder's low-latency settings and bitrate units, so the rest of the server never
 * looks at a factory name.
 */
#pragma once

#include <gst/gst.h>

#include <cstdint>
#include <string>

namespace vmd::encode {

/* The order "auto" tries: VA (new, then old), NVENC, Quick Sync, then software. */
extern const char *const kAutoEncoderOrder[];
extern const size_t kAutoEncoderOrderSize;

struct EncoderChoice {
  std::string description; /* gst_parse_bin_from_description() text */
  std::string factory;     /* the encoder's factory name, empty for a custom bin */
};

/* Resolves the `encoder` setting. "auto": the first factory of kAutoEncoderOrder present in
 * the registry. A factory name: that factory with our low-latency settings. Anything else is
 * taken as a bin description and used as given. False (with *error) when "auto" finds nothing
 * or a named factory is missing. */
bool choose_encoder(const std::string &setting, EncoderChoice *out, std::string *error);

/* Low-latency properties for a known factory ("tune=zerolatency bframes=0 ..."), empty when
 * the factory is not one we know. */
std::string low_latency_options(const std::string &factory);

/* Applies a bitrate to an encoder element in whatever unit its property takes. False when the
 * element has no bitrate property we know. Safe in PLAYING for every encoder listed. */
bool set_encoder_bitrate(GstElement *encoder, uint32_t bitrate_bps);

/* The H.264 encoder inside a built bin (the element whose factory is in the encoder klass),
 * or nullptr. Not a new reference. */
GstElement *find_encoder_element(GstElement *bin);

}  // namespace vmd::encode
