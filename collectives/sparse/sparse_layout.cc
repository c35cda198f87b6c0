#include "collectives/sparse/sparse_layout.h"

namespace braid {
namespace {

int64_t PadTo8(int64_t bytes) {
  return (bytes + 7) / 8 * 8;
}

}  // namespace

int64_t SparseLayout::TotalPairs(int t) const {
  int64_t total = 0;
  for (int r = 0; r < ranks; ++r) total += Pairs(r, t);
  return total;
}

SparseLayout PlanSparseLayout(int ranks, const std::vector<int64_t>& row,
                              const std::vector<int64_t>& pairs, DataType index_dtype,
                              DataType value_dtype) {
  SparseLayout l;
  l.ranks = ranks;
  l.tensors = static_cast<int>(row.size());
  l.index_size = static_cast<int64_t>(DataTypeSize(index_dtype));
  l.value_size = static_cast<int64_t>(DataTypeSize(value_dtype));
  l.row = row;
  l.pairs = pairs;
  l.index_offset.resize(pairs.size());
  l.value_offset.resize(pairs.size());
  int64_t offset = 0;
  for (int r = 0; r < ranks; ++r) {
    l.message_offset.push_back(offset);
    int64_t at = offset;
    for (int t = 0; t < l.tensors; ++t) {
      l.index_offset[static_cast<size_t>(r) * l.tensors + t] = at;
      at += l.Pairs(r, t) * l.index_size;
    }
    at = offset + PadTo8(at - offset);
    for (int t = 0; t < l.tensors; ++t) {
      l.value_offset[static_cast<size_t>(r) * l.tensors + t] = at;
      at += l.Pairs(r, t) * l.row[t] * l.value_size;
    }
    at = offset + PadTo8(at - offset);
    l.message_bytes.push_back(at - offset);
    offset = at;
  }
  return l;
}

}  // namespace braid
