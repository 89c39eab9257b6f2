package streamsapp;

import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyQueryMetadata;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TaskMetadata;
import org.apache.kafka.streams.ThreadMetadata;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.InvalidStateStoreException;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.StateStore;
import org.apache.kafka.streams.state.HostInfo;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.apache.kafka.streams.state.ReadOnlySessionStore;
import org.apache.kafka.streams.state.ReadOnlyWindowStore;
import org.apache.kafka.streams.state.SessionStore;
import org.apache.kafka.streams.state.WindowStore;

import com.sun.net.httpserver.HttpServer;

/**
 * The {@code run} subcommand: the Kafka Streams application. It reads the events (String key,
 * Long amount) and keeps three stores, all with String keys and Long values:
 *
 * <ul>
 *   <li>{@value #COUNTS}: events per key (key-value; {@code count()});
 *   <li>{@value #WINDOWS}: events per key in tumbling windows of {@link #WINDOW_SIZE}, grace
 *       {@link #WINDOW_GRACE}, retention {@link #WINDOW_RETENTION} ({@code count()});
 *   <li>{@value #SESSIONS}: the sum of the amounts per key and session, inactivity gap
 *       {@link #SESSION_GAP}, grace {@link #SESSION_GRACE}, retention {@link #SESSION_RETENTION}
 *       ({@code reduce(Long::sum)}).
 * </ul>
 *
 * Each store's changelog is {@code <application.id>-<store>-changelog}, partitioned as the input
 * topic. Processing is exactly-once (v2), committing every {@code --commit-ms}; everything else
 * is Kafka Streams' default (the record cache in front of RocksDB included). The HTTP API
 * ({@link Api}) answers from the partitions this instance holds: run one instance to have them
 * all.
 */
final class App {
    private App() {}

    static final String COUNTS = "counts";
    static final String WINDOWS = "windowed-counts";
    static final String SESSIONS = "sessions";

    static final Duration WINDOW_SIZE = Duration.ofHours(1);
    static final Duration WINDOW_GRACE = Duration.ofMinutes(10);
    static final Duration WINDOW_RETENTION = Duration.ofHours(3);
    static final Duration SESSION_GAP = Duration.ofMinutes(10);
    static final Duration SESSION_GRACE = Duration.ofMinutes(5);
    static final Duration SESSION_RETENTION = Duration.ofHours(2);

    static final String USAGE = String.join("\n",
            "usage: streams-app run --bootstrap HOST:PORT --application-id A --state-dir D [flags]",
            "",
            "Runs the Kafka Streams application (exactly_once_v2) with the stores counts,",
            "windowed-counts and sessions, and serves their interactive queries over HTTP.",
            "Creates the input topic if it is missing. Prints the changelog topics on stdout.",
            "",
            "  --bootstrap HOST:PORT    Kafka bootstrap servers (required)",
            "  --application-id A       application.id: the consumer group and the changelogs' prefix (required)",
            "  --state-dir D            Kafka Streams' state.dir (required)",
            "  --listen HOST:PORT       HTTP address, also application.server (default 127.0.0.1:8080)",
            "  --topic T                the input topic (default events)",
            "  --partitions N           partitions of an input topic it creates (default 6)",
            "  --commit-ms N            commit.interval.ms (default 100)",
            "  --no-caching             no record cache in front of the stores (default: Kafka Streams'",
            "                           10 MB cache; see README.md for what it changes)");

    /** The changelog topic of {@code store}. */
    static String changelog(String applicationId, String store) {
        return applicationId + "-" + store + "-changelog";
    }

