# Finds librdkafka and defines the imported targets RdKafka::rdkafka (C) and
# RdKafka::rdkafka++ (C++), the names librdkafka's own CMake package uses.
#
# librdkafka's CMake package is tried first (it exists when librdkafka was
# built with CMake: vcpkg, Conan, a source build); Debian and most
# distributions ship pkg-config files instead, which are the fallback.
if(TARGET RdKafka::rdkafka AND TARGET RdKafka::rdkafka++)
  set(RdKafka_FOUND TRUE)
  return()
endif()

# librdkafka's RdKafkaConfig.cmake (2.x, built with external LZ4) calls
# find_dependency(LZ4), and installs the FindLZ4.cmake that this needs beside
# itself, not on the module path, so it fails to load ("Could not find a
# package configuration file provided by LZ4"). Its folder goes on the module
# path while the package loads.
find_path(_dispatch_rdkafka_config_dir NAMES RdKafkaConfig.cmake
    HINTS ${RdKafka_DIR}
    PATH_SUFFIXES lib/cmake/RdKafka lib64/cmake/RdKafka
                  lib/${CMAKE_LIBRARY_ARCHITECTURE}/cmake/RdKafka share/RdKafka share/rdkafka
    NO_CACHE)
if(_dispatch_rdkafka_config_dir AND EXISTS "${_dispatch_rdkafka_config_dir}/FindLZ4.cmake")
  list(PREPEND CMAKE_MODULE_PATH "${_dispatch_rdkafka_config_dir}")
  find_package(RdKafka CONFIG QUIET HINTS "${_dispatch_rdkafka_config_dir}")
  list(POP_FRONT CMAKE_MODULE_PATH)
else()
  find_package(RdKafka CONFIG QUIET)
endif()
unset(_dispatch_rdkafka_config_dir)
if(RdKafka_FOUND AND TARGET RdKafka::rdkafka AND TARGET RdKafka::rdkafka++)
  if(NOT RdKafka_FIND_QUIETLY)
    message(STATUS "Found RdKafka ${RdKafka_VERSION}: CMake package in ${RdKafka_DIR}")
  endif()
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
