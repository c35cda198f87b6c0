# Install the library, the C header and a CMake package so that another project can
# find_package(braid) and link braid::braid.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS braid EXPORT braidTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# The CUDA plugin goes next to libbraid, where libbraid looks for it on the first
# GPU tensor. It is not part of the exported package: programs link braid::braid
# only, and libbraid loads the plugin itself.
if(TARGET braid_cuda)
  install(TARGETS braid_cuda LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
install(DIRECTORY include/braid DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/generated/braid/config.h"
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/braid)
install(EXPORT braidTargets NAMESPACE braid:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/braid)

configure_package_config_file(cmake/braidConfig.cmake.in
  "${CMAKE_CURRENT_BINARY_DIR}/braidConfig.cmake"
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/braid)
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/braidConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/braidConfig.cmake"
              "${CMAKE_CURRENT_BINARY_DIR}/braidConfigVersion.cmake"
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/braid)
