#include "raw_ops.h"

#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace bench {
namespace {

struct Add {
  static float Apply(float a, float b) { return a + b; }
};
struct Min {
  static float Apply(float a, float b) { return std::fmin(a, b); }
};
struct Max {
  static float Apply(float a, float b) { return std::fmax(a, b); }
};
struct Mul {
  static float Apply(float a, float b) { return a * b; }
};

// MPI_User_function for 2-byte floats: inout[i] = in[i] op inout[i], in float.
template <class Codec, class Op>
void HalfReduce(void* in, void* inout, int* len, MPI_Datatype* /*type*/) {
  const auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) {
    const float x = static_cast<float>(Codec::Decode(a[i]));
    const float y = static_cast<float>(Codec::Decode(b[i]));
    b[i] = Codec::Encode(Op::Apply(x, y));
  }
}

template <class Codec>
MPI_User_function* HalfFunction(int op) {
  switch (op) {
    case BRAID_MIN:
      return &HalfReduce<Codec, Min>;
    case BRAID_MAX:
      return &HalfReduce<Codec, Max>;
    case BRAID_PRODUCT:
      return &HalfReduce<Codec, Mul>;
    default:
      return &HalfReduce<Codec, Add>;  // sum and average
  }
}

MPI_Op PredefinedOp(int op) {
  switch (op) {
    case BRAID_MIN:
      return MPI_MIN;
    case BRAID_MAX:
      return MPI_MAX;
    case BRAID_PRODUCT:
      return MPI_PROD;
    default:
      return MPI_SUM;  // sum and average
  }
}

int CheckedCount(int64_t count) {
  if (count > INT_MAX) {
    std::fprintf(stderr, "braid-bench: %lld elements exceed one MPI call's int count\n",
                 static_cast<long long>(count));
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  return static_cast<int>(count);
}

// Average: divide the sum by the number of ranks as the engine does, in double
// for floating types and truncating toward zero for integers.
void DivideInPlace(int dtype, void* data, int64_t count, int ranks) {
  WithCodec(dtype, [&](auto codec) {
    using C = decltype(codec);
    auto* p = static_cast<typename C::Storage*>(data);
    const double factor = 1.0 / ranks;
    for (int64_t i = 0; i < count; ++i) {
      const double v = C::Decode(p[i]);
      p[i] = C::Encode(C::kFloating ? v * factor : std::trunc(v / ranks));
    }
  });
}

}  // namespace

MPI_Datatype MpiType(int dtype) {
  switch (dtype) {
    case BRAID_UINT8:
      return MPI_UINT8_T;
    case BRAID_INT8:
      return MPI_INT8_T;
    case BRAID_INT32:
      return MPI_INT32_T;
    case BRAID_INT64:
      return MPI_INT64_T;
    case BRAID_FLOAT32:
      return MPI_FLOAT;
    case BRAID_FLOAT64:
      return MPI_DOUBLE;
    default:
      return MPI_UINT16_T;  // float16, bfloat16
  }
}

RawAllreducer::RawAllreducer(MPI_Comm comm, const DType& dtype, int op)
    : comm_(comm), dtype_(dtype), average_(op == BRAID_AVERAGE), type_(MpiType(dtype.braid)) {
  MPI_Comm_size(comm, &ranks_);
  if (dtype.braid == BRAID_FLOAT16 || dtype.braid == BRAID_BFLOAT16) {
    MPI_User_function* fn = dtype.braid == BRAID_FLOAT16 ? HalfFunction<HalfCodec>(op)
                                                         : HalfFunction<BFloat16Codec>(op);
    MPI_Op_create(fn, /*commute=*/1, &op_);
    user_op_ = true;
  } else {
    op_ = PredefinedOp(op);
  }
}

RawAllreducer::~RawAllreducer() {
  if (user_op_) MPI_Op_free(&op_);
}

void RawAllreducer::Run(void* data, int64_t count) const {
  MPI_Allreduce(MPI_IN_PLACE, data, CheckedCount(count), type_, op_, comm_);
  if (average_) DivideInPlace(dtype_.braid, data, count, ranks_);
}

void RawAllgather(MPI_Comm comm, const void* input, void* output, int64_t count, int dtype) {
  const int n = CheckedCount(count);
  const MPI_Datatype type = MpiType(dtype);
  MPI_Allgather(input, n, type, output, n, type, comm);
}

void RawBroadcast(MPI_Comm comm, void* data, int64_t count, int dtype, int root) {
  MPI_Bcast(data, CheckedCount(count), MpiType(dtype), root, comm);
}

namespace {

class MpiRaw final : public RawPath {
 public:
  MpiRaw(MPI_Comm comm, const DType& dtype, int op)
      : comm_(comm), dtype_(dtype), allreducer_(comm, dtype, op) {}

  const char* kind() const override { return "mpi"; }
  std::string Describe(Collective collective) const override {
    switch (collective) {
      case Collective::kAllgather:
        return "MPI_Allgather";
      case Collective::kBroadcast:
        return "MPI_Bcast";
      case Collective::kNeighbor:
        return "MPI_Irecv from recv_from + MPI_Isend to send_to (the same peers and W_t), "
               "MPI_Waitall, then a host mixing loop in the engine's order of operations";
      default:
        return "MPI_Allreduce(MPI_IN_PLACE)";
    }
  }
  void Allreduce(void* data, int64_t count) override { allreducer_.Run(data, count); }
  void Allgather(const void* input, void* output, int64_t count) override {
    RawAllgather(comm_, input, output, count, dtype_.braid);
  }
  void Broadcast(void* data, int64_t count, int root) override {
    RawBroadcast(comm_, data, count, dtype_.braid, root);
  }

 private:
  MPI_Comm comm_;
  const DType& dtype_;
  RawAllreducer allreducer_;
};

}  // namespace

std::unique_ptr<RawPath> MakeMpiRaw(MPI_Comm comm, const DType& dtype, int op) {
  return std::make_unique<MpiRaw>(comm, dtype, op);
}

}  // namespace bench
