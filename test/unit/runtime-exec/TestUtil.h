//===- TestUtil.h - temporary directories for executor tests -*- C++ -*-===//
#ifndef PIPEC_TEST_RUNTIME_EXEC_TESTUTIL_H
#define PIPEC_TEST_RUNTIME_EXEC_TESTUTIL_H

#include <filesystem>
#include <string>
#include <unistd.h>

namespace pipec::testing {

/// A fresh directory under the system's temporary directory, removed when
/// the object goes away.
class TempDir {
public:
  explicit TempDir(const std::string &tag) {
    path = (std::filesystem::temp_directory_path() /
            ("pipert-" + tag + "-" + std::to_string(::getpid())))
               .string();
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

} // namespace pipec::testing

#endif // PIPEC_TEST_RUNTIME_EXEC_TESTUTIL_H
