package streamsapp;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.LongSerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Utils;

/**
 * The {@code generate} subcommand: a deterministic stream of events, produced to a topic with an
 * idempotent producer. An event is a String key {@code user-NNNN} and a Long amount (1 to 100,
 * Kafka's LongSerializer: 8 bytes big-endian); its record timestamp is its event time.
 *
 * <p>The events come in bursts: a burst is one key's 1 to 6 events, 30 s to 8 min apart, from a
 * random point of the event-time span, so that the inactivity gap of the session windows (10
 * min) joins most of a burst into one session and sometimes two bursts. The events are sent in
 * the order of an "arrival time": event time plus up to {@link #JITTER_MS} for most events
 * (local shuffling: out of order by up to a minute), and event time plus a lateness for the
 * {@code --late-fraction} that are late, a third each from 2-4 min (within both graces), 6-9
 * min (beyond the sessions' 5 min grace, within the windows' 10 min) and 15-75 min (beyond both:
 * dropped unless the event's window or session is still open). The stream is a function of the
 * flags alone; only the default of {@code --start-ms} (the hour {@code --hours} before the
 * current one) depends on the clock.
 */
final class Generate {
    private Generate() {}

    static final long SECOND_MS = 1000;
    static final long MINUTE_MS = 60 * SECOND_MS;
    static final long HOUR_MS = 60 * MINUTE_MS;
    /** How far behind its event time an event that is not late arrives at most. */
    static final long JITTER_MS = MINUTE_MS;

    static final String USAGE = String.join("\n",
            "usage: streams-app generate --bootstrap HOST:PORT [flags]",
            "",
            "Produces a deterministic stream of events (key user-NNNN, value a Long amount, record",
            "timestamp the event time), out of order and with some late events, with an idempotent",
            "producer. Creates the topic if it is missing. Prints a JSON summary on stdout.",
            "",
            "  --bootstrap HOST:PORT   Kafka bootstrap servers (required)",
            "  --topic T               the topic (default events)",
            "  --partitions N          partitions of a topic it creates (default 6)",
            "  --keys N                distinct keys (default 2000)",
            "  --events N              events (default 30000)",
            "  --hours N               event-time span in hours (default 6)",
            "  --seed N                random seed (default 1)",
            "  --late-fraction F       fraction of late events (default 0.05)",
            "  --start-ms T            event time of the span's start, ms since the epoch",
            "                          (default: the start of the hour, --hours hours ago)");

    /** One event: its key, its event time (the record timestamp) and its amount (the value). */
    record Event(String key, long time, long amount) {}

    /** What to generate. */
    record Spec(int keys, int events, int hours, long seed, double lateFraction, long startMs) {}

    /** How far behind its partition's stream time each event arrived, counted by bands. */
    record Lateness(long behind, long under5m, long from5mTo10m, long atLeast10m, long maxMs) {}

    /** The events of {@code spec} in the order they are to be produced. */
    static List<Event> events(Spec spec) {
        record Arrival(Event event, long at, int seq) {}
        SplittableRandom r = new SplittableRandom(spec.seed());
        long span = spec.hours() * HOUR_MS;
        long end = spec.startMs() + span;
        String format = "user-%0" + Math.max(4, String.valueOf(spec.keys() - 1).length()) + "d";
        List<Arrival> arrivals = new ArrayList<>(spec.events());
        while (arrivals.size() < spec.events()) {
            String key = String.format(format, r.nextInt(spec.keys()));
            long t = spec.startMs() + r.nextLong(span);
            int burst = 1 + r.nextInt(6);
            for (int i = 0; i < burst && t < end && arrivals.size() < spec.events(); i++) {
                long amount = 1 + r.nextInt(100);
                long delay;
                if (r.nextDouble() < spec.lateFraction()) {
                    delay = switch (r.nextInt(3)) {
                        case 0 -> r.nextLong(2 * MINUTE_MS, 4 * MINUTE_MS + 1);
                        case 1 -> r.nextLong(6 * MINUTE_MS, 9 * MINUTE_MS + 1);
                        default -> r.nextLong(15 * MINUTE_MS, 75 * MINUTE_MS + 1);
                    };
                } else {
                    delay = r.nextLong(JITTER_MS + 1);
                }
                arrivals.add(new Arrival(new Event(key, t, amount), t + delay, arrivals.size()));
                t += r.nextLong(30 * SECOND_MS, 8 * MINUTE_MS + 1);
            }
        }
        arrivals.sort(Comparator.comparingLong(Arrival::at).thenComparingInt(Arrival::seq));
        List<Event> out = new ArrayList<>(arrivals.size());
        for (Arrival a : arrivals) {
            out.add(a.event());
        }
        return out;
    }

