/* Test support: runs "<source description> ! appsink" in a real pipeline and
 * lets a test pull samples and watch the bus with bounded waits. */
#pragma once

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <cstdint>
#include <string>

namespace testsupport {

class SrcPipeline {
 public:
  /* e.g. "qemudbussrc qmp=/tmp/x keepalive-ms=0"; appsink is appended. */
  explicit SrcPipeline(const std::string &source, const std::string &sink_props = "");
  ~SrcPipeline();
  SrcPipeline(const SrcPipeline &) = delete;
  SrcPipeline &operator=(const SrcPipeline &) = delete;

  bool play();
  void stop();
  GstElement *source() const { return source_; }
  GstElement *pipeline() const { return pipeline_; }

  /* A new sample (owned by the caller) or nullptr after timeout_ms, EOS or error. */
  GstSample *pull(int timeout_ms);
  /* Pulls until a sample whose caps have this width and height. */
  GstSample *pull_size(int width, int height, int timeout_ms);
  /* Samples pulled within a time window, dropping them. */
  int count_samples(int window_ms);

  /* Bus: waits for an error (text and debug) or EOS. */
  bool wait_error(int timeout_ms, std::string *message = nullptr, std::string *debug = nullptr);
  bool wait_eos(int timeout_ms);
  /* Warnings seen so far (text + debug), drained from the bus. */
  std::string warnings();

  /* A counter of the stats structure. */
  uint64_t stat(const char *field);

 private:
  GstMessage *pop_bus(GstMessageType types, int timeout_ms);

  GstElement *pipeline_ = nullptr;
  GstElement *source_ = nullptr;
  GstElement *sink_ = nullptr;
  std::string warnings_;
};

/* The RGB value of pixel x,y of a sample, whatever packed RGB format it has. */
struct Rgb {
  uint8_t r, g, b;
};

/* The test VM's colour bars (tests/vm/guest/pattern.c), left to right: white, yellow, cyan,
 * green, magenta, red, blue, black. */
inline constexpr Rgb kVmPatternBars[8] = {{255, 255, 255}, {255, 255, 0}, {0, 255, 255},
                                          {0, 255, 0},     {255, 0, 255}, {255, 0, 0},
                                          {0, 0, 255},     {0, 0, 0}};
Rgb pixel_at(GstSample *sample, int x, int y);
bool sample_size(GstSample *sample, int *width, int *height, std::string *format = nullptr);

}  // namespace testsupport
