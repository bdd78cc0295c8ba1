#include "dispatch/outbox_store.h"

#include <condition_variable>
#include <limits>
#include <mutex>

namespace dispatch {
namespace {

constexpr std::size_t kLengthBytes = 4;

void PutLength(std::string& out, std::size_t n, const char* what) {
  if (n > std::numeric_limits<std::uint32_t>::max()) {
    throw StoreError(std::string("headers column: a header ") + what + " of " + std::to_string(n) +
                     " bytes does not fit its 4-byte length");
  }
  for (std::size_t i = 0; i < kLengthBytes; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
}

}  // namespace

// Polling: a store that cannot tell sleeps through the interval.
bool OutboxStore::WaitForRows(std::chrono::steady_clock::time_point until,
                              const std::stop_token& stop) {
  std::mutex mu;
  std::condition_variable_any stopped;  // woken by nothing but the stop request
  std::unique_lock lock(mu);
  stopped.wait_until(lock, stop, until, [] { return false; });
  return false;
}

std::string EncodeHeaders(const std::vector<Header>& headers) {
  std::string out;
  for (const Header& h : headers) {
    PutLength(out, h.key.size(), "key");
    out += h.key;
    PutLength(out, h.value.size(), "value");
    out += h.value;
  }
  return out;
}

std::vector<Header> DecodeHeaders(const std::string& blob) {
  std::vector<Header> out;
  std::size_t pos = 0;
  const auto take = [&](std::string& field, const char* what) {
    if (blob.size() - pos < kLengthBytes) {
      throw StoreError("corrupt headers column: the length of a header " + std::string(what) +
                       " is truncated at byte " + std::to_string(pos) + " of " +
                       std::to_string(blob.size()));
    }
    std::size_t n = 0;
    for (std::size_t i = 0; i < kLengthBytes; ++i) {
      n |= static_cast<std::size_t>(static_cast<unsigned char>(blob[pos + i])) << (8 * i);
    }
    pos += kLengthBytes;
    if (blob.size() - pos < n) {
      throw StoreError("corrupt headers column: a header " + std::string(what) + " of " +
                       std::to_string(n) + " bytes is truncated at byte " + std::to_string(pos) +
                       " of " + std::to_string(blob.size()));
    }
    field.assign(blob, pos, n);
    pos += n;
  };
  while (pos < blob.size()) {
    Header h;
    take(h.key, "key");
    take(h.value, "value");
    out.push_back(std::move(h));
  }
  return out;
}

}  // namespace dispatch
