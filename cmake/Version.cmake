# Generates version_info.cpp at every build (not only at configure time) so `sluice --version`
# names the commit the binary was built from. The file is rewritten only when it changes.
set(SLUICE_VERSION_CPP ${CMAKE_BINARY_DIR}/generated/version_info.cpp)
add_custom_target(sluice_version
  BYPRODUCTS ${SLUICE_VERSION_CPP}
  COMMAND ${CMAKE_COMMAND} -DOUT=${SLUICE_VERSION_CPP} -DSRC=${CMAKE_SOURCE_DIR}
          -DVERSION=${PROJECT_VERSION} -P ${CMAKE_SOURCE_DIR}/cmake/WriteVersion.cmake
  COMMENT "" VERBATIM)
