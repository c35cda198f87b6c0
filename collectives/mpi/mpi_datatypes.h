// Maps braid's element types and reduce operators onto MPI's. MPI has no float16
// or bfloat16: each gets its own 2-byte contiguous derived type, and their
// reductions are user-defined MPI_Ops that call cpu::ReduceInto (float32
// arithmetic, rounded to nearest even). bool is MPI_C_BOOL, reduced with MPI's
// logical operators: sum and max are MPI_LOR, product and min MPI_LAND.
//
// Threading: immutable after Create; Type and Op may be called from any thread.
#pragma once

#include <mpi.h>

#include <memory>

#include "common/status.h"
#include "common/types.h"

namespace braid {
namespace mpi {

class MpiTypeTable {
 public:
  static Status Create(std::unique_ptr<MpiTypeTable>* out);
  // Frees the derived types and user ops, unless MPI is already finalised.
  ~MpiTypeTable();

  MpiTypeTable(const MpiTypeTable&) = delete;
  MpiTypeTable& operator=(const MpiTypeTable&) = delete;

  MPI_Datatype Type(DataType dtype) const;
  // kAverage has no MPI operator (the caller sums and divides): InvalidArgument.
  Status Op(DataType dtype, ReduceOp op, MPI_Op* out) const;

 private:
  MpiTypeTable() = default;
  Status Init();

  MPI_Datatype float16_ = MPI_DATATYPE_NULL;
  MPI_Datatype bfloat16_ = MPI_DATATYPE_NULL;
  // [0] float16, [1] bfloat16; indexed by ReduceOp: sum, (average), min, max, product.
  MPI_Op half_ops_[2][kNumReduceOps] = {};
};

}  // namespace mpi
}  // namespace braid
