package iqbench;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.state.KeyValueStore;

import com.sun.net.httpserver.HttpServer;

/**
 * The Kafka Streams peer of iqengine's benchmark: a Kafka Streams application that materialises
 * one topic into a persistent key-value store (RocksDB, Kafka Streams' default) and serves
 * interactive queries over HTTP, the way Kafka Streams' documentation describes: the owner of a
 * key comes from {@code KafkaStreams.queryMetadataForKey} ({@code KeyQueryMetadata.activeHost()}),
 * hosts advertise themselves with {@code application.server}, and a local store is read through
 * {@code StoreQueryParameters}. See {@link Api} for the HTTP endpoints.
 *
 * <pre>
 * java -jar streams-peer.jar --bootstrap 127.0.0.1:9092 --topic bench --store bench \
 *     --application-id bench-streams --listen 127.0.0.1:8080 --state-dir /tmp/streams-1
 * </pre>
 */
public final class StreamsPeer {
    private StreamsPeer() {}

    static final class Options {
        String bootstrap;
        String topic;
        String store;
        String applicationId = "iqbench-streams";
        String listen = "127.0.0.1:8080";
        String stateDir;
        int streamThreads = 1;
        int httpThreads = 64;
        int expectInstances = 1;
        long acceptableRecoveryLag = Long.MAX_VALUE / 2;
    }

    static final String USAGE = String.join("\n",
            "usage: streams-peer --bootstrap HOST:PORT --topic T --store S --state-dir DIR [flags]",
            "",
            "  --bootstrap HOST:PORT        Kafka bootstrap servers (required)",
            "  --topic T                    the topic to materialise (required)",
            "  --store S                    the store's name in URLs and in Kafka Streams (required)",
            "  --state-dir DIR              Kafka Streams' state.dir (required)",
            "  --application-id ID          application.id, the consumer group (default iqbench-streams)",
            "  --listen HOST:PORT           HTTP address, also application.server (default 127.0.0.1:8080)",
            "  --stream-threads N           num.stream.threads (default 1)",
            "  --http-threads N             HTTP handler threads (default 64)",
            "  --expect-instances N         /readyz waits until N instances own partitions (default 1)",
            "  --acceptable-recovery-lag N  acceptable.recovery.lag (default: very large, see README)");

