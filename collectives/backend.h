// The data plane: a backend executes one collective on buffer views. It knows
// nothing of names, requests or negotiation (that is the controller's business in
// core/); it is told what to do, in the same order on every rank.
//
// Threading: a backend is driven by one thread at a time (the engine's coordinator).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/buffer.h"
#include "common/status.h"
#include "common/types.h"

namespace braid {

// The scale factors of an allreduce (core/reduce_plan.h): the inputs are multiplied
// by `prescale` before the reduction; the results by `postscale` after it, then
// (integer dtypes) divided by `divisor` toward zero when it is above 1.
struct ReduceScaling {
  double prescale = 1.0;
  double postscale = 1.0;
  int64_t divisor = 1;

  bool pre() const { return prescale != 1.0; }
  bool post() const { return postscale != 1.0 || divisor > 1; }
};

// Host memory a backend keeps for itself (scratch), which the engine may place on
// the rank's NUMA node (core/placement.h).
struct HostRegion {
  void* data = nullptr;
  size_t bytes = 0;
};

// One message of a neighbour exchange: the buffer sent to, or received from, `peer`.
struct PeerBuffer {
  int peer = 0;
  BufferView buf;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const char* name() const = 0;
  // True when this backend can run collectives on buffers of `device`.
  virtual bool CanHandle(int device) const = 0;

  // Makes ready what this rank needs of its own to move up to `bytes` bytes in its
  // next collective (staging memory, say). Called before the ranks agree to run
  // that collective, so that a failure here fails it on every rank instead of
  // leaving the others inside it (core/executor.h). The default needs nothing.
  virtual Status Prepare(int64_t bytes) {
    (void)bytes;
    return Status::OK();
  }

  // In-place reduction of `buf` across ranks. `op` is one of kSum, kMin, kMax,
  // kProduct: averaging and scale factors are applied by the caller, except that
  // the host MPI backend also takes kAverage of float16 / bfloat16 (core/reduce_plan.h).
  virtual Status Allreduce(const BufferView& buf, ReduceOp op) = 0;

  // Reduces several buffers of one dtype and device in place, with the same result
  // as reducing their concatenation (a fused group). `staging` is a contiguous
  // buffer, at least as large as all of them, that an implementation may pack
  // into. The default packs, calls Allreduce and unpacks (host memory only).
  virtual Status AllreduceMany(const std::vector<BufferView>& buffers, ReduceOp op,
                               const BufferView& staging);

  // AllreduceMany with `scaling` applied, the result final when it returns. Device
  // backends fold it into the kernels that pack and unpack a group (for a single
  // buffer, one in-place pass on each side), on their own stream. The default
  // scales in place on the host around AllreduceMany (host memory only).
  virtual Status AllreduceScaled(const std::vector<BufferView>& buffers, ReduceOp op,
                                 const BufferView& staging, const ReduceScaling& scaling);

  // Gathers a variable number of elements per rank. `recv` holds sum(counts)
  // elements; rank r's block starts at sum(counts[0..r)). `send.data` may point at
  // this rank's block of `recv` (in place).
  virtual Status Allgatherv(const BufferView& send, const BufferView& recv,
                            const std::vector<int64_t>& counts) = 0;

  // Copies `buf` on `root` into `buf` on every other rank.
  virtual Status Broadcast(const BufferView& buf, int root) = 0;

  virtual Status Barrier() = 0;

  // Point-to-point exchange with some ranks (a graph): sends each of `sends` to its
  // peer and receives each of `recvs` from its peer, all at once, and returns when
  // every message has arrived and every send buffer may be reused. At most one
  // message per direction and peer; every rank calls it for the same collective,
  // and the graph is consistent (rank i sends to j exactly when j receives from i,
  // with the same number of bytes), which the engine has checked. Ranks without
  // messages may return at once. The default refuses.
  virtual Status NeighborExchange(const std::vector<PeerBuffer>& sends,
                                  const std::vector<PeerBuffer>& recvs);

  // Called from another thread when the job is being ended (Transport::Abort):
  // makes whatever this backend waits in return, or at least not block the end
  // (NCCL: ncclCommAbort). The backend takes no work afterwards. The default does
  // nothing.
  virtual void Abort() {}

  // The host memory this backend keeps between collectives (for the ring, its
  // scratch). The default keeps none.
  virtual std::vector<HostRegion> OwnedHostMemory() const { return {}; }
};

}  // namespace braid
