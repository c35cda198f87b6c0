// The C API of the neighbour collectives over the default engine
// (include/braid/braid.h, docs/gossip.md).
#include <string>
#include <vector>

#include "bindings/c/default_engine.h"
#include "braid/braid.h"
#include "core/stats.h"

namespace {

using braid::Status;
using braid::capi::Report;

// A C list of ranks (count entries; NULL when empty) as a request's list; `which`
// names it in errors.
Status RanksOf(const char* name, const char* which, const int* ranks, int count,
               std::vector<int32_t>* out) {
  if (count < 0 || (count > 0 && ranks == nullptr)) {
    return braid::InvalidArgument(std::string("'") + name + "': " + which +
                                  " is NULL or its count negative");
  }
  out->assign(ranks, ranks + count);
  return Status::OK();
}

// The request of a neighbour collective on `input` with this rank's lists.
Status Describe(const char* name, braid::Collective collective, const braid_tensor_t* input,
                const int* send_to, int num_send, const int* recv_from, int num_recv,
                braid::Request* r) {
  if (name == nullptr) return braid::InvalidArgument("the tensor name is NULL");
  BRAID_RETURN_IF_ERROR(braid::capi::DescribeTensor(name, input, &r->meta));
  r->meta.collective = collective;
  BRAID_RETURN_IF_ERROR(RanksOf(name, "send_to", send_to, num_send, &r->meta.send_to));
  BRAID_RETURN_IF_ERROR(RanksOf(name, "recv_from", recv_from, num_recv, &r->meta.recv_from));
  r->input = input->data;
  r->stream = input->stream;
  return Status::OK();
}

}  // namespace

extern "C" {

int braid_neighbor_allreduce_async(const char* name, const braid_tensor_t* input, void* output,
                                   const int* send_to, int num_send, const int* recv_from,
                                   int num_recv, double self_weight, const double* recv_weights,
                                   braid_handle_t* handle) {
  return braid::capi::CallC("braid_neighbor_allreduce_async", [&]() -> int {
    braid::Request r;
    Status st = Describe(name, braid::Collective::kNeighborAllreduce, input, send_to, num_send,
                         recv_from, num_recv, &r);
    if (!st.ok()) return Report(st);
    if (num_recv > 0 && recv_weights == nullptr) {
      return Report(braid::InvalidArgument(std::string("neighbor_allreduce of '") + name +
                                           "': recv_weights is NULL"));
    }
    r.self_weight = self_weight;
    if (num_recv > 0) r.recv_weights.assign(recv_weights, recv_weights + num_recv);
    r.output = output;
    return braid::capi::SubmitToDefault(std::move(r), handle);
  });
}

int braid_neighbor_exchange_async(const char* name, const braid_tensor_t* input, const int* send_to,
                                  int num_send, const int* recv_from, int num_recv,
                                  braid_handle_t* handle) {
  return braid::capi::CallC("braid_neighbor_exchange_async", [&]() -> int {
    braid::Request r;
    Status st = Describe(name, braid::Collective::kNeighborExchange, input, send_to, num_send,
                         recv_from, num_recv, &r);
    if (!st.ok()) return Report(st);
    return braid::capi::SubmitToDefault(std::move(r), handle);
  });
}

int braid_neighbor_stats(int64_t* bytes, int num) {
  return braid::capi::CallC("braid_neighbor_stats", [&]() -> int {
    if (num < 0 || (num > 0 && bytes == nullptr))
      return Report(braid::InvalidArgument("braid_neighbor_stats: NULL bytes or negative num"));
    const std::vector<int64_t> sent = braid::ReadNeighborSends();
    for (int p = 0; p < num; ++p) bytes[p] = p < static_cast<int>(sent.size()) ? sent[p] : 0;
    return BRAID_OK;
  });
}

}  // extern "C"
