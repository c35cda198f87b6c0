// The two JSON value writers braid-bench needs: a quoted string and a number.
#ifndef BRAID_BENCH_JSON_H_
#define BRAID_BENCH_JSON_H_

#include <cmath>
#include <cstdio>
#include <string>

namespace bench {

inline std::string JsonQuote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof(esc), "\\u%04x", c);
      out += esc;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// null for NaN and infinities, which JSON lacks.
inline std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  char text[32];
  std::snprintf(text, sizeof(text), "%.6g", v);
  return text;
}

}  // namespace bench

#endif  // BRAID_BENCH_JSON_H_
