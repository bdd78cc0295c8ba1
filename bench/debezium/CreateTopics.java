// Creates the benchmark's topics with message.timestamp.type=LogAppendTime,
// so that each record carries the time the broker appended it: B10's
// latency is that time minus the insert time written into the row.
// Run as a single source file (Java 11+) with Kafka's client jars:
//
//   java -cp 'build/kafka-dist/libs/*' bench/debezium/CreateTopics.java \
//       BOOTSTRAP PARTITIONS REPLICATION TOPIC [TOPIC...]
//
// Exits 1 if a topic could not be created (one that exists already is an
// error too: every run uses fresh names).
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;

public class CreateTopics {
  public static void main(String[] args) throws Exception {
    if (args.length < 4) {
      System.err.println("usage: CreateTopics BOOTSTRAP PARTITIONS REPLICATION TOPIC [TOPIC...]");
      System.exit(2);
    }
    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    int partitions = Integer.parseInt(args[1]);
    short replication = Short.parseShort(args[2]);
    List<NewTopic> topics = new ArrayList<>();
    for (int i = 3; i < args.length; ++i) {
      topics.add(new NewTopic(args[i], partitions, replication)
          .configs(Map.of("message.timestamp.type", "LogAppendTime")));
    }
    try (Admin admin = Admin.create(props)) {
      admin.createTopics(topics).all().get();
    }
    System.out.println("created " + (args.length - 3) + " topics");
  }
}
