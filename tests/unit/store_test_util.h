// Helpers shared by the storage unit tests.
#ifndef SESSIONSERVER_TESTS_UNIT_STORE_TEST_UTIL_H_
#define SESSIONSERVER_TESTS_UNIT_STORE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "storage/session_store.h"
#include "util/clock.h"

namespace sessionserver {

inline std::unique_ptr<SessionStore> MustNewStore(const MemoryStoreOptions& options, Clock* clock) {
  Status s;
  auto store = NewMemoryStore(options, clock, &s);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return store;
}

// Put with no cookie; returns the outcome (the test fails on an error Status).
inline Outcome PutValue(SessionStore* store, const std::string& id, const std::string& data,
                        int32_t timeout_minutes = 20, int64_t cookie = 0) {
  WriteResult w;
  Status s = store->Put(id, data, timeout_minutes, cookie, false, &w);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return w.outcome;
}

inline ReadResult GetValue(SessionStore* store, const std::string& id) {
  ReadResult r;
  Status s = store->Get(id, &r);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return r;
}

inline ReadResult Lock(SessionStore* store, const std::string& id) {
  ReadResult r;
  Status s = store->GetExclusive(id, &r);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return r;
}

}  // namespace sessionserver

#endif  // SESSIONSERVER_TESTS_UNIT_STORE_TEST_UTIL_H_
