// Waiting on MPI requests without burning a core. Open MPI's blocking calls poll
// the network in a busy loop; a control round can wait milliseconds for a rank that
// is still asleep in its cycle, so the control plane tests its requests in a short
// spin and then sleeps between tests with a growing pause.
#pragma once

#include <mpi.h>

#include "common/status.h"

namespace braid {
namespace mpi {

// Completes `count` requests. Spins for about `spin_us`, then sleeps between tests,
// the pause doubling up to `max_pause_us`.
Status WaitAllPolitely(int count, MPI_Request* requests, int spin_us = 50, int max_pause_us = 100);

}  // namespace mpi
}  // namespace braid
