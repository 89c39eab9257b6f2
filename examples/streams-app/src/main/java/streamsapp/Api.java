package streamsapp;

import java.io.IOException;
import java.io.OutputStream;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.errors.InvalidStateStoreException;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.ReadOnlySessionStore;
import org.apache.kafka.streams.state.ReadOnlyWindowStore;
import org.apache.kafka.streams.state.WindowStoreIterator;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;

/**
 * The application's own interactive-query answers, as JSON, for a test to compare with
 * iqengine's. Times are milliseconds since the epoch.
 *
 * <pre>
 * GET /kv/{key}                                  {"key","value"}; 404 when absent      (get)
 * GET /windows/{key}?from=&amp;to=[&amp;order=desc]          [{"start","end","value"}]          (fetch, backwardFetch)
 * GET /windows?from=&amp;to=[&amp;order=desc]                [{"key","start","end","value"}]    (fetchAll, backwardFetchAll)
 * GET /sessions/{key}?earliest_end=&amp;latest_start=[&amp;order=desc]  [{"start","end","value"}]  (findSessions)
 * GET /sessions?earliest_end=&amp;latest_start=[&amp;order=desc]        [{"key","start","end","value"}]
 * GET /readyz                                    200 when RUNNING and the stores can be queried, else 503
 * GET /healthz                                   200 while the process runs
 * GET /state                                     progress: see App.state
 * </pre>
 *
 * A window's {@code from}/{@code to} bound its start (both inclusive; defaults 0 and
 * Long.MAX_VALUE); a session is found when it ends at or after {@code earliest_end} and starts
 * at or before {@code latest_start} (same defaults). The answers over all keys read the held
 * partitions one after another in ascending order (descending with {@code order=desc}), each in
 * its store's own iteration order (by key bytes, then time, within each of the store's time
 * segments). Kafka Streams' composite stores are not used for them: their {@code findSessions}
 * over a key range answers from the first partition that has a match only. A key lookup reads
 * the key's partition, as {@code queryMetadataForKey} names it. Errors are problem+json: 400
 * for a bad parameter, 404 for an unknown key or path, 421 for a key of a partition that
 * another instance holds, 503 (Retry-After: 1) while a store cannot be queried.
 */
final class Api implements HttpHandler {
    private final Stores stores;
    private final long windowSizeMs;
    private final Supplier<String> state;

    /**
     * @param windowSizeMs the size of the tumbling windows (a window's end is its start plus it)
     * @param state the body of GET /state
     */
    Api(Stores stores, long windowSizeMs, Supplier<String> state) {
        this.stores = stores;
        this.windowSizeMs = windowSizeMs;
        this.state = state;
    }

    @Override
    public void handle(HttpExchange ex) throws IOException {
        try {
            if (!ex.getRequestMethod().equals("GET")) {
                send(ex, 405, problem("method not allowed", 405));
                return;
            }
            String path = ex.getRequestURI().getRawPath();
            Map<String, String> q = query(ex.getRequestURI().getRawQuery());
            if (path.equals("/healthz")) {
                send(ex, 200, "{\"status\":\"ok\"}");
            } else if (path.equals("/readyz")) {
                boolean ready = stores.ready();
                send(ex, ready ? 200 : 503, ready ? "{\"status\":\"ready\"}" : problem("not ready", 503));
            } else if (path.equals("/state")) {
                send(ex, 200, state.get());
            } else if (path.startsWith("/kv/")) {
                kv(ex, key(path, "/kv/"));
            } else if (path.equals("/windows")) {
                windowsAll(ex, q);
            } else if (path.startsWith("/windows/")) {
                windows(ex, key(path, "/windows/"), q);
            } else if (path.equals("/sessions")) {
                sessionsAll(ex, q);
            } else if (path.startsWith("/sessions/")) {
                sessions(ex, key(path, "/sessions/"), q);
            } else {
                send(ex, 404, problem("no such endpoint", 404));
            }
        } catch (InvalidStateStoreException e) {
            ex.getResponseHeaders().set("Retry-After", "1");
            send(ex, 503, problem("store not available: " + e.getMessage(), 503));
        } catch (Stores.NotHereException e) {
            send(ex, 421, problem(e.getMessage(), 421));
        } catch (BadRequest e) {
            send(ex, 400, problem(e.getMessage(), 400));
        } catch (RuntimeException e) {
            send(ex, 500, problem(e.toString(), 500));
        } finally {
            ex.close();
        }
    }

    private void kv(HttpExchange ex, String key) throws IOException {
        Long v = stores.counts(stores.partitionOf(key)).get(key);
        if (v == null) {
            send(ex, 404, problem("key not found", 404));
            return;
        }
        send(ex, 200, new Json().object().name("key").value(key).name("value").value(v).end().toString());
    }

    private void windows(HttpExchange ex, String key, Map<String, String> q) throws IOException {
        Instant from = Instant.ofEpochMilli(millis(q, "from", 0));
        Instant to = Instant.ofEpochMilli(millis(q, "to", Long.MAX_VALUE));
        ReadOnlyWindowStore<String, Long> store = stores.windows(stores.partitionOf(key));
        Json j = new Json().array();
        try (WindowStoreIterator<Long> it = descending(q) ? store.backwardFetch(key, from, to) : store.fetch(key, from, to)) {
            while (it.hasNext()) {
                KeyValue<Long, Long> kv = it.next();
                j.object().name("start").value(kv.key).name("end").value(kv.key + windowSizeMs)
                        .name("value").value(kv.value).end();
            }
        }
        send(ex, 200, j.endArray().toString());
    }

