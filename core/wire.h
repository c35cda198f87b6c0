// Message encoding for the control plane: the ready lists workers send to rank 0
// and the ordered response lists rank 0 sends back. A compact little-endian binary
// format; decoding checks every length, so a corrupt message is an error, not a crash.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "core/request.h"

namespace braid {

std::string EncodeRequests(const std::vector<RequestMeta>& requests);
Status DecodeRequests(const std::string& bytes, std::vector<RequestMeta>* requests);

std::string EncodeResponses(const std::vector<Response>& responses);
// Fails with the status EncodeFailure carried, when rank 0 sent one instead.
Status DecodeResponses(const std::string& bytes, std::vector<Response>* responses);

// What rank 0 sends instead of responses when it cannot decide (a ready list it
// cannot decode): every rank then stops with rank 0's reason, not with a decoding
// error of its own.
std::string EncodeFailure(const Status& status);

}  // namespace braid
