# Resolves BRAID_WITH_{CUDA,NCCL,HWLOC} (ON / OFF / AUTO) into BRAID_HAVE_* (0 or 1).

function(_braid_check_mode var)
  string(TOUPPER "${${var}}" mode)
  if(NOT mode MATCHES "^(ON|OFF|AUTO)$")
    message(FATAL_ERROR "${var} must be ON, OFF or AUTO (got '${${var}}')")
  endif()
  set(${var} "${mode}" PARENT_SCOPE)
endfunction()

macro(braid_resolve_optional_parts)
  foreach(part CUDA NCCL HWLOC)
    _braid_check_mode(BRAID_WITH_${part})
    set(BRAID_HAVE_${part} 0)
  endforeach()

  if(NOT BRAID_WITH_CUDA STREQUAL "OFF")
    find_package(CUDAToolkit QUIET)
    if(CUDAToolkit_FOUND)
      set(BRAID_HAVE_CUDA 1)
    elseif(BRAID_WITH_CUDA STREQUAL "ON")
      message(FATAL_ERROR "BRAID_WITH_CUDA=ON but no CUDA toolkit was found")
    endif()
  endif()

  if(NOT BRAID_WITH_NCCL STREQUAL "OFF")
    find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ENV NCCL_HOME
              PATH_SUFFIXES include)
    find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} ENV NCCL_HOME
                 PATH_SUFFIXES lib lib64)
    if(BRAID_HAVE_CUDA AND NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
      set(BRAID_HAVE_NCCL 1)
    elseif(BRAID_WITH_NCCL STREQUAL "ON")
      message(FATAL_ERROR "BRAID_WITH_NCCL=ON but NCCL (nccl.h, libnccl) or CUDA was not found")
    endif()
  endif()

  # CUDA code needs nvcc as well as the toolkit's libraries.
  if(BRAID_HAVE_CUDA)
    include(CheckLanguage)
    check_language(CUDA)
    if(NOT CMAKE_CUDA_COMPILER)
      if(BRAID_WITH_CUDA STREQUAL "ON")
        message(FATAL_ERROR "BRAID_WITH_CUDA=ON but no CUDA compiler (nvcc) was found")
      endif()
      message(STATUS "braid: CUDA libraries found but no nvcc; building without CUDA")
      set(BRAID_HAVE_CUDA 0)
      set(BRAID_HAVE_NCCL 0)
    endif()
  endif()
  if(NOT BRAID_HAVE_CUDA)
    message(STATUS "braid: left out the CUDA kernels, the NCCL backend and the "
                   "host-staged path for GPU tensors (no usable CUDA toolkit)")
  elseif(NOT BRAID_HAVE_NCCL)
    message(STATUS "braid: left out the NCCL backend (nccl.h / libnccl not found)")
  endif()

  if(NOT BRAID_WITH_HWLOC STREQUAL "OFF")
    find_package(PkgConfig QUIET)
    if(PkgConfig_FOUND)
      pkg_check_modules(HWLOC QUIET IMPORTED_TARGET hwloc)
    endif()
    if(HWLOC_FOUND)
      set(BRAID_HAVE_HWLOC 1)
    elseif(BRAID_WITH_HWLOC STREQUAL "ON")
      message(FATAL_ERROR "BRAID_WITH_HWLOC=ON but hwloc (pkg-config hwloc) was not found")
    endif()
  endif()
endmacro()

# Turns on CUDA compilation for the targets that have .cu sources: by default
# sm_90 machine code plus compute_90 PTX (CMAKE_CUDA_ARCHITECTURES overrides).
macro(braid_enable_cuda)
  if(BRAID_HAVE_CUDA)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  endif()
endmacro()

function(braid_print_summary)
  message(STATUS "braid ${PROJECT_VERSION}: MPI yes, CUDA ${BRAID_HAVE_CUDA} (${CMAKE_CUDA_ARCHITECTURES}), NCCL ${BRAID_HAVE_NCCL}, "
                 "hwloc ${BRAID_HAVE_HWLOC}, tests ${BRAID_BUILD_TESTS}, bench ${BRAID_BUILD_BENCH}, "
                 "sanitizers ${BRAID_SANITIZE}, tsan ${BRAID_TSAN}")
endfunction()
