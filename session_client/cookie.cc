// Sealed routing cookies (contract in include/session_client/cookie.h, format in docs/COOKIE.md).
#include "session_client/cookie.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "session_client/base64url.h"

namespace sessionserver::client {
namespace {

constexpr char kPrefix[] = "v1.";
constexpr size_t kPrefixChars = sizeof(kPrefix) - 1;
constexpr size_t kKeyIdBytes = 4;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;
// Authenticated with every cookie: a value sealed for another purpose under the same key does
// not open as a routing cookie.
constexpr char kAad[] = "sessionserver routing cookie v1";

void RandomBytes(uint8_t* out, size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1) {
    std::fprintf(stderr, "session_client: the CSPRNG failed\n");
    std::abort();
  }
}

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;

const uint8_t* U8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

}  // namespace

CookieKeySet CookieKeySet::Generate() {
  CookieKeySet set;
  set.current.id = 1;
  RandomBytes(set.current.bytes.data(), set.current.bytes.size());
  return set;
}

void CookieKeySet::Rotate(size_t keep_previous) {
  uint32_t max_id = current.id;
  for (const CookieKey& k : previous) max_id = std::max(max_id, k.id);
  previous.insert(previous.begin(), current);
  if (previous.size() > keep_previous) previous.resize(keep_previous);
  current.id = max_id + 1;
  RandomBytes(current.bytes.data(), current.bytes.size());
}

std::string CookieKeySet::Serialize() const {
  std::string out;
  auto line = [&out](const CookieKey& k) {
    char hex[3];
    out += std::to_string(k.id) + " ";
    for (uint8_t b : k.bytes) {
      std::snprintf(hex, sizeof(hex), "%02x", b);
      out += hex;
    }
    out += "\n";
  };
  line(current);
  for (const CookieKey& k : previous) line(k);
  return out;
}

Status CookieKeySet::Parse(std::string_view text, CookieKeySet* out) {
  std::vector<CookieKey> keys;
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.empty()) continue;
    const std::string where = "cookie key line " + std::to_string(line_no);
    const size_t space = line.find(' ');
    if (space == std::string_view::npos || space == 0 || space > 9 ||
        line.size() != space + 1 + 64) {
      return Status::InvalidArgument(where + ": expected \"<id> <64 hex digits>\"");
    }
    CookieKey k;
    uint64_t id = 0;
    for (char c : line.substr(0, space)) {
      if (c < '0' || c > '9') return Status::InvalidArgument(where + ": id is not a number");
      id = id * 10 + static_cast<uint64_t>(c - '0');
    }
    if (id == 0 || id > UINT32_MAX) return Status::InvalidArgument(where + ": id out of range");
    k.id = static_cast<uint32_t>(id);
    for (size_t i = 0; i < 32; ++i) {
      int byte = 0;
      for (char c : line.substr(space + 1 + 2 * i, 2)) {
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0) return Status::InvalidArgument(where + ": key is not lowercase hex");
        byte = byte * 16 + v;
      }
      k.bytes[i] = static_cast<uint8_t>(byte);
    }
    for (const CookieKey& other : keys) {
      if (other.id == k.id) return Status::InvalidArgument(where + ": duplicate key id");
    }
    keys.push_back(k);
  }
  if (keys.empty()) return Status::InvalidArgument("cookie key set is empty");
  out->current = keys.front();
  out->previous.assign(keys.begin() + 1, keys.end());
  return Status::OK();
}

CookieSealer::CookieSealer(CookieKeySet keys) : keys_(std::move(keys)) {}

const CookieKey* CookieSealer::Find(uint32_t id) const {
  if (keys_.current.id == id) return &keys_.current;
  for (const CookieKey& k : keys_.previous) {
    if (k.id == id) return &k;
  }
  return nullptr;
}

