// Errors as values.
//
// Result<T, E> holds either a value or an error; hot paths (parsers, the spool writer) return
// it instead of throwing, and the error type says what the caller must do differently (an SMTP
// reply to send, a config line to name). Error is the general-purpose error: a message for
// people. Nothing here allocates on the success path beyond T itself.
//
// Thread-safety: plain values; no shared state.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace sluice {

// A general error: what went wrong, written for the operator who reads it.
struct Error {
  std::string message;
};

// Wraps an error so Result can be built from it even when T and E are convertible.
template <class E>
struct Unexpected {
  E error;
};
template <class E>
Unexpected(E) -> Unexpected<E>;

template <class T, class E = Error>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Unexpected<E> u) : v_(std::in_place_index<1>, std::move(u.error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // Precondition: ok().
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // Precondition: !ok().
  E& error() & { return std::get<1>(v_); }
  const E& error() const& { return std::get<1>(v_); }

 private:
  std::variant<T, E> v_;
};

// Result for operations that produce nothing but may fail.
struct Ok {};
using Status = Result<Ok, Error>;

inline Status ok_status() {
  return Ok{};
}
inline Unexpected<Error> error(std::string message) {
  return {Error{std::move(message)}};
}

}  // namespace sluice
