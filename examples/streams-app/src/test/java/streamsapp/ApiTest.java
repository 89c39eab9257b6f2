package streamsapp;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;

import org.apache.kafka.common.serialization.LongSerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.apache.kafka.streams.state.ReadOnlySessionStore;
import org.apache.kafka.streams.state.ReadOnlyWindowStore;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.sun.net.httpserver.HttpServer;

/** The HTTP API over the stores of a TopologyTestDriver (one partition, no record cache). */
class ApiTest {
    static final long T0 = Instant.parse("2030-01-01T00:00:00Z").toEpochMilli();
    static final long MIN = 60_000;
    static final long HOUR = 60 * MIN;

    @TempDir
    static Path stateDir;
    static TopologyTestDriver driver;
    static HttpServer server;
    static String base;
    static final HttpClient CLIENT = HttpClient.newHttpClient();

    /** The driver's stores: one partition, 0, that holds every key. */
    record DriverStores(TopologyTestDriver d) implements Stores {
        @Override
        public List<Integer> partitions() {
            return List.of(0);
        }

        @Override
        public int partitionOf(String key) {
            return 0;
        }

        @Override
        public ReadOnlyKeyValueStore<String, Long> counts(int partition) {
            return d.getKeyValueStore(App.COUNTS);
        }

        @Override
        public ReadOnlyWindowStore<String, Long> windows(int partition) {
            return d.getWindowStore(App.WINDOWS);
        }

        @Override
        public ReadOnlySessionStore<String, Long> sessions(int partition) {
            return d.getSessionStore(App.SESSIONS);
        }

        @Override
        public boolean ready() {
            return true;
        }
    }

    @BeforeAll
    static void start() throws Exception {
        driver = TopologyTest.driver(stateDir, false);
        TestInputTopic<String, Long> in = driver.createInputTopic("events", new StringSerializer(), new LongSerializer());
        in.pipeInput("a", 10L, T0);
        in.pipeInput("b", 7L, T0 + 2 * MIN);
        in.pipeInput("a", 20L, T0 + 5 * MIN);
        in.pipeInput("a", 1L, T0 + 70 * MIN);
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/", new Api(new DriverStores(driver), App.WINDOW_SIZE.toMillis(), () -> "{\"state\":\"test\"}"));
        server.start();
        base = "http://127.0.0.1:" + server.getAddress().getPort();
    }

    @AfterAll
    static void stop() {
        server.stop(0);
        driver.close();
    }

    static String window(long start, long value) {
        return "{\"start\":" + start + ",\"end\":" + (start + HOUR) + ",\"value\":" + value + "}";
    }

    static String window(String key, long start, long value) {
        return "{\"key\":\"" + key + "\"," + window(start, value).substring(1);
    }

    static String session(long start, long end, long value) {
        return "{\"start\":" + start + ",\"end\":" + end + ",\"value\":" + value + "}";
    }

    static String session(String key, long start, long end, long value) {
        return "{\"key\":\"" + key + "\"," + session(start, end, value).substring(1);
    }

    static String list(String... items) {
        return "[" + String.join(",", items) + "]";
    }

    record Case(String name, String path, int status, String body) {}

    @Test
    void endpoints() throws Exception {
        // The events: a@T0 (10), b@T0+2m (7), a@T0+5m (20), a@T0+70m (1). Windows are 1 h from
        // T0; sessions close after 10 min of inactivity.
        String a0 = window(T0, 2), a1 = window(T0 + HOUR, 1);
        String aS0 = session(T0, T0 + 5 * MIN, 30), aS1 = session(T0 + 70 * MIN, T0 + 70 * MIN, 1);
        List<Case> cases = List.of(
                new Case("a key's count", "/kv/a", 200, "{\"key\":\"a\",\"value\":3}"),
                new Case("an unknown key", "/kv/nobody", 404, "{\"status\":404,\"detail\":\"key not found\"}"),
                new Case("an empty key", "/kv/", 400, "{\"status\":400,\"detail\":\"empty key\"}"),
                new Case("a key's windows, by start", "/windows/a", 200, list(a0, a1)),
                new Case("a key's windows, newest first", "/windows/a?order=desc", 200, list(a1, a0)),
                new Case("from and to bound the window start", "/windows/a?from=" + (T0 + 1) + "&to=" + (T0 + HOUR), 200, list(a1)),
                new Case("to is inclusive", "/windows/a?from=0&to=" + T0, 200, list(a0)),
                new Case("a key without windows", "/windows/nobody", 200, "[]"),
                new Case("all windows: by key, then start (one time segment)", "/windows", 200,
                        list(window("a", T0, 2), window("a", T0 + HOUR, 1), window("b", T0, 1))),
                new Case("all windows backwards", "/windows?order=desc", 200,
                        list(window("b", T0, 1), window("a", T0 + HOUR, 1), window("a", T0, 2))),
                new Case("all windows in a range", "/windows?from=" + (T0 + HOUR), 200, list(window("a", T0 + HOUR, 1))),
                new Case("a key's sessions: merged within the gap, summed", "/sessions/a", 200, list(aS0, aS1)),
                new Case("earliest_end bounds the session end", "/sessions/a?earliest_end=" + (T0 + 5 * MIN + 1), 200, list(aS1)),
                new Case("latest_start bounds the session start", "/sessions/a?latest_start=" + (T0 + 70 * MIN - 1), 200, list(aS0)),
                new Case("a key's sessions backwards", "/sessions/a?order=desc", 200, list(aS1, aS0)),
                new Case("all sessions: by end's time segment, then key", "/sessions", 200,
                        list(session("a", T0, T0 + 5 * MIN, 30), session("b", T0 + 2 * MIN, T0 + 2 * MIN, 7),
                                session("a", T0 + 70 * MIN, T0 + 70 * MIN, 1))),
                new Case("all sessions in a range", "/sessions?earliest_end=" + (T0 + 3 * MIN) + "&latest_start=" + (T0 + 69 * MIN), 200,
                        list(session("a", T0, T0 + 5 * MIN, 30))),
                new Case("a time that is not a number", "/windows/a?from=yesterday", 400,
                        "{\"status\":400,\"detail\":\"from: yesterday is not a time in milliseconds since the epoch (0 or more)\"}"),
                new Case("a negative time", "/sessions?earliest_end=-1", 400,
                        "{\"status\":400,\"detail\":\"earliest_end: -1 is not a time in milliseconds since the epoch (0 or more)\"}"),
                new Case("an unknown order", "/windows?order=sideways", 400,
                        "{\"status\":400,\"detail\":\"order: sideways is neither asc nor desc\"}"),
                new Case("an unknown path", "/v1/stores", 404, "{\"status\":404,\"detail\":\"no such endpoint\"}"),
                new Case("ready", "/readyz", 200, "{\"status\":\"ready\"}"),
                new Case("the state", "/state", 200, "{\"state\":\"test\"}"));
        for (Case c : cases) {
            HttpResponse<String> r = CLIENT.send(HttpRequest.newBuilder(URI.create(base + c.path())).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(c.status(), r.statusCode(), c.name() + ": status");
            assertEquals(c.body(), r.body(), c.name() + ": body");
            assertEquals(c.status() < 300 ? "application/json" : "application/problem+json",
                    r.headers().firstValue("Content-Type").orElse(""), c.name() + ": content type");
        }
    }
}
