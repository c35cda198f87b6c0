#include "collectives/agreement.h"

#include <cstring>
#include <string>
#include <vector>

namespace braid {
namespace {

// A rank's failure on the wire: its code (4 bytes) then its message.
std::string Encode(const Status& status) {
  const int32_t code = static_cast<int32_t>(status.code());
  std::string out(sizeof(code), '\0');
  std::memcpy(&out[0], &code, sizeof(code));
  return out + status.message();
}

bool Decode(const std::string& bytes, StatusCode* code, std::string* message) {
  int32_t raw = 0;
  if (bytes.size() < sizeof(raw)) return false;
  std::memcpy(&raw, bytes.data(), sizeof(raw));
  *code = static_cast<StatusCode>(raw);
  *message = bytes.substr(sizeof(raw));
  return true;
}

// Rank 0: the failing ranks' reasons, in rank order, as one encoded status.
std::string Combine(const std::vector<std::string>& all) {
  StatusCode first = StatusCode::kOk;
  std::string text;
  for (size_t r = 0; r < all.size(); ++r) {
    StatusCode code;
    std::string message;
    if (all[r].empty() || !Decode(all[r], &code, &message)) continue;
    if (first == StatusCode::kOk) first = code;
    text += (text.empty() ? "" : "; ") + std::string("rank ") + std::to_string(r) + ": " + message;
  }
  if (first == StatusCode::kOk) return Encode(Internal("a rank failed without a reason"));
  return Encode(Status(first, text));
}

}  // namespace

Status AgreeOnStatus(ControlChannel* control, const Status& local) {
  std::vector<uint64_t> all_ok{local.ok() ? uint64_t{1} : uint64_t{0}};
  BRAID_RETURN_IF_ERROR(control->AllreduceBitAnd(&all_ok));
  if (all_ok[0] == 1) return Status::OK();
  std::vector<std::string> all;
  BRAID_RETURN_IF_ERROR(control->GatherToRoot(local.ok() ? std::string() : Encode(local), &all));
  std::string agreed = control->rank() == 0 ? Combine(all) : std::string();
  BRAID_RETURN_IF_ERROR(control->BroadcastFromRoot(&agreed));
  StatusCode code;
  std::string message;
  if (!Decode(agreed, &code, &message) || code == StatusCode::kOk) {
    return Internal("could not read the ranks' agreed failure");
  }
  return Status(code, message);
}

// A rank's part in AgreeOnCounts: a flag byte, then its counts (ok) or its
// encoded failure.
Status AgreeOnCounts(ControlChannel* control, const Status& local, const std::vector<int64_t>& mine,
                     std::vector<int64_t>* all) {
  const size_t width = mine.size() * sizeof(int64_t);
  std::string part(1, local.ok() ? 'c' : 'e');
  if (local.ok()) {
    part.append(reinterpret_cast<const char*>(mine.data()), width);
  } else {
    part += Encode(local);
  }
  std::vector<std::string> parts;
  BRAID_RETURN_IF_ERROR(control->GatherToRoot(part, &parts));
  std::string agreed;
  if (control->rank() == 0) {
    std::vector<std::string> failures(parts.size());
    bool failed = false;
    for (size_t r = 0; r < parts.size(); ++r) {
      const bool counts = !parts[r].empty() && parts[r][0] == 'c' && parts[r].size() == 1 + width;
      if (counts) {
        agreed += parts[r].substr(1);
        continue;
      }
      failed = true;
      failures[r] = !parts[r].empty() && parts[r][0] == 'e'
                        ? parts[r].substr(1)
                        : Encode(Internal("sent a malformed count list"));
    }
    if (failed)
      agreed = "e" + Combine(failures);
    else
      agreed = "c" + agreed;
  }
  BRAID_RETURN_IF_ERROR(control->BroadcastFromRoot(&agreed));
  if (!agreed.empty() && agreed[0] == 'c' &&
      agreed.size() == 1 + width * static_cast<size_t>(control->size())) {
    all->resize(mine.size() * static_cast<size_t>(control->size()));
    if (!all->empty()) std::memcpy(all->data(), agreed.data() + 1, agreed.size() - 1);
    return Status::OK();
  }
  StatusCode code;
  std::string message;
  if (agreed.empty() || agreed[0] != 'e' || !Decode(agreed.substr(1), &code, &message) ||
      code == StatusCode::kOk) {
    return Internal("could not read the ranks' agreed counts");
  }
  return Status(code, message);
}

}  // namespace braid
