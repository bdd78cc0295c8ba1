// Command kafka_go publishes the way the original Go package did, with
// segmentio/kafka-go v0.4.50, so that its figures can be set beside
// dispatch-kafka's on the same broker (issue 13, "The Go original, side by
// side").
//
// The original published through one shared kafka.Writer with
// RequiredAcks: kafka.RequireAll and Balancer: &kafka.Hash{} (keyed messages)
// and kafka-go's defaults otherwise, so BatchTimeout is 1 s: a blocking
// WriteMessages of one message waits for the batch timer, about one message
// per second per publisher. --batch-timeout 1ms is the same writer as a user
// who tuned it would run it.
//
// Each of --publishers goroutines calls WriteMessages(ctx, msg) with one
// 100-byte message and a key ("key-0" .. "key-63"), one at a time, like a
// blocking Publish; B1 (one publisher) and B3 (16 threads) are the C++ side's
// runs of the same shape. Measured: messages per second over the whole run,
// p50/p99 latency of one WriteMessages call, and CPU (user + system, from
// getrusage of this process) per message. One warm-up write (connection,
// metadata, topic creation settling) is not counted.
//
//	go build -o kafka_go . && ./kafka_go --brokers localhost:9092 \
//	    [--topic bench-go] [--publishers 1|16] [--batch-timeout 1s|1ms] \
//	    [--duration 10s | --messages N] [--quick] [--partitions 1] \
//	    [--replication 1] [--no-create] [--json]
//
// bench/run.py builds it into <build>/bench/kafka_go and runs the four
// configurations (1 and 16 publishers, batch timeout 1 s and 1 ms) beside
// the C++ benchmarks.
//
// The run is bounded by --duration (default 10 s, 3 s with --quick) unless
// --messages (per publisher) is given; with the default batch timeout a
// count-bound run would take N seconds. The topic is created through the
// controller when missing (--partitions, --replication); an existing topic is
// used as it is. --no-create leaves it to the caller: librdkafka's mock
// cluster (the C++ benches' embedded cluster) answers Produce and Metadata
// from kafka-go but neither names a controller nor serves CreateTopics, so
// bench/kafka_go.py creates the topic in the mock itself.
//
// A human table goes to stdout, and the last line is one JSON object
// (scenario "go") that bench/run.py reads. The exit code is 1 when a write
// failed. The CPU figure is this process's alone: on a real broker, or on the
// mock cluster that bench/kafka_go.py hosts in another process.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
)

const kafkaGoModule = "github.com/segmentio/kafka-go"

type result struct {
	Scenario       string   `json:"scenario"`
	KafkaGo        string   `json:"kafka_go"`
	Publishers     int      `json:"publishers"`
	BatchTimeoutMs float64  `json:"batch_timeout_ms"`
	Messages       int      `json:"messages"`
	Seconds        float64  `json:"seconds"`
	MsgsPerS       float64  `json:"msgs_per_s"`
	P50Us          *float64 `json:"p50_us"`
	P99Us          *float64 `json:"p99_us"`
	CPUUsPerMsg    *float64 `json:"cpu_us_per_msg"`
	Failures       int      `json:"failures"`
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func kafkaGoVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, m := range info.Deps {
			if m.Path == kafkaGoModule {
				return m.Version
			}
		}
	}
	return "unknown"
}

// ensureTopic creates the topic through the controller; an existing topic is
// left as it is.
func ensureTopic(brokers []string, topic string, partitions, replication int) error {
	var conn *kafka.Conn
	var err error
	for _, b := range brokers {
		if conn, err = kafka.DialContext(context.Background(), "tcp", b); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("dial %v: %w", brokers, err)
	}
	defer conn.Close()
	controller, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("find the controller: %w", err)
	}
	cc, err := kafka.DialContext(context.Background(), "tcp",
		net.JoinHostPort(controller.Host, strconv.Itoa(controller.Port)))
	if err != nil {
		return fmt.Errorf("dial the controller: %w", err)
	}
	defer cc.Close()
	err = cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: partitions,
		ReplicationFactor: replication})
	if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

func percentile(sorted []time.Duration, p int) *float64 {
	if len(sorted) == 0 {
		return nil
	}
	i := len(sorted) * p / 100
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	v := float64(sorted[i].Nanoseconds()) / 1e3
	return &v
}

