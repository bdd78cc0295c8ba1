/// @file
/// The library's version. CMake reads it from here, so this is the one place
/// to change it. The project follows semantic versioning: see README.md.
#pragma once

namespace dispatch {

/// The version as numbers for compile-time checks, and as text for logs.
///@{
inline constexpr int kVersionMajor = 0;
inline constexpr int kVersionMinor = 2;
inline constexpr int kVersionPatch = 0;
inline constexpr const char* kVersionString = "0.2.0";
///@}

}  // namespace dispatch
