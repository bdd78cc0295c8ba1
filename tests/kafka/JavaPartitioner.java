// Prints the partition that Kafka's own Java producer chooses for each key:
// one hex-encoded key per line on stdin, one partition per line on stdout.
// Run in source-file mode with the Kafka jars on the class path:
//   java -cp '<kafka>/libs/*' JavaPartitioner.java <partitions>
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.HexFormat;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;

public class JavaPartitioner {
  public static void main(String[] args) throws Exception {
    int partitions = Integer.parseInt(args[0]);
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
    for (String line; (line = in.readLine()) != null; ) {
      byte[] key = HexFormat.of().parseHex(line.trim());
      System.out.println(BuiltInPartitioner.partitionForKey(key, partitions));
    }
  }
}
