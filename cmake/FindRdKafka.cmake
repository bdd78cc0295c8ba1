# Finds librdkafka and defines the imported targets RdKafka::rdkafka (C) and
# RdKafka::rdkafka++ (C++), the names librdkafka's own CMake package uses.
#
# librdkafka's CMake package is tried first (it exists when librdkafka was
# built with CMake); Debian and most distributions ship pkg-config files
# instead, which are the fallback.
if(TARGET RdKafka::rdkafka AND TARGET RdKafka::rdkafka++)
  set(RdKafka_FOUND TRUE)
  return()
endif()

find_package(RdKafka CONFIG QUIET)
if(RdKafka_FOUND AND TARGET RdKafka::rdkafka AND TARGET RdKafka::rdkafka++)
  return()
endif()

find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(PC_RDKAFKA QUIET rdkafka)
  pkg_check_modules(PC_RDKAFKACPP QUIET rdkafka++)
endif()

find_path(RdKafka_INCLUDE_DIR librdkafka/rdkafkacpp.h
    HINTS ${PC_RDKAFKACPP_INCLUDEDIR} ${PC_RDKAFKA_INCLUDEDIR})
find_library(RdKafka_LIBRARY NAMES rdkafka HINTS ${PC_RDKAFKA_LIBDIR})
find_library(RdKafka_CPP_LIBRARY NAMES rdkafka++ HINTS ${PC_RDKAFKACPP_LIBDIR})
set(RdKafka_VERSION ${PC_RDKAFKA_VERSION})

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(RdKafka
    REQUIRED_VARS RdKafka_LIBRARY RdKafka_CPP_LIBRARY RdKafka_INCLUDE_DIR
    VERSION_VAR RdKafka_VERSION)

if(RdKafka_FOUND)
  if(NOT TARGET RdKafka::rdkafka)
    add_library(RdKafka::rdkafka UNKNOWN IMPORTED)
    set_target_properties(RdKafka::rdkafka PROPERTIES
        IMPORTED_LOCATION "${RdKafka_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${RdKafka_INCLUDE_DIR}")
  endif()
  if(NOT TARGET RdKafka::rdkafka++)
    add_library(RdKafka::rdkafka++ UNKNOWN IMPORTED)
    set_target_properties(RdKafka::rdkafka++ PROPERTIES
        IMPORTED_LOCATION "${RdKafka_CPP_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${RdKafka_INCLUDE_DIR}"
        INTERFACE_LINK_LIBRARIES RdKafka::rdkafka)
  endif()
endif()
mark_as_advanced(RdKafka_INCLUDE_DIR RdKafka_LIBRARY RdKafka_CPP_LIBRARY)
