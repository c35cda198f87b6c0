// Where this process sits in MPI_COMM_WORLD, for the MPI suites.
#pragma once

#include <mpi.h>

namespace braid_test {

inline int WorldRank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

inline int WorldSize() {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

}  // namespace braid_test
