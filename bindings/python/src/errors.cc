#include "errors.h"

#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace braid::python {

void ThrowStatus(const Status& status) {
  py::object cls =
      py::module_::import("braid._errors").attr("error_class")(static_cast<int>(status.code()));
  PyErr_SetObject(cls.ptr(), py::str(status.message()).ptr());
  throw py::error_already_set();
}

}  // namespace braid::python
