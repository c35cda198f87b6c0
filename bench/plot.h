// --plot FILE.png: rank 0 runs bench/busbw_plot.py on the run's JSON.
#ifndef BRAID_BENCH_PLOT_H_
#define BRAID_BENCH_PLOT_H_

#include <string>

namespace bench {

// The plotting script: busbw_plot.py next to this executable, else in the source
// tree it was built from (BRAID_BENCH_SOURCE_DIR). Empty when neither exists.
std::string FindPlotScript();

// Runs `PYTHON SCRIPT JSON -o PNG` (PYTHON looked up in PATH unless it has a
// slash) and waits for it. Returns true when the PNG was written; otherwise prints
// one warning line to stderr that says why (no script, no PYTHON, matplotlib not
// importable, another exit status). The benchmark's results do not depend on it.
bool WritePlot(const std::string& python, const std::string& json_path,
               const std::string& png_path);

// A fresh temporary file for the JSON when --plot is given without -J; empty on
// failure.
std::string TemporaryJsonPath();

}  // namespace bench

#endif  // BRAID_BENCH_PLOT_H_