    static Options parse(String[] args) {
        Options o = new Options();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("-h") || a.equals("--help") || a.equals("-help")) {
                System.out.println(USAGE);
                System.exit(0);
            }
            if (i + 1 >= args.length) {
                fail("flag " + a + " needs a value");
            }
            String v = args[++i];
            switch (a) {
                case "--bootstrap" -> o.bootstrap = v;
                case "--topic" -> o.topic = v;
                case "--store" -> o.store = v;
                case "--application-id" -> o.applicationId = v;
                case "--listen" -> o.listen = v;
                case "--state-dir" -> o.stateDir = v;
                case "--stream-threads" -> o.streamThreads = positive(a, v);
                case "--http-threads" -> o.httpThreads = positive(a, v);
                case "--expect-instances" -> o.expectInstances = positive(a, v);
                case "--acceptable-recovery-lag" -> o.acceptableRecoveryLag = positive(a, v);
                default -> fail("unknown flag " + a);
            }
        }
        if (o.bootstrap == null || o.topic == null || o.store == null || o.stateDir == null) {
            fail("--bootstrap, --topic, --store and --state-dir are required");
        }
        if (o.listen.lastIndexOf(':') <= 0) {
            fail("--listen " + o.listen + " is not HOST:PORT");
        }
        return o;
    }

    static int positive(String flag, String v) {
        try {
            int n = Integer.parseInt(v);
            if (n >= 1) {
                return n;
            }
        } catch (NumberFormatException e) {
            // fall through
        }
        fail("flag " + flag + ": " + v + " is not a positive whole number");
        return 0;
    }

    static void fail(String msg) {
        System.err.println("streams-peer: " + msg + " (see --help)");
        System.exit(2);
    }

    /** The topology: one source KTable materialised in a persistent (RocksDB) store. */
    static Topology topology(Options o, Properties props) {
        StreamsBuilder b = new StreamsBuilder();
        b.table(o.topic, Consumed.with(Serdes.String(), Serdes.ByteArray()),
                Materialized.<String, byte[], KeyValueStore<Bytes, byte[]>>as(o.store));
        // With topology.optimization=all the topic itself is the store's changelog (no extra
        // changelog topic is written), as for any source KTable in a tuned application.
        return b.build(props);
    }

    static Properties properties(Options o) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, o.applicationId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, o.bootstrap);
        p.put(StreamsConfig.APPLICATION_SERVER_CONFIG, o.listen);
        p.put(StreamsConfig.STATE_DIR_CONFIG, o.stateDir);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, o.streamThreads);
        p.put(StreamsConfig.TOPOLOGY_OPTIMIZATION_CONFIG, StreamsConfig.OPTIMIZE);
        // Every instance counts as caught up, so a second instance gets its share of the
        // partitions at once instead of warming up until a probing rebalance (10 minutes by
        // default). The benchmark wants the steady state of a two-instance application.
        p.put(StreamsConfig.ACCEPTABLE_RECOVERY_LAG_CONFIG, o.acceptableRecoveryLag);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        return p;
    }

    /** The topic's partition count, from the brokers: scans answer 503 until every one has an owner. */
    static int partitionCount(Options o) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, o.bootstrap);
        try (Admin admin = Admin.create(p)) {
            TopicDescription d = admin.describeTopics(List.of(o.topic)).allTopicNames()
                    .get(60, TimeUnit.SECONDS).get(o.topic);
            return d.partitions().size();
        } catch (Exception e) {
            System.err.println("streams-peer: cannot describe topic " + o.topic + ": " + e);
            System.exit(1);
            return 0;
        }
    }

    public static void main(String[] args) throws IOException, InterruptedException {
        Options o = parse(args);
        Files.createDirectories(Path.of(o.stateDir));

        // The JDK server writes a response's headers and body separately; without TCP_NODELAY
        // Nagle's algorithm holds the body back until the client's delayed ACK (about 40 ms
        // per keep-alive request on Linux). Every real deployment turns it on.
        System.setProperty("sun.net.httpserver.nodelay", "true");
        // HTTP first, so that "up" means the JVM runs; until Kafka Streams is built every
        // request answers 503.
        int colon = o.listen.lastIndexOf(':');
        String host = o.listen.substring(0, colon);
        int port = Integer.parseInt(o.listen.substring(colon + 1));
        HttpServer server = HttpServer.create(new InetSocketAddress(host, port), 1024);
        ExecutorService pool = Executors.newFixedThreadPool(o.httpThreads);
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

        Properties props = properties(o);
        KafkaStreams streams = new KafkaStreams(topology(o, props), props);
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("streams-peer: stream thread failed: " + e);
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
                    .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        api.set(new Api(streams, o.store, o.topic, partitionCount(o), host, port, o.expectInstances));

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.stop(0);
            pool.shutdownNow();
            // A planned stop leaves the group, so that the partitions move at once (Kafka
            // Streams' consumers do not leave on a plain close(): a restarted instance would
            // wait for the session timeout). close() also commits and flushes the stores.
            streams.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
                    .withTimeout(Duration.ofSeconds(30)));
            stopped.countDown();
        }, "shutdown"));
        streams.setStateListener((now, before) -> {
            System.err.println("streams-peer: state " + before + " -> " + now);
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                stopped.countDown();
            }
        });

        streams.start();
        System.err.println("streams-peer: listening on http://" + o.listen + ", application.id "
                + o.applicationId + ", topic " + o.topic + ", store " + o.store);
        stopped.await();
        if (streams.state() == KafkaStreams.State.ERROR) {
            System.exit(1);
        }
    }
}
