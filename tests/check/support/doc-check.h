/* Test support: an element's own properties are all documented, in its class metadata (a
 * real blurb) and in its page under docs/ (the name in backquotes). Header only. */
#pragma once

#include <gst/gst.h>

#include <cstring>
#include <string>

namespace testsupport {

/* "" when every property `factory` adds to its parents is in docs/<doc_name> (read from the
 * directory in VMD_DOCS_DIR) and has a blurb of more than 20 characters; else the first that
 * is not. "" and *skipped = true without VMD_DOCS_DIR. */
inline std::string undocumented_property(const char *factory, const char *doc_name,
                                         bool *skipped) {
  *skipped = false;
  const char *dir = g_getenv("VMD_DOCS_DIR");
  if (!dir) {
    *skipped = true;
    return "";
  }
  const std::string path = std::string(dir) + "/" + doc_name;
  gchar *doc = nullptr;
  if (!g_file_get_contents(path.c_str(), &doc, nullptr, nullptr))
    return "cannot read " + path;
  GstElement *element = gst_element_factory_make(factory, nullptr);
  if (!element) {
    g_free(doc);
    return std::string("no element ") + factory;
  }
  std::string problem;
  guint n = 0;
  GParamSpec **props = g_object_class_list_properties(G_OBJECT_GET_CLASS(element), &n);
  for (guint i = 0; i < n && problem.empty(); i++) {
    if (props[i]->owner_type != G_OBJECT_TYPE(element))
      continue; /* inherited */
    const std::string needle = std::string("`") + props[i]->name + "`";
    if (!strstr(doc, needle.c_str()))
      problem = std::string(props[i]->name) + " is not in " + path;
    else if (!g_param_spec_get_blurb(props[i]) || strlen(g_param_spec_get_blurb(props[i])) <= 20)
      problem = std::string(props[i]->name) + " has no real description";
  }
  g_free(props);
  g_free(doc);
  gst_object_unref(element);
  return problem;
}

}  // namespace testsupport
