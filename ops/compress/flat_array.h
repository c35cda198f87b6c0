// A flat, zero-initialised array owned by a sparse op (its state and scratch), in
// host memory or on one GPU through the sparse ops' device kernels
// (sparse_passes.h).
//
// Threading: one owner at a time (the op's thread).
#pragma once

#include <cstdint>
#include <memory>

#include "common/status.h"
#include "ops/compress/sparse_passes.h"

namespace braid::compress {

class FlatArray {
 public:
  FlatArray() = default;
  ~FlatArray() { Reset(); }
  FlatArray(const FlatArray&) = delete;
  FlatArray& operator=(const FlatArray&) = delete;

  // Makes the array `bytes` long and zero, on `device` (kernels: the device table,
  // null for host memory); the zeroing is ordered on `stream`.
  Status Make(int device, const SparseStepDeviceKernels* kernels, int64_t bytes, void* stream);
  // Keeps at least `bytes`, reallocating (contents not kept) when smaller.
  Status Reserve(int device, const SparseStepDeviceKernels* kernels, int64_t bytes, void* stream);
  void Reset();

  void* data() const { return data_; }
  int64_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  int64_t bytes_ = 0;
  int device_ = kCpuDevice;
  const SparseStepDeviceKernels* kernels_ = nullptr;
  std::unique_ptr<char[]> host_;
};

}  // namespace braid::compress
