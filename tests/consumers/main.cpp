// Uses the installed or embedded library as a service would.
#include <dispatch/kafka/kafka_publisher.h>
#include <dispatch/publisher.h>
#include <dispatch/version.h>

#include <cstdio>

int main() {
  dispatch::kafka::KafkaPublisher publisher(dispatch::kafka::DefaultKafkaConfig({"127.0.0.1:9"}));
  dispatch::Publisher& as_interface = publisher;
  const dispatch::Result r = as_interface.Publish(
      dispatch::Context::WithTimeout(std::chrono::milliseconds(-1)), {"orders", "k", "v", {}});
  std::printf("dispatch-kafka %s: %s\n", dispatch::kVersionString, r.message.c_str());
  return r.code == dispatch::ErrorCode::kDeadlineExceeded ? 0 : 1;
}
