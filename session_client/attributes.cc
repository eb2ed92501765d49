#include "session_client/attributes.h"

#include <cstdint>

namespace sessionserver::client {
namespace {

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    const uint8_t b = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    if (shift == 63 && b > 1) return false;  // more than 64 bits
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return shift == 0 || b != 0;  // no over-long (zero-padded) forms
  }
  return false;
}

bool GetBytes(std::string_view* in, std::string* out) {
  uint64_t len = 0;
  if (!GetVarint(in, &len) || len > in->size()) return false;
  out->assign(in->substr(0, len));
  in->remove_prefix(len);
  return true;
}

}  // namespace

std::string EncodeAttributes(const Attributes& attrs) {
  if (attrs.empty()) return {};
  std::string out(1, kAttributesFormatV1);
  for (const auto& [name, value] : attrs) {
    PutVarint(&out, name.size());
    out += name;
    PutVarint(&out, value.size());
    out += value;
  }
  return out;
}

bool DecodeAttributes(std::string_view bytes, Attributes* attrs) {
  Attributes decoded;
  if (!bytes.empty()) {
    if (bytes.front() != kAttributesFormatV1) return false;
    bytes.remove_prefix(1);
    while (!bytes.empty()) {
      std::string name, value;
      if (!GetBytes(&bytes, &name) || !GetBytes(&bytes, &value)) return false;
      // Canonical: names strictly increasing (so also unique).
      if (!decoded.empty() && !(decoded.rbegin()->first < name)) return false;
      decoded.emplace_hint(decoded.end(), std::move(name), std::move(value));
    }
  }
  *attrs = std::move(decoded);
  return true;
}

}  // namespace sessionserver::client
