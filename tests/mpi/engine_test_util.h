// Shared helpers for the suites that drive braid::Engine directly
// (tests/mpi/test_engine_*.cc): where this process sits in MPI_COMM_WORLD, and a
// float32 sum allreduce request over a vector, in place.
#pragma once

#include <mpi.h>

#include <string>
#include <vector>

#include "core/request.h"
#include "tests/mpi/world.h"

namespace braid {
namespace engine_test {

using braid_test::WorldRank;
using braid_test::WorldSize;

inline Request AllreduceOf(const std::string& name, std::vector<float>* data) {
  Request r;
  r.meta.name = name;
  r.meta.collective = Collective::kAllreduce;
  r.meta.dtype = DataType::kFloat32;
  r.meta.op = ReduceOp::kSum;
  r.meta.shape = {static_cast<int64_t>(data->size())};
  r.input = r.output = data->data();
  return r;
}

}  // namespace engine_test
}  // namespace braid