    private void windowsAll(HttpExchange ex, Map<String, String> q) throws IOException {
        Instant from = Instant.ofEpochMilli(millis(q, "from", 0));
        Instant to = Instant.ofEpochMilli(millis(q, "to", Long.MAX_VALUE));
        boolean desc = descending(q);
        Json j = new Json().array();
        for (int p : ordered(stores.partitions(), desc)) {
            ReadOnlyWindowStore<String, Long> store = stores.windows(p);
            try (KeyValueIterator<Windowed<String>, Long> it = desc ? store.backwardFetchAll(from, to) : store.fetchAll(from, to)) {
                writeWindowed(j, it);
            }
        }
        send(ex, 200, j.endArray().toString());
    }

    private void sessions(HttpExchange ex, String key, Map<String, String> q) throws IOException {
        long earliestEnd = millis(q, "earliest_end", 0);
        long latestStart = millis(q, "latest_start", Long.MAX_VALUE);
        ReadOnlySessionStore<String, Long> store = stores.sessions(stores.partitionOf(key));
        Json j = new Json().array();
        try (KeyValueIterator<Windowed<String>, Long> it = descending(q)
                ? store.backwardFindSessions(key, earliestEnd, latestStart)
                : store.findSessions(key, earliestEnd, latestStart)) {
            while (it.hasNext()) {
                KeyValue<Windowed<String>, Long> kv = it.next();
                j.object().name("start").value(kv.key.window().start()).name("end").value(kv.key.window().end())
                        .name("value").value(kv.value).end();
            }
        }
        send(ex, 200, j.endArray().toString());
    }

    private void sessionsAll(HttpExchange ex, Map<String, String> q) throws IOException {
        long earliestEnd = millis(q, "earliest_end", 0);
        long latestStart = millis(q, "latest_start", Long.MAX_VALUE);
        boolean desc = descending(q);
        Json j = new Json().array();
        for (int p : ordered(stores.partitions(), desc)) {
            ReadOnlySessionStore<String, Long> store = stores.sessions(p);
            // A partition's own store takes null bounds: all keys.
            try (KeyValueIterator<Windowed<String>, Long> it = desc
                    ? store.backwardFindSessions(null, null, earliestEnd, latestStart)
                    : store.findSessions(null, null, earliestEnd, latestStart)) {
                writeWindowed(j, it);
            }
        }
        send(ex, 200, j.endArray().toString());
    }

    private static void writeWindowed(Json j, KeyValueIterator<Windowed<String>, Long> it) {
        while (it.hasNext()) {
            KeyValue<Windowed<String>, Long> kv = it.next();
            j.object().name("key").value(kv.key.key())
                    .name("start").value(kv.key.window().start()).name("end").value(kv.key.window().end())
                    .name("value").value(kv.value).end();
        }
    }

    // ---------------------------------------------------------------- helpers

    private static final class BadRequest extends RuntimeException {
        private static final long serialVersionUID = 1L;

        BadRequest(String msg) {
            super(msg);
        }
    }

    private static List<Integer> ordered(List<Integer> partitions, boolean desc) {
        List<Integer> out = new ArrayList<>(partitions);
        out.sort(desc ? Comparator.reverseOrder() : Comparator.naturalOrder());
        return out;
    }

    private static boolean descending(Map<String, String> q) {
        String o = q.getOrDefault("order", "asc");
        return switch (o) {
            case "asc" -> false;
            case "desc" -> true;
            default -> throw new BadRequest("order: " + o + " is neither asc nor desc");
        };
    }

    private static long millis(Map<String, String> q, String name, long def) {
        String v = q.get(name);
        if (v == null) {
            return def;
        }
        try {
            long n = Long.parseLong(v);
            if (n >= 0) {
                return n;
            }
        } catch (NumberFormatException e) {
            // fall through
        }
        throw new BadRequest(name + ": " + v + " is not a time in milliseconds since the epoch (0 or more)");
    }

    private static String key(String path, String prefix) {
        // Path segments: '+' is a plus sign, not a space.
        String key = URLDecoder.decode(path.substring(prefix.length()).replace("+", "%2B"), StandardCharsets.UTF_8);
        if (key.isEmpty()) {
            throw new BadRequest("empty key");
        }
        return key;
    }

    private static Map<String, String> query(String raw) {
        Map<String, String> m = new HashMap<>();
        if (raw == null || raw.isEmpty()) {
            return m;
        }
        for (String part : raw.split("&")) {
            int eq = part.indexOf('=');
            String k = URLDecoder.decode(eq < 0 ? part : part.substring(0, eq), StandardCharsets.UTF_8);
            String v = eq < 0 ? "" : URLDecoder.decode(part.substring(eq + 1), StandardCharsets.UTF_8);
            if (!v.isEmpty()) {
                m.put(k, v);
            }
        }
        return m;
    }

    private static String problem(String detail, int status) {
        return new Json().object().name("status").value(status).name("detail").value(detail).end().toString();
    }

    private static void send(HttpExchange ex, int status, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", status < 300 ? "application/json" : "application/problem+json");
        ex.sendResponseHeaders(status, b.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(b);
        }
    }
}
