// libFuzzer target for the control-plane decoder (core/wire.h). Every input is
// offered to both decoders. A message that decodes must re-encode to exactly the
// same bytes (the format has one encoding per message), and decoding that again
// must succeed; a message that does not decode must say so with a Status, never
// crash, overrun or leak (ASan, UBSan and LeakSanitizer watch the run).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/wire.h"

namespace {

void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_wire: %s\n", what);
  std::abort();
}

// Decoded values must be ones the rest of the engine can switch over.
void CheckMeta(const braid::RequestMeta& m) {
  if (!braid::IsValidDataType(static_cast<int32_t>(m.dtype))) Fail("decoded a bad dtype");
  if (!braid::IsValidReduceOp(static_cast<int32_t>(m.op))) Fail("decoded a bad reduce op");
  if (!braid::IsValidDataType(static_cast<int32_t>(m.index_dtype)))
    Fail("decoded a bad index type");
  int32_t c = static_cast<int32_t>(m.collective);
  if (c < 0 || c >= braid::kNumCollectives) Fail("decoded a bad collective");
}

void CheckRequests(const std::string& bytes) {
  std::vector<braid::RequestMeta> requests;
  if (!braid::DecodeRequests(bytes, &requests).ok()) return;
  for (const auto& m : requests) CheckMeta(m);
  std::string again = braid::EncodeRequests(requests);
  if (again != bytes) Fail("requests: decode -> encode changed the bytes");
  std::vector<braid::RequestMeta> twice;
  if (!braid::DecodeRequests(again, &twice).ok()) Fail("requests: re-encoded list did not decode");
  if (twice.size() != requests.size()) Fail("requests: re-decoded list has another length");
}

void CheckResponses(const std::string& bytes) {
  std::vector<braid::Response> responses;
  if (!braid::DecodeResponses(bytes, &responses).ok()) return;
  for (const auto& r : responses) {
    CheckMeta(r.meta);
    // Handles fail with this code, and the C API returns it as BRAID_ERR_*: it must be
    // one that exists.
    if (std::strcmp(braid::StatusCodeName(r.error_code), "UNKNOWN") == 0) {
      Fail("decoded an unknown status code");
    }
  }
  std::string again = braid::EncodeResponses(responses);
  if (again != bytes) Fail("responses: decode -> encode changed the bytes");
  std::vector<braid::Response> twice;
  if (!braid::DecodeResponses(again, &twice).ok())
    Fail("responses: re-encoded list did not decode");
  if (twice.size() != responses.size()) Fail("responses: re-decoded list has another length");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  CheckRequests(bytes);
  CheckResponses(bytes);
  return 0;
}
