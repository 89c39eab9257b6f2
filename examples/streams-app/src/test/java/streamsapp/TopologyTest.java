package streamsapp;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.LongSerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.SessionStore;
import org.apache.kafka.streams.state.WindowStore;
import org.apache.kafka.streams.state.WindowStoreIterator;
import org.apache.kafka.streams.test.TestRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The topology on Kafka Streams' TopologyTestDriver (one partition, a commit after every
 * record): what each store holds, which late events it refuses, and the layout of each
 * changelog's records, decoded with {@link Layout}.
 */
class TopologyTest {
    static final String APP = "app";
    static final long T0 = Instant.parse("2030-01-01T00:00:00Z").toEpochMilli();
    static final long MIN = 60_000;

    @TempDir
    Path stateDir;
    TopologyTestDriver driver;
    TestInputTopic<String, Long> events;

    @BeforeEach
    void start() {
        driver = driver(stateDir.resolve("default"), true);
        events = driver.createInputTopic("events", new StringSerializer(), new LongSerializer());
    }

    @AfterEach
    void stop() {
        driver.close();
    }

    static TopologyTestDriver driver(Path stateDir, boolean caching) {
        Properties p = App.properties("unused:9092", APP, stateDir.toString(), "127.0.0.1:8080", 100);
        return new TopologyTestDriver(App.topology("events", caching), p);
    }

    void send(String key, long time, long amount) {
        events.pipeInput(key, amount, time);
    }

    List<TestRecord<byte[], byte[]>> changelog(String store) {
        TestOutputTopic<byte[], byte[]> t = driver.createOutputTopic(App.changelog(APP, store),
                new ByteArrayDeserializer(), new ByteArrayDeserializer());
        return t.readRecordsToList();
    }

    static byte[] be(long v) {
        return java.nio.ByteBuffer.allocate(8).putLong(v).array();
    }

    @Test
    void countsCountsEventsPerKeyAndLogsThePlainLong() {
        send("user-0001", T0, 5);
        send("user-0001", T0 + MIN, 7);
        send("user-0002", T0 + 2 * MIN, 1);

        assertEquals(2L, driver.<String, Long>getKeyValueStore(App.COUNTS).get("user-0001"));
        assertEquals(1L, driver.<String, Long>getKeyValueStore(App.COUNTS).get("user-0002"));
        List<TestRecord<byte[], byte[]>> log = changelog(App.COUNTS);
        assertEquals(3, log.size());
        // The key is the String key's bytes; the value the plain 8-byte Long, not the
        // timestamped store's [timestamp][value]: the timestamp is the record's.
        assertArrayEquals("user-0001".getBytes(StandardCharsets.UTF_8), log.get(1).key());
        assertArrayEquals(be(2), log.get(1).value());
        assertEquals(T0 + MIN, log.get(1).timestamp());
    }

    @Test
    void windowsTakeLateEventsWithinGraceAndDropThemAfter() {
        send("a", T0 + MIN, 1);             // window [T0, T0+1h)
        send("a", T0 + 50 * MIN, 1);        // same window
        send("b", T0 + 65 * MIN, 1);        // stream time T0+65m: [T0, T0+1h) open until T0+70m
        send("a", T0 + 30 * MIN, 1);        // 35 min late, within the window's grace: counted
        send("b", T0 + 75 * MIN, 1);        // stream time T0+75m: [T0, T0+1h) closed
        send("a", T0 + 55 * MIN, 1);        // dropped
        send("a", T0 + 70 * MIN, 1);        // window [T0+1h, T0+2h)

        WindowStore<String, Long> w = driver.getWindowStore(App.WINDOWS);
        List<KeyValue<Long, Long>> got = new ArrayList<>();
        try (WindowStoreIterator<Long> it = w.fetch("a", Instant.ofEpochMilli(0), Instant.ofEpochMilli(Long.MAX_VALUE))) {
            it.forEachRemaining(got::add);
        }
        assertEquals(List.of(KeyValue.pair(T0, 3L), KeyValue.pair(T0 + 60 * MIN, 1L)), got);
        // dropped-records counts every store's refusals: the window store's one, and the session
        // store's two (a@T0+30m and a@T0+55m end more than gap + grace behind the stream time).
        assertEquals(3L, App.droppedRecords(driver.metrics()));

        // [key][window start, 8 bytes][sequence number 0, 4 bytes] -> count.
        List<TestRecord<byte[], byte[]>> log = changelog(App.WINDOWS);
        assertEquals(6, log.size(), "one record per counted event, none for the dropped one");
        TestRecord<byte[], byte[]> late = log.get(3);
        assertEquals(new Layout.WindowKey("a", T0, 0), Layout.window(late.key()));
        assertEquals(3L, Layout.longValue(late.value()));
        assertEquals("a".length() + 12, late.key().length);
        // The record timestamp is the window's greatest event time, not the late event's.
        assertEquals(T0 + 50 * MIN, late.timestamp());
    }

