#include "loadtest/checker.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace sessionserver::loadtest {

namespace {

// Value layout: "SSLT", u32 incarnation, u64 counter (little-endian), then filler.
constexpr char kMagic[4] = {'S', 'S', 'L', 'T'};
constexpr size_t kStampBytes = 4 + 4 + 8;

void PutLittleEndian(uint64_t v, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetLittleEndian(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}

std::string Describe(const Stamp& s) {
  return "(inc " + std::to_string(s.incarnation) + ", counter " + std::to_string(s.counter) + ")";
}

std::string Us(int64_t t) { return std::to_string(t) + " us"; }

}  // namespace

std::string EncodeValue(const Stamp& stamp, size_t total_bytes) {
  std::string out;
  out.reserve(std::max(total_bytes, kStampBytes));
  out.append(kMagic, sizeof(kMagic));
  PutLittleEndian(stamp.incarnation, 4, &out);
  PutLittleEndian(stamp.counter, 8, &out);
  if (total_bytes > out.size()) out.append(total_bytes - out.size(), 'x');
  return out;
}

bool DecodeStamp(const std::string& value, Stamp* stamp) {
  if (value.size() < kStampBytes || std::memcmp(value.data(), kMagic, sizeof(kMagic)) != 0) {
    return false;
  }
  stamp->incarnation = static_cast<uint32_t>(GetLittleEndian(value.data() + 4, 4));
  stamp->counter = GetLittleEndian(value.data() + 8, 8);
  return true;
}

const ConsistencyChecker::Ack* ConsistencyChecker::LatestBefore(const SessionState& s, uint32_t inc,
                                                                int64_t before_us) {
  auto it = s.incarnations.find(inc);
  if (it == s.incarnations.end()) return nullptr;
  const Incarnation& in = it->second;
  const auto end = std::lower_bound(in.writes.begin(), in.writes.end(), before_us,
                                    [](const Ack& a, int64_t t) { return a.at_us < t; });
  if (end == in.writes.begin()) return nullptr;
  return &in.writes[in.best[static_cast<size_t>(end - in.writes.begin()) - 1]];
}

const std::pair<uint32_t, int64_t>* ConsistencyChecker::EndedBefore(const SessionState& s,
                                                                    uint32_t inc,
                                                                    int64_t before_us) {
  const std::pair<uint32_t, int64_t>* earliest = nullptr;
  for (const auto& end : s.ends) {
    if (end.first >= inc && end.second < before_us &&
        (earliest == nullptr || end.second < earliest->second)) {
      earliest = &end;
    }
  }
  return earliest;
}

void ConsistencyChecker::Report(uint64_t* counter, std::string what) {
  ++*counter;
  if (results_.examples.size() < kMaxExamples) results_.examples.push_back(std::move(what));
}

void ConsistencyChecker::OnRead(uint32_t session, int64_t start_us, bool found, const Stamp& seen,
                                bool for_write) {
  MutexLock lock(&mu_);
  SessionState& s = sessions_[session];
  auto who = [&] {  // built only when something is reported
    return "session " + std::to_string(session) + ": a " + (for_write ? "writing" : "read-only") +
           " request started at " + Us(start_us);
  };
  if (found) {
    if (const auto* end = EndedBefore(s, seen.incarnation, start_us)) {
      Report(&results_.resurrected, "resurrected: " + who() + " saw " + Describe(seen) +
                                        ", but the sign-out of inc " + std::to_string(end->first) +
                                        " was acknowledged at " + Us(end->second));
      return;
    }
    const Ack* latest = LatestBefore(s, seen.incarnation, start_us);
    if (latest == nullptr || latest->stamp.counter <= seen.counter) return;
    const std::string what = who() + " saw " + Describe(seen) + ", but " + Describe(latest->stamp) +
                             " was acknowledged at " + Us(latest->at_us);
    if (for_write) {
      Report(&results_.lost_updates, "lost update: " + what);
      // Its write will repeat an acknowledged counter: counted here, not again at its ack.
      s.preblamed.push_back(Stamp{seen.incarnation, seen.counter + 1});
    } else {
      Report(&results_.stale_reads, "stale read: " + what);
    }
    return;
  }
  // Found nothing: legal unless the newest incarnation with writes acknowledged before the start
  // had not ended by then (a sign-out of it ends the older ones too).
  for (auto it = s.incarnations.rbegin(); it != s.incarnations.rend(); ++it) {
    const Ack* latest = LatestBefore(s, it->first, start_us);
    if (latest == nullptr) continue;
    if (EndedBefore(s, it->first, start_us) == nullptr) {
      suspects_.push_back(Suspect{session, start_us, for_write, *latest});
    }
    return;
  }
}

void ConsistencyChecker::OnWriteAcked(uint32_t session, int64_t ack_us, const Stamp& written) {
  MutexLock lock(&mu_);
  SessionState& s = sessions_[session];
  Incarnation& in = s.incarnations[written.incarnation];

  auto pre = std::find_if(s.preblamed.begin(), s.preblamed.end(), [&](const Stamp& p) {
    return p.incarnation == written.incarnation && p.counter == written.counter;
  });
  const bool already_counted = pre != s.preblamed.end();
  if (already_counted) s.preblamed.erase(pre);
  auto [first, inserted] = in.acked_at.emplace(written.counter, ack_us);
  // Counter 1 is what a writer that found nothing writes; that read was judged on its own.
  if (!inserted && !already_counted && written.counter > 1) {
    Report(&results_.lost_updates, "lost update: session " + std::to_string(session) +
                                       ": a write of " + Describe(written) +
                                       " was acknowledged at " + Us(ack_us) +
                                       ", but the same counter had been acknowledged at " +
                                       Us(first->second) + " (two writers read the same counter)");
  }

  // Keep the writes in acknowledgement-time order (reports may arrive slightly out of order),
  // and the running argmax from the insertion point on.
  const auto pos = std::upper_bound(in.writes.begin(), in.writes.end(), ack_us,
                                    [](int64_t t, const Ack& a) { return t < a.at_us; });
  const size_t from = static_cast<size_t>(pos - in.writes.begin());
  in.writes.insert(pos, Ack{ack_us, written});
  in.best.resize(in.writes.size());
  for (size_t i = from; i < in.writes.size(); ++i) {
    in.best[i] = (i == 0 || in.writes[i].stamp.counter > in.writes[in.best[i - 1]].stamp.counter)
                     ? i
                     : in.best[i - 1];
  }
}

void ConsistencyChecker::OnSignOutAcked(uint32_t session, uint32_t incarnation, int64_t ack_us) {
  MutexLock lock(&mu_);
  sessions_[session].ends.emplace_back(incarnation, ack_us);
  // Requests that found nothing in an incarnation this sign-out ended may have overlapped it.
  suspects_.erase(std::remove_if(suspects_.begin(), suspects_.end(),
                                 [&](const Suspect& x) {
                                   return x.session == session &&
                                          x.latest.stamp.incarnation <= incarnation;
                                 }),
                  suspects_.end());
}

CheckerResults ConsistencyChecker::Results() const {
  MutexLock lock(&mu_);
  CheckerResults out = results_;
  for (const Suspect& x : suspects_) {
    ++(x.for_write ? out.lost_updates : out.stale_reads);
    if (out.examples.size() < kMaxExamples) {
      out.examples.push_back(std::string(x.for_write ? "lost update" : "stale read") +
                             ": session " + std::to_string(x.session) + ": a " +
                             (x.for_write ? "writing" : "read-only") + " request started at " +
                             Us(x.start_us) + " found nothing, but " + Describe(x.latest.stamp) +
                             " was acknowledged at " + Us(x.latest.at_us) +
                             " and no sign-out of it was");
    }
  }
  return out;
}

}  // namespace sessionserver::loadtest