    /**
     * The topology: the three stores over the input topic. With {@code caching} (Kafka Streams'
     * default) each store has the record cache in front of RocksDB; without, every update goes
     * to RocksDB and the changelog at once.
     */
    static Topology topology(String topic, boolean caching) {
        StreamsBuilder b = new StreamsBuilder();
        KGroupedStream<String, Long> byKey = b.stream(topic, Consumed.with(Serdes.String(), Serdes.Long()))
                .groupByKey(Grouped.with(Serdes.String(), Serdes.Long()));
        byKey.count(cache(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as(COUNTS)
                .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()), caching));
        byKey.windowedBy(TimeWindows.ofSizeAndGrace(WINDOW_SIZE, WINDOW_GRACE))
                .count(cache(Materialized.<String, Long, WindowStore<Bytes, byte[]>>as(WINDOWS)
                        .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long())
                        .withRetention(WINDOW_RETENTION), caching));
        byKey.windowedBy(SessionWindows.ofInactivityGapAndGrace(SESSION_GAP, SESSION_GRACE))
                .reduce(Long::sum, cache(Materialized.<String, Long, SessionStore<Bytes, byte[]>>as(SESSIONS)
                        .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long())
                        .withRetention(SESSION_RETENTION), caching));
        return b.build();
    }

    private static <S extends StateStore> Materialized<String, Long, S> cache(
            Materialized<String, Long, S> m, boolean caching) {
        return caching ? m : m.withCachingDisabled();
    }

    static Properties properties(String bootstrap, String applicationId, String stateDir, String listen, long commitMs) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        p.put(StreamsConfig.APPLICATION_SERVER_CONFIG, listen);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, commitMs);
        return p;
    }

    /** The stores of the partitions a running KafkaStreams holds. */
    static final class LocalStores implements Stores {
        private static final Serializer<String> KEYS = Serdes.String().serializer();
        private final KafkaStreams streams;
        private final String topic;
        private final HostInfo self;

        LocalStores(KafkaStreams streams, String topic, HostInfo self) {
            this.streams = streams;
            this.topic = topic;
            this.self = self;
        }

        @Override
        public List<Integer> partitions() {
            List<Integer> out = new ArrayList<>();
            for (ThreadMetadata t : streams.metadataForLocalThreads()) {
                for (TaskMetadata task : t.activeTasks()) {
                    task.topicPartitions().stream().filter(tp -> tp.topic().equals(topic))
                            .forEach(tp -> out.add(tp.partition()));
                }
            }
            out.sort(null);
            return out;
        }

        @Override
        public int partitionOf(String key) {
            KeyQueryMetadata md = streams.queryMetadataForKey(COUNTS, key, KEYS);
            if (md == null || md.equals(KeyQueryMetadata.NOT_AVAILABLE) || md.activeHost() == null) {
                throw new InvalidStateStoreException("no active host for the key's partition yet");
            }
            if (!md.activeHost().equals(self)) {
                throw new NotHereException("partition " + md.partition() + " of key " + key + " is held by "
                        + md.activeHost().host() + ":" + md.activeHost().port() + ", not by this instance");
            }
            return md.partition();
        }

        @Override
        public ReadOnlyKeyValueStore<String, Long> counts(int partition) {
            return streams.store(StoreQueryParameters.fromNameAndType(COUNTS, QueryableStoreTypes.<String, Long>keyValueStore())
                    .withPartition(partition));
        }

        @Override
        public ReadOnlyWindowStore<String, Long> windows(int partition) {
            return streams.store(StoreQueryParameters.fromNameAndType(WINDOWS, QueryableStoreTypes.<String, Long>windowStore())
                    .withPartition(partition));
        }

        @Override
        public ReadOnlySessionStore<String, Long> sessions(int partition) {
            return streams.store(StoreQueryParameters.fromNameAndType(SESSIONS, QueryableStoreTypes.<String, Long>sessionStore())
                    .withPartition(partition));
        }

        @Override
        public boolean ready() {
            if (streams.state() != KafkaStreams.State.RUNNING) {
                return false;
            }
            try {
                streams.store(StoreQueryParameters.fromNameAndType(COUNTS, QueryableStoreTypes.keyValueStore()));
                streams.store(StoreQueryParameters.fromNameAndType(WINDOWS, QueryableStoreTypes.windowStore()));
                streams.store(StoreQueryParameters.fromNameAndType(SESSIONS, QueryableStoreTypes.sessionStore()));
                return true;
            } catch (InvalidStateStoreException e) {
                return false;
            }
        }
    }

    /**
     * The body of GET /state: the application's state, its stores and their changelogs, and for
     * every input partition the end offset, the committed offset and the lag. {@code caught_up}
     * is true when the application runs and has processed and committed every input record:
     * under exactly-once the offsets are committed in the same transaction as the changelog
     * records, so then the changelogs hold the stores' final state. {@code dropped_records} is
     * the sum of the tasks' dropped-records-total metric: late events the windowed stores refused
     * (their window or session closed).
     */
    static String state(KafkaStreams streams, Admin admin, String applicationId, String topic, int partitions,
            boolean caching, Stores stores) {
        Json j = new Json().object();
        KafkaStreams.State st = streams.state();
        j.name("state").value(st.toString()).name("application_id").value(applicationId)
                .name("topic").value(topic).name("partitions").value(partitions).name("caching").value(caching);
        j.name("local_partitions").array();
        if (st == KafkaStreams.State.RUNNING) {
            for (int p : stores.partitions()) {
                j.value(p);
            }
        }
        j.endArray();
        j.name("stores").array()
                .object().name("name").value(COUNTS).name("kind").value("key-value")
                .name("changelog").value(changelog(applicationId, COUNTS)).end()
                .object().name("name").value(WINDOWS).name("kind").value("window")
                .name("changelog").value(changelog(applicationId, WINDOWS))
                .name("size_ms").value(WINDOW_SIZE.toMillis()).name("grace_ms").value(WINDOW_GRACE.toMillis())
                .name("retention_ms").value(WINDOW_RETENTION.toMillis()).end()
                .object().name("name").value(SESSIONS).name("kind").value("session")
                .name("changelog").value(changelog(applicationId, SESSIONS))
                .name("gap_ms").value(SESSION_GAP.toMillis()).name("grace_ms").value(SESSION_GRACE.toMillis())
                .name("retention_ms").value(SESSION_RETENTION.toMillis()).end()
                .endArray();
        long lag = 0;
        boolean committedAll = true;
        try {
            j.name("input").array();
            for (Kafka.Progress p : Kafka.progress(admin, applicationId, topic, partitions)) {
                j.object().name("partition").value(p.partition()).name("end").value(p.end())
                        .name("committed").value(p.committed()).name("lag").value(p.lag()).end();
                lag += p.lag();
                committedAll &= p.committed() != null || p.end() == 0;
            }
            j.endArray();
            j.name("lag").value(lag);
            j.name("caught_up").value(st == KafkaStreams.State.RUNNING && lag == 0 && committedAll);
        } catch (Exception e) {
            j.endArray().name("lag").value((Long) null).name("caught_up").value(false)
                    .name("error").value(e.toString());
        }
        j.name("dropped_records").value(droppedRecords(streams.metrics()));
        return j.end().toString();
    }

    static long droppedRecords(Map<MetricName, ? extends Metric> metrics) {
        double sum = 0;
        for (Map.Entry<MetricName, ? extends Metric> e : metrics.entrySet()) {
            if (e.getKey().name().equals("dropped-records-total") && e.getValue().metricValue() instanceof Double d) {
                sum += d;
            }
        }
        return (long) sum;
    }

    static void run(String[] args) throws Exception {
        Flags f = Flags.parse(args, Set.of("bootstrap", "application-id", "state-dir", "listen", "topic",
                "partitions", "commit-ms"), Set.of("no-caching"));
        String bootstrap = f.required("bootstrap");
        String applicationId = f.required("application-id");
        String stateDir = f.required("state-dir");
        String listen = f.string("listen", "127.0.0.1:8080");
        String topic = f.string("topic", "events");
        int wantPartitions = (int) f.number("partitions", 6, 1);
        long commitMs = f.number("commit-ms", 100, 1);
        boolean caching = !f.bool("no-caching");
        int colon = listen.lastIndexOf(':');
        if (colon <= 0) {
            throw new Flags.UsageException("flag --listen: " + listen + " is not HOST:PORT");
        }
        String host = listen.substring(0, colon);
        int port = Integer.parseInt(listen.substring(colon + 1));
        Files.createDirectories(Path.of(stateDir));

        // HTTP first, so that "up" means the JVM runs; every request answers 503 until Kafka
        // Streams is built. TCP_NODELAY: see bench/streams/README.md.
        System.setProperty("sun.net.httpserver.nodelay", "true");
        HttpServer server = HttpServer.create(new InetSocketAddress(host, port), 128);
        ExecutorService pool = Executors.newFixedThreadPool(8);
        server.setExecutor(pool);
        AtomicReference<Api> api = new AtomicReference<>();
        server.createContext("/", ex -> {
            Api a = api.get();
            if (a != null) {
                a.handle(ex);
                return;
            }
            try (ex) {
                ex.sendResponseHeaders(503, -1);
            }
        });
        server.start();

        Admin admin = Admin.create(Kafka.adminProps(bootstrap));
        int partitions = Kafka.ensureTopic(admin, topic, wantPartitions);
        Properties props = properties(bootstrap, applicationId, stateDir, listen, commitMs);
        KafkaStreams streams = new KafkaStreams(topology(topic, caching), props);
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("streams-app: stream thread failed: " + e);
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        Stores stores = new LocalStores(streams, topic, new HostInfo(host, port));
        api.set(new Api(stores, WINDOW_SIZE.toMillis(),
                () -> state(streams, admin, applicationId, topic, partitions, caching, stores)));

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.stop(0);
            pool.shutdownNow();
            // Leave the group so that a restarted instance gets the partitions at once.
            streams.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
                    .withTimeout(Duration.ofSeconds(30)));
            admin.close(Duration.ofSeconds(5));
            stopped.countDown();
        }, "shutdown"));
        streams.setStateListener((now, before) -> {
            System.err.println("streams-app: state " + before + " -> " + now);
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                stopped.countDown();
            }
        });

        for (String s : List.of(COUNTS, WINDOWS, SESSIONS)) {
            System.out.println("changelog " + s + " " + changelog(applicationId, s));
        }
        System.out.println("windowed-counts: tumbling windows of " + WINDOW_SIZE + ", grace " + WINDOW_GRACE
                + ", retention " + WINDOW_RETENTION);
        System.out.println("sessions: inactivity gap " + SESSION_GAP + ", grace " + SESSION_GRACE
                + ", retention " + SESSION_RETENTION);
        System.out.println("record cache " + (caching ? "on" : "off") + ", commit interval " + commitMs + " ms");
        System.out.println("listening on http://" + listen + " (input topic " + topic + ", " + partitions + " partitions)");
        System.out.flush();
        streams.start();
        stopped.await();
        if (streams.state() == KafkaStreams.State.ERROR) {
            System.exit(1);
        }
    }
}
