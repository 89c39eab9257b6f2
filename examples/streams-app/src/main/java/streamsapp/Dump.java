package streamsapp;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * The {@code dump} subcommand: a topic's first records (read_committed), each with its key and
 * value in hex and decoded by the changelog layout ({@link Layout}).
 */
final class Dump {
    private Dump() {}

    static final String USAGE = String.join("\n",
            "usage: streams-app dump --bootstrap HOST:PORT --topic T [flags]",
            "",
            "Prints a topic's first records (read_committed) with keys and values in hex and",
            "decoded: key-value (String key), window ([key][start][seq]) or session",
            "([key][end][start]) changelog keys; Long values.",
            "",
            "  --bootstrap HOST:PORT   Kafka bootstrap servers (required)",
            "  --topic T               the topic (required)",
            "  --partition N           only this partition (default: all)",
            "  --limit N               records per partition, 0 for all (default 10)",
            "  --layout L              kv, window, session or raw (default: from the topic's name,",
            "                          see README.md)",
            "  --json                  one JSON object per record instead of text");

    /** Reading a partition gives up when nothing arrives for this long. */
    static final Duration IDLE = Duration.ofSeconds(10);

    static void run(String[] args) throws Exception {
        Flags f = Flags.parse(args, Set.of("bootstrap", "topic", "partition", "limit", "layout"), Set.of("json"));
        String bootstrap = f.required("bootstrap");
        String topic = f.required("topic");
        long limit = f.number("limit", 10, 0);
        boolean json = f.bool("json");
        Layout layout;
        try {
            layout = f.string("layout", null) == null ? Layout.guess(topic)
                    : Layout.valueOf(f.string("layout", null).toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new Flags.UsageException("flag --layout: " + f.string("layout", null) + " is not kv, window, session or raw");
        }
        List<TopicPartition> tps = new ArrayList<>();
        try (Admin admin = Admin.create(Kafka.adminProps(bootstrap))) {
            int n = Kafka.partitionCount(admin, topic);
            if (f.string("partition", null) != null) {
                int p = (int) f.number("partition", 0, 0);
                if (p >= n) {
                    throw new Flags.UsageException("flag --partition: " + topic + " has " + n + " partitions");
                }
                tps.add(new TopicPartition(topic, p));
            } else {
                for (int p = 0; p < n; p++) {
                    tps.add(new TopicPartition(topic, p));
                }
            }
        }

        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            Map<TopicPartition, Long> ends = c.endOffsets(tps);
            for (TopicPartition tp : tps) {
                // One partition after the other, so that the output is in (partition, offset) order.
                c.assign(List.of(tp));
                c.seekToBeginning(List.of(tp));
                long printed = 0;
                long lastProgress = System.nanoTime();
                while (c.position(tp) < ends.get(tp) && (limit == 0 || printed < limit)) {
                    var records = c.poll(Duration.ofMillis(200));
                    if (records.isEmpty()) {
                        if (System.nanoTime() - lastProgress > IDLE.toNanos()) {
                            throw new IllegalStateException("no records from " + tp + " for " + IDLE + " before its end offset");
                        }
                        continue;
                    }
                    lastProgress = System.nanoTime();
                    for (ConsumerRecord<byte[], byte[]> r : records.records(tp)) {
                        if (limit != 0 && printed >= limit) {
                            break;
                        }
                        System.out.println(json ? json(r, layout) : text(r, layout));
                        printed++;
                    }
                }
            }
        }
    }

    /** The record's fields decoded by {@code layout}, by name; empty for raw or what does not fit. */
    static Map<String, Object> decode(ConsumerRecord<byte[], byte[]> r, Layout layout) {
        Map<String, Object> m = new LinkedHashMap<>();
        try {
            switch (layout) {
                case KV -> m.put("key", new String(r.key(), StandardCharsets.UTF_8));
                case WINDOW -> {
                    Layout.WindowKey k = Layout.window(r.key());
                    m.put("key", k.key());
                    m.put("start", k.start());
                    m.put("seq", k.seq());
                }
                case SESSION -> {
                    Layout.SessionKey k = Layout.session(r.key());
                    m.put("key", k.key());
                    m.put("end", k.end());
                    m.put("start", k.start());
                }
                case RAW -> {
                    return m;
                }
            }
            m.put("value", Layout.longValue(r.value()));
        } catch (IllegalArgumentException | NullPointerException e) {
            m.put("error", e.getMessage());
        }
        return m;
    }

    static String text(ConsumerRecord<byte[], byte[]> r, Layout layout) {
        StringBuilder s = new StringBuilder();
        s.append("p=").append(r.partition()).append(" offset=").append(r.offset())
                .append(" ts=").append(r.timestamp())
                .append(" key=").append(Layout.hex(r.key()))
                .append(" value=").append(r.value() == null ? "null" : Layout.hex(r.value()));
        if (r.headers().toArray().length > 0) {
            s.append(" headers=").append(r.headers().toArray().length);
        }
        Map<String, Object> d = decode(r, layout);
        if (!d.isEmpty()) {
            s.append(" |");
            d.forEach((k, v) -> s.append(' ').append(k).append('=').append(v));
        }
        return s.toString();
    }

    static String json(ConsumerRecord<byte[], byte[]> r, Layout layout) {
        Json j = new Json().object()
                .name("partition").value(r.partition())
                .name("offset").value(r.offset())
                .name("timestamp").value(r.timestamp())
                .name("key").value(Layout.hex(r.key()))
                .name("value").value(Layout.hex(r.value()))
                .name("headers").value(r.headers().toArray().length)
                .name("decoded").object();
        for (Map.Entry<String, Object> e : decode(r, layout).entrySet()) {
            j.name(e.getKey());
            if (e.getValue() instanceof Number n) {
                j.value(n.longValue());
            } else {
                j.value(e.getValue() == null ? null : e.getValue().toString()); // a tombstone's value: null
            }
        }
        return j.end().end().toString();
    }
}