std::string CookieSealer::Seal(const CookieContents& contents) const {
  std::string plain;
  plain.push_back(static_cast<char>(contents.session_id.size()));
  plain += contents.session_id;
  const std::string server = contents.server_id.substr(0, kMaxServerIdBytes);
  plain.push_back(static_cast<char>(server.size()));
  plain += server;
  plain.append(kMaxServerIdBytes - server.size(), '\0');  // fixed length: hides which server

  std::string sealed(kKeyIdBytes + kNonceBytes + plain.size() + kTagBytes, '\0');
  uint8_t* p = reinterpret_cast<uint8_t*>(sealed.data());
  for (size_t i = 0; i < kKeyIdBytes; ++i)
    p[i] = static_cast<uint8_t>(keys_.current.id >> (24 - 8 * i));
  RandomBytes(p + kKeyIdBytes, kNonceBytes);
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  const bool ok =
      ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) == 1 &&
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, keys_.current.bytes.data(),
                         p + kKeyIdBytes) == 1 &&
      // The key id is authenticated too: a cookie cannot be moved to another key's slot.
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, p, kKeyIdBytes) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const uint8_t*>(kAad),
                        sizeof(kAad) - 1) == 1 &&
      EVP_EncryptUpdate(ctx.get(), p + kKeyIdBytes + kNonceBytes, &len, U8(plain),
                        static_cast<int>(plain.size())) == 1 &&
      EVP_EncryptFinal_ex(ctx.get(), p + kKeyIdBytes + kNonceBytes + len, &len) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          p + kKeyIdBytes + kNonceBytes + plain.size()) == 1;
  if (!ok) {
    std::fprintf(stderr, "session_client: AES-256-GCM failed\n");
    std::abort();
  }
  return kPrefix + Base64UrlEncode(sealed);
}

Status CookieSealer::Open(std::string_view cookie, CookieContents* out, bool* current_key) const {
  if (cookie.size() > kMaxCookieChars) return Status::InvalidArgument("cookie too long");
  if (cookie.substr(0, kPrefixChars) != kPrefix) {
    return Status::InvalidArgument("cookie has an unknown format");
  }
  std::string sealed;
  if (!Base64UrlDecode(cookie.substr(kPrefixChars), &sealed)) {
    return Status::InvalidArgument("cookie is not base64url");
  }
  if (sealed.size() < kKeyIdBytes + kNonceBytes + 2 + kTagBytes) {
    return Status::InvalidArgument("cookie too short");
  }
  const uint8_t* p = U8(sealed);
  uint32_t key_id = 0;
  for (size_t i = 0; i < kKeyIdBytes; ++i) key_id = (key_id << 8) | p[i];
  const CookieKey* key = Find(key_id);
  if (key == nullptr)
    return Status::InvalidArgument("cookie sealed with an unknown or retired key");
  const size_t cipher_len = sealed.size() - kKeyIdBytes - kNonceBytes - kTagBytes;
  std::string plain(cipher_len, '\0');
  std::string tag(sealed.substr(sealed.size() - kTagBytes));
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  const bool ok =
      ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) == 1 &&
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key->bytes.data(), p + kKeyIdBytes) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, p, kKeyIdBytes) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const uint8_t*>(kAad),
                        sizeof(kAad) - 1) == 1 &&
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<uint8_t*>(plain.data()), &len,
                        p + kKeyIdBytes + kNonceBytes, static_cast<int>(cipher_len)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<uint8_t*>(plain.data()) + len, &len) == 1;
  if (!ok) return Status::InvalidArgument("cookie failed authentication");
  // Authentic, so written by Seal; still parsed defensively.
  const size_t id_len = static_cast<uint8_t>(plain[0]);
  if (id_len == 0 || 1 + id_len >= plain.size()) {
    return Status::InvalidArgument("cookie contents malformed");
  }
  const size_t server_len = static_cast<uint8_t>(plain[1 + id_len]);
  if (server_len > kMaxServerIdBytes || 2 + id_len + kMaxServerIdBytes != plain.size()) {
    return Status::InvalidArgument("cookie contents malformed");
  }
  out->session_id = plain.substr(1, id_len);
  out->server_id = plain.substr(2 + id_len, server_len);
  if (current_key != nullptr) *current_key = key == &keys_.current;
  return Status::OK();
}

}  // namespace sessionserver::client
