// JavaProducer: produces keyed records with Kafka's own Java producer, so
// that tests can check that iqengine serializes keys and picks partitions
// exactly as Java does (router/java_compat_test.go).
//
// Run with Java's source launcher and the Kafka jars on the classpath:
//
//   go run ./internal/testkafka/cmd/kafka java scripts/java/JavaProducer.java BOOTSTRAP TOPIC KEYTYPE COUNT
//
// KEYTYPE is "string" (StringSerializer keys j-0000.., some of them
// non-ASCII) or "long" (LongSerializer keys: 0, 1, -1, the extremes, and a
// spread of large and negative values). Values are JSON strings
// {"key":...,"n":i} written with StringSerializer. The partitioner is
// Kafka's default (partitioner.class is not set). For every record one line
// "key<TAB>partition<TAB>offset" from the send's RecordMetadata goes to
// stdout; any send error exits non-zero.

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.Future;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.LongSerializer;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class JavaProducer {
    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: JavaProducer BOOTSTRAP TOPIC string|long COUNT");
            System.exit(2);
        }
        String bootstrap = args[0], topic = args[1], keyType = args[2];
        int count;
        try {
            count = Integer.parseInt(args[3]);
        } catch (NumberFormatException e) {
            count = -1;
        }
        if (count < 1) {
            System.err.println("JavaProducer: COUNT must be a positive number, got " + args[3]);
            System.exit(2);
        }
        switch (keyType) {
            case "string":
                run(bootstrap, topic, new StringSerializer(), stringKeys(count));
                break;
            case "long":
                run(bootstrap, topic, new LongSerializer(), longKeys(count));
                break;
            default:
                System.err.println("JavaProducer: KEYTYPE must be string or long, got " + keyType);
                System.exit(2);
        }
    }

    // stringKeys: j-0000, j-0001, ... with a few non-ASCII keys in place of
    // some of them (multi-byte UTF-8 exercises the serializer and the hash).
    static List<String> stringKeys(int count) {
        // Cyrillic, Latin-1, CJK, sharp s, an emoji (a surrogate pair) and URL
        // metacharacters. Unicode escapes keep this file ASCII, so the
        // compiler's default charset does not matter.
        String[] special = {"\u043a\u043b\u044e\u0447-1", "cl\u00e9-2", "\u952e-3", "Gr\u00fc\u00dfe-4",
            "\ud83d\udd11-5", "a b/c?d#e%f+g-6"};
        List<String> keys = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            keys.add(String.format("j-%04d", i));
        }
        for (int i = 0; i < special.length && 1 + i * 7 < count; i++) {
            keys.set(1 + i * 7, special[i]);
        }
        return keys;
    }

    // longKeys: the edge values first, then a deterministic spread of large,
    // small and negative values, all distinct.
    static List<Long> longKeys(int count) {
        Set<Long> keys = new LinkedHashSet<>();
        long[] edges = {0L, 1L, -1L, Long.MIN_VALUE, Long.MAX_VALUE, Long.MIN_VALUE + 1, Long.MAX_VALUE - 1,
            Integer.MAX_VALUE, Integer.MIN_VALUE, (long) Integer.MAX_VALUE + 1, (long) Integer.MIN_VALUE - 1,
            255L, 256L, -256L, 1L << 32, -(1L << 32), 1L << 62, -(1L << 62), 1234567890123456789L,
            -987654321098765432L};
        for (long k : edges) {
            if (keys.size() == count) {
                break;
            }
            keys.add(k);
        }
        long x = 0x9E3779B97F4A7C15L; // splitmix64 over a fixed seed
        for (int i = 0; keys.size() < count; i++) {
            x += 0x9E3779B97F4A7C15L;
            long z = x;
            z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
            z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
            z ^= z >>> 31;
            switch (i % 4) {
                case 0: keys.add(z); break;                  // full 64-bit range
                case 1: keys.add(z >> 33); break;            // around +-2^30
                case 2: keys.add(-(long) i * 1000003L); break; // negative
                default: keys.add((long) i * 7919L); break;  // small positive
            }
        }
        return new ArrayList<>(keys);
    }

    static <K> void run(String bootstrap, String topic, Serializer<K> keySer, List<K> keys) throws Exception {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        props.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000"); // e.g. a missing topic
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "iqengine-java-compat");
        // No partitioner.class: Kafka's default places keyed records by murmur2.
        List<Future<RecordMetadata>> sent = new ArrayList<>(keys.size());
        List<String> values = new ArrayList<>(keys.size());
        try (KafkaProducer<K, String> producer = new KafkaProducer<>(props, keySer, new StringSerializer())) {
            for (int i = 0; i < keys.size(); i++) {
                K key = keys.get(i);
                String value = "{\"key\":" + jsonString(String.valueOf(key)) + ",\"n\":" + i + "}";
                values.add(value);
                sent.add(producer.send(new ProducerRecord<>(topic, key, value)));
            }
            producer.flush();
            // UTF-8 whatever the locale: the test reads the keys back as UTF-8.
            PrintStream stdout = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
            StringBuilder out = new StringBuilder();
            for (int i = 0; i < keys.size(); i++) {
                RecordMetadata md = sent.get(i).get(); // throws on a send error
                out.append(keys.get(i)).append('\t').append(md.partition()).append('\t').append(md.offset()).append('\n');
            }
            stdout.print(out);
            stdout.flush();
            if (stdout.checkError()) {
                throw new java.io.IOException("writing to stdout failed");
            }
        } catch (Exception e) {
            System.err.println("JavaProducer: send failed: " + e);
            System.exit(1);
        }
    }

    static String jsonString(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                default:
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
            }
        }
        return b.append('"').toString();
    }
}
