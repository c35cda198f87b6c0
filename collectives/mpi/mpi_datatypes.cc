#include "collectives/mpi/mpi_datatypes.h"

#include "collectives/cpu/reduce.h"
#include "collectives/mpi/mpi_check.h"

namespace braid {
namespace mpi {
namespace {

// MPI_User_function: inout[i] = in[i] op inout[i]. The ops are commutative, so
// the order of the operands does not matter.
template <DataType D, ReduceOp O>
void HalfUserOp(void* in, void* inout, int* len, MPI_Datatype* /*type*/) {
  cpu::ReduceInto(inout, in, *len, D, O);
}

template <DataType D>
MPI_User_function* UserFunction(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return &HalfUserOp<D, ReduceOp::kSum>;
    case ReduceOp::kMin:
      return &HalfUserOp<D, ReduceOp::kMin>;
    case ReduceOp::kMax:
      return &HalfUserOp<D, ReduceOp::kMax>;
    case ReduceOp::kProduct:
      return &HalfUserOp<D, ReduceOp::kProduct>;
    case ReduceOp::kAverage:
      break;
  }
  return nullptr;
}

constexpr ReduceOp kMpiReduceOps[] = {ReduceOp::kSum, ReduceOp::kMin, ReduceOp::kMax,
                                      ReduceOp::kProduct};

Status MakeHalfType(MPI_Datatype* type) {
  BRAID_CHECK_MPI(MPI_Type_contiguous(2, MPI_BYTE, type));
  BRAID_CHECK_MPI(MPI_Type_commit(type));
  return Status::OK();
}

}  // namespace

Status MpiTypeTable::Create(std::unique_ptr<MpiTypeTable>* out) {
  std::unique_ptr<MpiTypeTable> table(new MpiTypeTable());
  BRAID_RETURN_IF_ERROR(table->Init());
  *out = std::move(table);
  return Status::OK();
}

Status MpiTypeTable::Init() {
  BRAID_RETURN_IF_ERROR(MakeHalfType(&float16_));
  BRAID_RETURN_IF_ERROR(MakeHalfType(&bfloat16_));
  for (ReduceOp op : kMpiReduceOps) {
    const int i = static_cast<int>(op);
    BRAID_CHECK_MPI(
        MPI_Op_create(UserFunction<DataType::kFloat16>(op), /*commute=*/1, &half_ops_[0][i]));
    BRAID_CHECK_MPI(
        MPI_Op_create(UserFunction<DataType::kBFloat16>(op), /*commute=*/1, &half_ops_[1][i]));
  }
  return Status::OK();
}

MpiTypeTable::~MpiTypeTable() {
  if (MpiIsFinalized()) return;
  for (auto& ops : half_ops_) {
    for (MPI_Op& op : ops) {
      if (op != MPI_OP_NULL && op != MPI_Op{}) MPI_Op_free(&op);
    }
  }
  if (float16_ != MPI_DATATYPE_NULL) MPI_Type_free(&float16_);
  if (bfloat16_ != MPI_DATATYPE_NULL) MPI_Type_free(&bfloat16_);
}

MPI_Datatype MpiTypeTable::Type(DataType dtype) const {
  switch (dtype) {
    case DataType::kUInt8:
      return MPI_UINT8_T;
    case DataType::kInt8:
      return MPI_INT8_T;
    case DataType::kInt32:
      return MPI_INT32_T;
    case DataType::kInt64:
      return MPI_INT64_T;
    case DataType::kFloat16:
      return float16_;
    case DataType::kBFloat16:
      return bfloat16_;
    case DataType::kFloat32:
      return MPI_FLOAT;
    case DataType::kFloat64:
      return MPI_DOUBLE;
    case DataType::kInt16:
      return MPI_INT16_T;
    case DataType::kBool:
      return MPI_C_BOOL;
  }
  return MPI_DATATYPE_NULL;
}

Status MpiTypeTable::Op(DataType dtype, ReduceOp op, MPI_Op* out) const {
  if (op == ReduceOp::kAverage || !IsValidReduceOp(static_cast<int32_t>(op))) {
    return InvalidArgument(std::string("reduce op ") + ReduceOpName(op) +
                           " has no MPI operator; sum and divide instead");
  }
  const int i = static_cast<int>(op);
  if (dtype == DataType::kFloat16) {
    *out = half_ops_[0][i];
  } else if (dtype == DataType::kBFloat16) {
    *out = half_ops_[1][i];
  } else if (dtype == DataType::kBool) {
    // MPI defines only the logical operators on MPI_C_BOOL (cpu::ReduceInto's).
    *out = op == ReduceOp::kSum || op == ReduceOp::kMax ? MPI_LOR : MPI_LAND;
  } else {
    static const MPI_Op kBuiltin[kNumReduceOps] = {MPI_SUM, MPI_OP_NULL, MPI_MIN, MPI_MAX,
                                                   MPI_PROD};
    *out = kBuiltin[i];
  }
  return Status::OK();
}

}  // namespace mpi
}  // namespace braid
