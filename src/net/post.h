// Running a piece of work on another executor (a strand that owns some state) and getting its
// result back on the caller's executor, as an Asio asynchronous operation: works with
// use_awaitable from a coroutine on any strand.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <memory>
#include <type_traits>
#include <utility>

namespace sluice::net {

// Calls fn() on `ex`, then completes `token` with its result on the token's own executor.
template <class Executor, class Fn, class Token>
auto run_on(const Executor& ex, Fn fn, Token&& token) {
  using R = std::invoke_result_t<Fn&>;
  return boost::asio::async_initiate<Token, void(R)>(
      [ex](auto handler, Fn f) {
        auto back = boost::asio::get_associated_executor(handler);
        boost::asio::post(ex, [back, h = std::move(handler), f = std::move(f)]() mutable {
          R result = f();
          boost::asio::post(
              back, [h = std::move(h), r = std::move(result)]() mutable { h(std::move(r)); });
        });
      },
      token, std::move(fn));
}

}  // namespace sluice::net
