// Exceptions raised by the op layer. The binding maps each to the Python
// exception of the same name, so the op layer stays free of Python and can be
// called from C++ (and later from the CUDA path) with the same checks.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace striate {

struct ValueError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
struct TypeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
struct IndexError : std::out_of_range {
  using std::out_of_range::out_of_range;
};
struct NotImplementedError : std::logic_error {
  using std::logic_error::logic_error;
};

namespace detail {
template <class... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  return os.str();
}
}  // namespace detail

// Usage: throw_value_error("conv2d: stride must be positive, got ", s);
template <class... Parts>
[[noreturn]] void throw_value_error(Parts&&... parts) {
  throw ValueError(detail::concat(std::forward<Parts>(parts)...));
}
template <class... Parts>
[[noreturn]] void throw_type_error(Parts&&... parts) {
  throw TypeError(detail::concat(std::forward<Parts>(parts)...));
}
template <class... Parts>
[[noreturn]] void throw_index_error(Parts&&... parts) {
  throw IndexError(detail::concat(std::forward<Parts>(parts)...));
}
template <class... Parts>
[[noreturn]] void throw_not_implemented(Parts&&... parts) {
  throw NotImplementedError(detail::concat(std::forward<Parts>(parts)...));
}

}  // namespace striate
