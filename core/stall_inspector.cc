#include "core/stall_inspector.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "common/logging.h"
#include "common/text.h"

namespace braid {
namespace {

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

double SecondsSince(Clock::time_point then, Clock::time_point now) {
  return std::chrono::duration<double>(now - then).count();
}

// The ranks that submitted the entry's name, and those still missing (joined
// ranks count as present: they take part in whatever the others submit).
void SplitRanks(const MessageTable& table, const MessageTable::Entry& entry,
                std::vector<int>* submitted, std::vector<int>* missing) {
  for (size_t r = 0; r < entry.submitted.size(); ++r) {
    int rank = static_cast<int>(r);
    if (entry.submitted[r]) submitted->push_back(rank);
    if (table.Missing(entry, rank)) missing->push_back(rank);
  }
}

}  // namespace

StallInspector::StallInspector(double warning_seconds, double timeout_seconds)
    : warning_(Seconds(warning_seconds)), timeout_(Seconds(timeout_seconds)) {
  double shortest = warning_seconds;
  if (timeout_seconds > 0) shortest = std::min(shortest, timeout_seconds);
  // Look often enough to report within a tenth of the shortest limit.
  period_ = Seconds(std::min(1.0, std::max(0.005, shortest / 10)));
  last_inspection_ = Clock::now();
}

bool StallInspector::Due(Clock::time_point now) const {
  return now - last_inspection_ >= period_;
}

void StallInspector::Warn(MessageTable* table, Clock::time_point now) {
  // Missing names grouped by the rank that has not submitted them.
  std::map<int, std::vector<std::string>> missing;
  double oldest = 0;
  for (auto& kv : table->entries()) {
    MessageTable::Entry& entry = kv.second;
    if (now - entry.first_seen < warning_ || now - entry.last_warned < warning_) continue;
    entry.last_warned = now;
    oldest = std::max(oldest, SecondsSince(entry.first_seen, now));
    for (size_t r = 0; r < entry.submitted.size(); ++r)
      if (table->Missing(entry, static_cast<int>(r)))
        missing[static_cast<int>(r)].push_back(kv.first);
  }
  if (missing.empty()) return;
  std::ostringstream s;
  s << "Stall: some ranks submitted collectives that others have not, for up to " << oldest
    << " s. Missing:";
  for (const auto& m : missing) {
    s << " rank " << m.first << ": [";
    for (size_t i = 0; i < m.second.size(); ++i) s << (i ? ", " : "") << m.second[i];
    s << "];";
  }
  BRAID_LOG(Warning) << s.str();
}

void StallInspector::Inspect(MessageTable* table, Clock::time_point now,
                             std::vector<Response>* errors) {
  last_inspection_ = now;
  Warn(table, now);
  if (timeout_ == Clock::duration::zero()) return;
  std::vector<std::string> expired;
  for (const auto& kv : table->entries())
    if (now - kv.second.first_seen >= timeout_) expired.push_back(kv.first);
  for (const auto& name : expired) {
    std::vector<int> submitted, missing;
    SplitRanks(*table, table->entries().at(name), &submitted, &missing);
    std::ostringstream s;
    s << "Stall timeout: '" << name << "' was submitted by ranks " << BracketList(submitted)
      << " but not by ranks " << BracketList(missing) << " within "
      << std::chrono::duration<double>(timeout_).count() << " s (BRAID_STALL_TIMEOUT_SECONDS)";
    errors->push_back(table->TakeError(name, StatusCode::kTimeout, s.str()));
  }
}

}  // namespace braid
