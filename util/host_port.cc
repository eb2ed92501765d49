#include "util/host_port.h"

#include <algorithm>

namespace sessionserver {
namespace {

constexpr size_t kMaxHostBytes = 255;
constexpr size_t kMaxIpv6Bytes = 45;  // INET6_ADDRSTRLEN - 1

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

bool Ipv6Char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
         c == '.';
}

Status Bad(std::string_view text, const std::string& why) {
  return Status::InvalidArgument("bad address \"" + std::string(text) + "\": " + why +
                                 " (expected host:port, or [ipv6]:port)");
}

// "[ipv6]..." into the address and what follows the ']'; what is wrong, or "" if nothing.
std::string SplitBracketedHost(std::string_view text, std::string_view* host,
                               std::string_view* rest) {
  const size_t close = text.find(']');
  if (close == std::string_view::npos) return "no ']' after the IPv6 address";
  *host = text.substr(1, close - 1);
  *rest = text.substr(close + 1);
  if (host->empty()) return "empty host";
  if (host->size() > kMaxIpv6Bytes || host->find(':') == std::string_view::npos ||
      !std::all_of(host->begin(), host->end(), Ipv6Char)) {
    return "not an IPv6 address in brackets";
  }
  return "";
}

// "name:..." into the name and what follows it, from the ':' on; what is wrong, or "".
std::string SplitNamedHost(std::string_view text, std::string_view* host, std::string_view* rest) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return "no ':' before the port";
  *host = text.substr(0, colon);
  *rest = text.substr(colon);
  if (rest->find(':', 1) != std::string_view::npos) {
    return "more than one ':' (an IPv6 address goes in brackets)";
  }
  if (host->empty()) return "empty host";
  if (host->size() > kMaxHostBytes) return "host longer than 255 bytes";
  if (!std::all_of(host->begin(), host->end(), NameChar)) {
    return "host may hold only letters, digits, '.', '-' and '_'";
  }
  return "";
}

// The port after the host's ':'; 0 with *why set if it is not 1..65535 in canonical decimal.
int ParsePort(std::string_view digits, std::string* why) {
  if (digits.empty()) {
    *why = "no port after ':'";
    return 0;
  }
  int port = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') {
      *why = "port \"" + std::string(digits) + "\" is not a decimal number";
      return 0;
    }
    if (port <= 65535) port = port * 10 + (c - '0');  // stops growing once out of range
  }
  if (port < 1 || port > 65535) {
    *why = "port " + std::string(digits) + " is outside 1..65535";
    return 0;
  }
  if (digits[0] == '0') {
    *why = "port \"" + std::string(digits) + "\" has a leading zero";
    return 0;
  }
  return port;
}

}  // namespace

std::string HostPort::ToString() const {
  const std::string p = std::to_string(port);
  return host.find(':') == std::string::npos ? host + ":" + p : "[" + host + "]:" + p;
}

Status ParseHostPort(std::string_view text, HostPort* out) {
  if (text.empty()) return Bad(text, "empty");
  std::string_view host, rest;
  std::string why =
      text[0] == '[' ? SplitBracketedHost(text, &host, &rest) : SplitNamedHost(text, &host, &rest);
  if (!why.empty()) return Bad(text, why);
  if (rest.empty() || rest[0] != ':') return Bad(text, "no ':' before the port");
  const int port = ParsePort(rest.substr(1), &why);
  if (port == 0) return Bad(text, why);
  out->host = std::string(host);
  out->port = port;
  return Status::OK();
}

Status ParseHostPortList(std::string_view text, std::vector<HostPort>* out) {
  std::vector<HostPort> parsed;
  while (true) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    HostPort hp;
    Status s = ParseHostPort(item, &hp);
    if (!s.ok()) return s;
    parsed.push_back(std::move(hp));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  *out = std::move(parsed);
  return Status::OK();
}

}  // namespace sessionserver
