/* gst-vmdisplay: the vmwebrtcsink debug category, shared by the plugin's files. */
#pragma once

#include <gst/gst.h>

GST_DEBUG_CATEGORY_EXTERN(vmd_webrtc_debug);