func main() {
	brokersFlag := flag.String("brokers", "", "bootstrap brokers, host:port[,...] (required)")
	topic := flag.String("topic", "bench-go", "topic to publish to")
	publishers := flag.Int("publishers", 1, "goroutines, each with one blocking write in flight")
	batchTimeout := flag.Duration("batch-timeout", time.Second,
		"kafka.Writer BatchTimeout (kafka-go's default is 1s; left unset unless given)")
	messages := flag.Int("messages", 0, "messages per publisher (0: bound the run by --duration)")
	duration := flag.Duration("duration", 0, "length of the run (default 10s, 3s with --quick)")
	quick := flag.Bool("quick", false, "short run")
	partitions := flag.Int("partitions", 1, "partitions when the topic is created")
	replication := flag.Int("replication", 1, "replication factor when the topic is created")
	noCreate := flag.Bool("no-create", false, "do not create the topic (the caller did)")
	asJSON := flag.Bool("json", false, "accepted for symmetry; the JSON line is always printed last")
	flag.Parse()
	_ = asJSON
	if *brokersFlag == "" || *publishers < 1 {
		fmt.Fprintln(os.Stderr, "usage: kafka_go --brokers host:port[,...] [--publishers N] [--batch-timeout D] ...")
		os.Exit(2)
	}
	if *duration == 0 {
		*duration = 10 * time.Second
		if *quick {
			*duration = 3 * time.Second
		}
	}
	batchTimeoutSet := false
	flag.Visit(func(f *flag.Flag) { batchTimeoutSet = batchTimeoutSet || f.Name == "batch-timeout" })
	brokers := strings.Split(*brokersFlag, ",")

	if !*noCreate {
		if err := ensureTopic(brokers, *topic, *partitions, *replication); err != nil {
			fmt.Fprintln(os.Stderr, "kafka_go:", err)
			os.Exit(1)
		}
	}

	// The original's writer: acks from all in-sync replicas, keys hashed to
	// partitions, everything else kafka-go's default.
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        *topic,
		RequiredAcks: kafka.RequireAll,
		Balancer:     &kafka.Hash{},
	}
	if batchTimeoutSet {
		w.BatchTimeout = *batchTimeout
	}
	effectiveTimeout := w.BatchTimeout
	if effectiveTimeout == 0 {
		effectiveTimeout = time.Second // kafka-go's default
	}
	defer w.Close()

	value := []byte(strings.Repeat("v", 100))
	keys := make([][]byte, 64)
	for i := range keys {
		keys[i] = []byte("key-" + strconv.Itoa(i))
	}

	// Warm-up: connection, metadata, a freshly created topic's leader.
	var warmErr error
	for attempt := 0; attempt < 10; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		warmErr = w.WriteMessages(ctx, kafka.Message{Key: keys[0], Value: value})
		cancel()
		if warmErr == nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if warmErr != nil {
		fmt.Fprintln(os.Stderr, "kafka_go: warm-up write failed:", warmErr)
		os.Exit(1)
	}

	latencies := make([][]time.Duration, *publishers)
	failures := make([]int, *publishers)
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	start := time.Now()
	deadline := start.Add(*duration)
	for p := 0; p < *publishers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; ; i++ {
				if *messages > 0 && i >= *messages {
					return
				}
				if *messages == 0 && !time.Now().Before(deadline) {
					return
				}
				msg := kafka.Message{Key: keys[(p+i)%len(keys)], Value: value}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second+effectiveTimeout)
				t0 := time.Now()
				err := w.WriteMessages(ctx, msg)
				elapsed := time.Since(t0)
				cancel()
				if err != nil {
					failures[p]++
					time.Sleep(10 * time.Millisecond)
					continue
				}
				latencies[p] = append(latencies[p], elapsed)
			}
		}(p)
	}
	wg.Wait()
	seconds := time.Since(start).Seconds()
	cpu := cpuTime() - cpu0

	var all []time.Duration
	failed := 0
	for p := range latencies {
		all = append(all, latencies[p]...)
		failed += failures[p]
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r := result{
		Scenario:       "go",
		KafkaGo:        kafkaGoVersion(),
		Publishers:     *publishers,
		BatchTimeoutMs: float64(effectiveTimeout.Microseconds()) / 1e3,
		Messages:       len(all),
		Seconds:        seconds,
		MsgsPerS:       float64(len(all)) / seconds,
		P50Us:          percentile(all, 50),
		P99Us:          percentile(all, 99),
		Failures:       failed,
	}
	if len(all) > 0 {
		v := float64(cpu.Nanoseconds()) / 1e3 / float64(len(all))
		r.CPUUsPerMsg = &v
	}

	show := func(v *float64, unit string) string {
		if v == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.0f %s", *v, unit)
	}
	fmt.Printf("kafka-go %s, %d publisher(s), BatchTimeout %v, RequireAll, Hash balancer, topic %s on %s\n",
		r.KafkaGo, r.Publishers, effectiveTimeout, *topic, *brokersFlag)
	fmt.Printf("  %-22s %d in %.2f s\n", "messages", r.Messages, r.Seconds)
	fmt.Printf("  %-22s %.1f\n", "msg/s", r.MsgsPerS)
	fmt.Printf("  %-22s %s\n", "p50 per write", show(r.P50Us, "us"))
	fmt.Printf("  %-22s %s\n", "p99 per write", show(r.P99Us, "us"))
	fmt.Printf("  %-22s %s\n", "CPU per message", show(r.CPUUsPerMsg, "us"))
	fmt.Printf("  %-22s %d\n", "failed writes", r.Failures)
	line, _ := json.Marshal(r)
	fmt.Println(string(line))
	if failed > 0 || len(all) == 0 {
		os.Exit(1)
	}
}
