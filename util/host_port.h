// HostPort: the one "host:port" of the project. Every address on a flag, in a client option, in
// the fleet registry or in a Redis Cluster redirect is parsed by ParseHostPort and written by
// HostPort::ToString, so the text is the same everywhere (server ids, rendezvous keys, cookies).
//
// Accepted text (nothing else; no surrounding spaces):
//   host-port  = host ":" port
//   host       = 1*255 name-char              ; a host name or IPv4 address
//              / "[" 1*45 ipv6-char "]"       ; an IPv6 address, in brackets
//   name-char  = ALPHA / DIGIT / "." / "-" / "_"
//   ipv6-char  = HEXDIG / ":" / "."           ; at least one ":"; no zone ids ("%eth0")
//   port       = %x31-39 *4DIGIT              ; 1..65535, decimal, no sign, no leading zero
// The host is not resolved or checked further. An IPv6 host is stored without its brackets and
// written with them ("[::1]:7500"), so ParseHostPort and ToString round-trip.
//
// Thread-safe: pure functions.
#ifndef SESSIONSERVER_UTIL_HOST_PORT_H_
#define SESSIONSERVER_UTIL_HOST_PORT_H_

#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace sessionserver {

struct HostPort {
  std::string host;  // e.g. "127.0.0.1", "redis-1.example", "::1" (no brackets)
  int port = 0;      // 1..65535 once parsed
  // "host:port" ("[host]:port" for an IPv6 host).
  std::string ToString() const;
  bool operator==(const HostPort& o) const { return host == o.host && port == o.port; }
};

// Parses `text` as host-port (grammar above). InvalidArgument, quoting the text and naming what
// is wrong, otherwise; *out is then unchanged.
Status ParseHostPort(std::string_view text, HostPort* out);

// Parses "host:port[,host:port...]": one or more host-port, separated by commas, each optionally
// surrounded by spaces. No empty items. InvalidArgument on the first bad item (*out unchanged).
Status ParseHostPortList(std::string_view text, std::vector<HostPort>* out);

}  // namespace sessionserver

#endif  // SESSIONSERVER_UTIL_HOST_PORT_H_
