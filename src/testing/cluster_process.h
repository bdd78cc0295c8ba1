// An embedded cluster in a child process, for the tests and benchmarks that
// measure the client alone (its memory, its CPU time) or that must keep the
// cluster out of the client's threads. Construct it before the process
// starts any thread: it forks.
//
// Commands, one per line, each acknowledged before Command returns:
//   "errors CODE COUNT"  the next COUNT produce requests fail with CODE
//   "rtt MS"             every broker answers MS milliseconds late (0 undoes it)
//   "topic NAME N"       creates topic NAME with N partitions (librdkafka's mock
//                        cluster does not answer the admin API's CreateTopics,
//                        on 2.0.2 nor on 2.14.2, so a client cannot create one)
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "dispatch/testing/embedded_kafka.h"

namespace dispatch::testing::internal {

class ClusterProcess {
 public:
  // `topics`: name and partition count of each topic to create.
  ClusterProcess(int brokers, const std::vector<std::pair<std::string, int>>& topics) {
    int to_parent[2];
    int to_child[2];
    if (pipe(to_parent) != 0 || pipe(to_child) != 0) throw std::runtime_error("pipe failed");
    child_ = fork();
    if (child_ < 0) throw std::runtime_error("fork failed");
    if (child_ == 0) {
      close(to_parent[0]);
      close(to_child[1]);
      RunChild(brokers, topics, to_child[0], to_parent[1]);  // never returns
    }
    close(to_parent[1]);
    close(to_child[0]);
    in_ = fdopen(to_parent[0], "r");
    out_ = fdopen(to_child[1], "w");
    bootstrap_ = ReadLine();
    if (bootstrap_.empty()) throw std::runtime_error("the embedded cluster process did not start");
  }

  ~ClusterProcess() {
    if (out_ != nullptr) std::fclose(out_);  // EOF: the child exits
    if (in_ != nullptr) std::fclose(in_);
    waitpid(child_, nullptr, 0);
  }
  ClusterProcess(const ClusterProcess&) = delete;
  ClusterProcess& operator=(const ClusterProcess&) = delete;

  // "host:port,..." of the brokers.
  const std::string& Bootstrap() const { return bootstrap_; }

  void Command(const std::string& line) {
    std::fprintf(out_, "%s\n", line.c_str());
    std::fflush(out_);
    if (ReadLine() != "ok") throw std::runtime_error("cluster process failed: " + line);
  }

 private:
  [[noreturn]] static void RunChild(int brokers,
                                    const std::vector<std::pair<std::string, int>>& topics,
                                    int in_fd, int out_fd) {
    FILE* in = fdopen(in_fd, "r");
    FILE* out = fdopen(out_fd, "w");
    int code = 0;
    {
      EmbeddedKafkaCluster cluster(brokers);
      for (const auto& [name, partitions] : topics) cluster.CreateTopic(name, partitions, 1);
      std::fprintf(out, "%s\n", cluster.Bootstrap().c_str());
      std::fflush(out);
      char line[512];
      while (std::fgets(line, sizeof line, in) != nullptr) {
        int a = 0;
        int b = 0;
        char name[256];  // a Kafka topic name has 249 characters at most
        bool ok = true;
        if (std::sscanf(line, "topic %255s %d", name, &a) == 2) {
          try {
            cluster.CreateTopic(name, a, 1);
          } catch (const std::runtime_error&) {
            ok = false;  // the parent throws; the cluster goes on
          }
        } else if (std::sscanf(line, "errors %d %d", &a, &b) == 2) {
          cluster.PushRequestErrors(ApiKey::kProduce, std::vector<int>(b, a));
        } else if (std::sscanf(line, "rtt %d", &a) == 1) {
          cluster.SetRtt(-1, std::chrono::milliseconds(a));
        } else {
          ok = false;
          code = 1;
        }
        std::fprintf(out, ok ? "ok\n" : "error\n");
        std::fflush(out);
      }
    }
    _exit(code);
  }

  std::string ReadLine() {
    char line[4096];
    if (std::fgets(line, sizeof line, in_) == nullptr) {
      throw std::runtime_error("the embedded cluster process died");
    }
    std::string s(line);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
  }

  pid_t child_ = -1;
  FILE* in_ = nullptr;
  FILE* out_ = nullptr;
  std::string bootstrap_;
};

}  // namespace dispatch::testing::internal
