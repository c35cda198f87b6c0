// Agreeing on a local outcome before a collective step. Some failures happen on
// one rank alone before a collective starts (an allocation, a device plane that
// cannot be set up, a copy that cannot be queued): that rank cannot take part,
// and the others must not wait in a collective it will never join, nor finish
// with a result computed from memory it never filled. Every rank therefore
// passes its own outcome here at the same point, and every rank gets the same
// answer.
//
// Threading: like every ControlChannel call, on the thread driving the channel.
#pragma once

#include <cstdint>
#include <vector>

#include "collectives/control_channel.h"
#include "common/status.h"

namespace braid {

// OK when `local` is OK on every rank. Otherwise every rank returns the same
// status: the code of the lowest failing rank and a message naming each failing
// rank with its own reason ("rank 2: ..." or "rank 1: ...; rank 3: ..."). One
// bitwise-AND round when every rank succeeded; a gather and a broadcast more
// when one failed. A failure of the channel itself is returned as it is.
Status AgreeOnStatus(ControlChannel* control, const Status& local);

// AgreeOnStatus that also gathers a list of counts from every rank (a sparse
// collective's pairs per tensor): on success *all holds every rank's `mine`, in
// rank order (each rank passes the same number of counts). A gather and a
// broadcast whether or not a rank failed.
Status AgreeOnCounts(ControlChannel* control, const Status& local, const std::vector<int64_t>& mine,
                     std::vector<int64_t>* all);

}  // namespace braid
