// libFuzzer target: Publish and PublishBatch with arbitrary messages (topic,
// key presence, value and header sizes and counts) on a publisher whose
// broker does not exist, so every path up to and after produce() runs and
// each call ends within a millisecond. Checked: no crash, one result per
// message, and a message that was refused is reported not delivered.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "dispatch/kafka/kafka_publisher.h"

namespace {

dispatch::kafka::KafkaPublisher& Publisher() {
  static auto* publisher = [] {
    auto config = dispatch::kafka::DefaultKafkaConfig({"127.0.0.1:9"});
    config.write_timeout = std::chrono::milliseconds(5);
    config.properties["message.max.bytes"] = "100000";
    return new dispatch::kafka::KafkaPublisher(config);
  }();
  return *publisher;
}

// Takes n bytes (or what is left) off the front of the input.
std::string Take(const std::uint8_t*& data, std::size_t& size, std::size_t n) {
  n = std::min(n, size);
  std::string out(reinterpret_cast<const char*>(data), n);
  data += n;
  size -= n;
  return out;
}

std::size_t Byte(const std::uint8_t*& data, std::size_t& size) {
  if (size == 0) return 0;
  --size;
  return *data++;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<dispatch::Message> batch;
  const std::size_t count = 1 + Byte(data, size) % 8;
  for (std::size_t i = 0; i < count; ++i) {
    dispatch::Message m;
    m.topic = Take(data, size, Byte(data, size) % 32);
    const std::size_t key_len = Byte(data, size);
    if (key_len != 255) m.key = Take(data, size, key_len % 16);
    // Sizes around message.max.bytes, from the input's bytes.
    const std::size_t value_len = Byte(data, size) * 500;
    m.value.assign(value_len, 'v');
    const std::size_t headers = Byte(data, size) % 64;
    for (std::size_t h = 0; h < headers; ++h) {
      m.headers.push_back({Take(data, size, 3), Take(data, size, Byte(data, size) % 8)});
    }
    batch.push_back(std::move(m));
  }
  const auto ctx = dispatch::Context::WithTimeout(std::chrono::milliseconds(1));
  const auto results = Publisher().PublishBatch(ctx, batch);
  if (results.size() != batch.size()) std::abort();
  for (const auto& r : results) {
    if (!r.ok() && !r.retriable && r.delivery != dispatch::Delivery::kNotDelivered) std::abort();
  }
  const auto single = Publisher().Publish(ctx, batch.front());
  (void)single;
  return 0;
}
