// Escaping text for HTML pages and JSON documents. Thread-safe: pure functions.
#ifndef SESSIONSERVER_UTIL_TEXT_H_
#define SESSIONSERVER_UTIL_TEXT_H_

#include <string>
#include <string_view>

namespace sessionserver {

// Text for an HTML page or attribute value: & < > " ' escaped.
std::string HtmlEscape(std::string_view text);
// A JSON string literal, quotes included: " \ and control characters escaped. Bytes >= 0x80 pass
// through (REQUIRES valid UTF-8 for a valid document).
std::string JsonString(std::string_view text);

}  // namespace sessionserver

#endif  // SESSIONSERVER_UTIL_TEXT_H_
