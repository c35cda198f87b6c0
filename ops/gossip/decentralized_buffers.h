// The checks of the decentralized SGD op's buffers and options, and its GPU
// kernels' lookup: what decentralized.cc needs besides the algorithm.
//
// Threading: plain functions; safe from any thread.
#pragma once

#include <string>
#include <vector>

#include "common/buffer.h"
#include "common/status.h"
#include "ops/gossip/device_kernels.h"

namespace braid::gossip {

// "decentralized SGD '<name>': ", the prefix of every message of the op.
std::string OpPrefix(const std::string& name);

// Checks that `views` (the op's params, grads or momentum: `what`) are contiguous
// float32 or float64 buffers of `dtype` on `device`.
Status CheckViews(const std::string& name, const char* what, const std::vector<BufferView>& views,
                  DataType dtype, int device);

// `others` is empty or pairs with `params`: as many buffers, each of the same count.
Status CheckPaired(const std::string& name, const char* what, const std::vector<BufferView>& params,
                   const std::vector<BufferView>& others);

// The registered GPU kernels, loading the CUDA plugin that registers them when
// none are yet; a clear error naming the op when there are none.
Status FindDeviceKernels(const std::string& name, int device, const GossipDeviceKernels** out);

}  // namespace braid::gossip