    /** The partition the default producer partitioner gives a String key (murmur2). */
    static int partition(String key, int partitions) {
        return Utils.toPositive(Utils.murmur2(key.getBytes(StandardCharsets.UTF_8))) % partitions;
    }

    /**
     * How late the events are, produced in this order to a topic of {@code partitions}
     * partitions: an event is behind when its time is before its partition's stream time (the
     * greatest event time before it in the partition), which is what Kafka Streams compares
     * with a window's end plus grace.
     */
    static Lateness lateness(List<Event> events, int partitions) {
        long[] streamTime = new long[partitions];
        Arrays.fill(streamTime, Long.MIN_VALUE);
        long behind = 0, under5 = 0, under10 = 0, over = 0, max = 0;
        for (Event e : events) {
            int p = partition(e.key(), partitions);
            long late = streamTime[p] == Long.MIN_VALUE ? 0 : streamTime[p] - e.time();
            if (late > 0) {
                behind++;
                if (late < 5 * MINUTE_MS) {
                    under5++;
                } else if (late < 10 * MINUTE_MS) {
                    under10++;
                } else {
                    over++;
                }
                max = Math.max(max, late);
            }
            streamTime[p] = Math.max(streamTime[p], e.time());
        }
        return new Lateness(behind, under5, under10, over, max);
    }

    static void run(String[] args) throws Exception {
        Flags f = Flags.parse(args, Set.of("bootstrap", "topic", "partitions", "keys", "events",
                "hours", "seed", "late-fraction", "start-ms"), Set.of());
        String bootstrap = f.required("bootstrap");
        String topic = f.string("topic", "events");
        int partitions = (int) f.number("partitions", 6, 1);
        int hours = (int) f.number("hours", 6, 1);
        long now = System.currentTimeMillis();
        Spec spec = new Spec((int) f.number("keys", 2000, 1), (int) f.number("events", 30000, 0), hours,
                f.number("seed", 1, Long.MIN_VALUE), f.fraction("late-fraction", 0.05),
                f.number("start-ms", now - now % HOUR_MS - hours * HOUR_MS, 0));

        int actual;
        try (Admin admin = Admin.create(Kafka.adminProps(bootstrap))) {
            actual = Kafka.ensureTopic(admin, topic, partitions);
        }
        List<Event> events = events(spec);

        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        AtomicLong failed = new AtomicLong();
        AtomicReference<Exception> firstError = new AtomicReference<>();
        try (KafkaProducer<String, Long> producer = new KafkaProducer<>(p, new StringSerializer(), new LongSerializer())) {
            for (Event e : events) {
                producer.send(new ProducerRecord<>(topic, null, e.time(), e.key(), e.amount()), (md, err) -> {
                    if (err != null) {
                        failed.incrementAndGet();
                        firstError.compareAndSet(null, err);
                    }
                });
            }
            producer.flush();
        }
        if (failed.get() > 0) {
            throw new IllegalStateException(failed.get() + " events were not produced; the first error: " + firstError.get());
        }

        Lateness l = lateness(events, actual);
        long min = Long.MAX_VALUE, max = Long.MIN_VALUE;
        Set<String> keys = new HashSet<>();
        for (Event e : events) {
            min = Math.min(min, e.time());
            max = Math.max(max, e.time());
            keys.add(e.key());
        }
        Json j = new Json().object()
                .name("topic").value(topic)
                .name("partitions").value(actual)
                .name("events").value(events.size())
                .name("keys").value(keys.size())
                .name("seed").value(spec.seed())
                .name("start_ms").value(spec.startMs())
                .name("end_ms").value(spec.startMs() + hours * HOUR_MS)
                .name("min_time_ms").value(events.isEmpty() ? null : min)
                .name("max_time_ms").value(events.isEmpty() ? null : max)
                .name("value").value("int64 amount 1..100")
                .name("behind_stream_time").object()
                .name("events").value(l.behind())
                .name("under_5m").value(l.under5m())
                .name("5m_to_10m").value(l.from5mTo10m())
                .name("10m_or_more").value(l.atLeast10m())
                .name("max_ms").value(l.maxMs())
                .end()
                .end();
        System.out.println(j);
    }
}