    @Test
    void windowsOlderThanTheRetentionAreGoneExceptFromTheRecordCache() {
        record Case(String name, boolean caching, List<Long> starts) {}
        List<Case> cases = List.of(
                // The newest window starts 4 h after the first; the retention is 3 h.
                new Case("RocksDB alone applies the retention", false, List.of(T0 + 4 * 60 * MIN)),
                // Kafka Streams 4.4's caching window store does not: what it still holds is
                // answered (its entries stay after the commit's flush).
                new Case("the record cache still answers for an expired window", true, List.of(T0, T0 + 4 * 60 * MIN)));
        for (Case c : cases) {
            try (TopologyTestDriver d = driver(stateDir.resolve(c.name().replace(' ', '-')), c.caching())) {
                TestInputTopic<String, Long> in = d.createInputTopic("events", new StringSerializer(), new LongSerializer());
                in.pipeInput("a", 1L, T0);
                in.pipeInput("a", 1L, T0 + 4 * 60 * MIN);
                WindowStore<String, Long> w = d.getWindowStore(App.WINDOWS);
                List<Long> starts = new ArrayList<>();
                try (KeyValueIterator<Windowed<String>, Long> it = w.fetchAll(Instant.ofEpochMilli(0), Instant.ofEpochMilli(Long.MAX_VALUE))) {
                    it.forEachRemaining(kv -> starts.add(kv.key.window().start()));
                }
                assertEquals(c.starts(), starts, c.name());
            }
        }
    }

    @Test
    void sessionsMergeWithinTheGapAndLogTheOldSessionsTombstone() {
        send("a", T0, 10);
        send("a", T0 + 5 * MIN, 20);        // within the 10 min gap: one session [T0, T0+5m]
        send("a", T0 + 30 * MIN, 1);        // a new session

        SessionStore<String, Long> s = driver.getSessionStore(App.SESSIONS);
        List<String> got = new ArrayList<>();
        try (KeyValueIterator<Windowed<String>, Long> it = s.findSessions("a", 0, Long.MAX_VALUE)) {
            it.forEachRemaining(kv -> got.add(kv.key.window().start() + ".." + kv.key.window().end() + "=" + kv.value));
        }
        assertEquals(List.of(T0 + ".." + (T0 + 5 * MIN) + "=30", (T0 + 30 * MIN) + ".." + (T0 + 30 * MIN) + "=1"), got);

        // [key][session end, 8 bytes][session start, 8 bytes] -> sum; a merge deletes the old session.
        List<TestRecord<byte[], byte[]>> log = changelog(App.SESSIONS);
        assertEquals(4, log.size());
        assertEquals(new Layout.SessionKey("a", T0, T0), Layout.session(log.get(0).key()));
        assertEquals(10L, Layout.longValue(log.get(0).value()));
        assertEquals(new Layout.SessionKey("a", T0, T0), Layout.session(log.get(1).key()));
        assertNull(log.get(1).value(), "the merged session's tombstone");
        assertEquals(new Layout.SessionKey("a", T0 + 5 * MIN, T0), Layout.session(log.get(2).key()));
        assertEquals(30L, Layout.longValue(log.get(2).value()));
        assertEquals("a".length() + 16, log.get(2).key().length);
    }

    @Test
    void sessionsDropEventsPastGapPlusGrace() {
        send("a", T0, 1);
        send("b", T0 + 17 * MIN, 1);        // stream time T0+17m > T0+1m + gap 10m + grace 5m
        send("c", T0 + MIN, 1);             // a new session ending at T0+1m: closed, dropped
        send("d", T0 + 14 * MIN, 1);        // 3 min late, ends within gap + grace: kept

        SessionStore<String, Long> s = driver.getSessionStore(App.SESSIONS);
        try (KeyValueIterator<Windowed<String>, Long> c = s.fetch("c"); KeyValueIterator<Windowed<String>, Long> d = s.fetch("d")) {
            assertFalse(c.hasNext());
            assertTrue(d.hasNext());
        }
        assertEquals(1L, App.droppedRecords(driver.metrics()));
    }
}
