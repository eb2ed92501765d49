// TempDir: a fresh directory under /tmp for one test, removed with everything in it on
// destruction.
#ifndef SESSIONSERVER_TESTS_TEMP_DIR_H_
#define SESSIONSERVER_TESTS_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace sessionserver {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix) {
    std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }  // empty if creation failed

 private:
  std::string path_;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_TESTS_TEMP_DIR_H_
