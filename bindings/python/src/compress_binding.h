// braid._C's compress kernels (ops/compress/): exact top-k, DGC's threshold
// selection, random-k, segmented top-k and the error memory's passes, on DLPack
// and buffer-protocol arrays in host memory or on a GPU (braid.ops wraps them).
//
// Threading: the functions are reentrant and release the GIL while the kernels
// run; the caller must not change the arrays meanwhile (braid.ops' calls return
// only when the host kernels are done, or when the GPU work is queued).
#pragma once

#include <pybind11/pybind11.h>

namespace braid::python {

void BindCompress(pybind11::module_& m);

}  // namespace braid::python
