// Rank 0's stall inspector: finds names that some ranks submitted and others did
// not, logs which ranks are missing which names once they have waited past the
// warning time, and past the timeout (when one is set) answers them with an error
// so that the waiting ranks fail instead of hanging. Joined ranks are never
// missing: they take part in every name the others submit.
//
// Threading: coordinator thread of rank 0 only.
#pragma once

#include <vector>

#include "core/message_table.h"
#include "core/request.h"

namespace braid {

class StallInspector {
 public:
  StallInspector(double warning_seconds, double timeout_seconds);

  // True when enough time has passed since the last inspection to look again.
  bool Due(Clock::time_point now) const;
  // Logs stalls and moves timed-out names from `table` into `errors`.
  void Inspect(MessageTable* table, Clock::time_point now, std::vector<Response>* errors);

 private:
  void Warn(MessageTable* table, Clock::time_point now);

  Clock::duration warning_;
  Clock::duration timeout_;  // zero: no timeout
  Clock::duration period_;
  Clock::time_point last_inspection_;
};

}  // namespace braid
