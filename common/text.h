// Small text helpers for messages that name what was wrong.
#pragma once

#include <sstream>
#include <string>
#include <vector>

namespace braid {

// "[a, b, c]": a shape, a list of ranks.
template <typename T>
std::string BracketList(const std::vector<T>& items) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < items.size(); ++i) s << (i ? ", " : "") << items[i];
  s << "]";
  return s.str();
}

}  // namespace braid
