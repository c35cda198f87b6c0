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

}  // namespace braid
