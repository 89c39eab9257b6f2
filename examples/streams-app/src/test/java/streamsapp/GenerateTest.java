package streamsapp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

/** The event generator: deterministic, within its span, out of order, with late events in every band. */
class GenerateTest {
    static final long START = 1_893_456_000_000L;
    static final Generate.Spec SPEC = new Generate.Spec(2000, 30000, 6, 1, 0.05, START);

    @Test
    void theSameFlagsGiveTheSameStream() {
        assertEquals(Generate.events(SPEC), Generate.events(SPEC));
        assertNotEquals(Generate.events(SPEC), Generate.events(new Generate.Spec(2000, 30000, 6, 2, 0.05, START)));
    }

    @Test
    void eventsAreUserKeysWithAmountsWithinTheSpan() {
        List<Generate.Event> events = Generate.events(SPEC);
        assertEquals(30000, events.size());
        for (Generate.Event e : events) {
            assertTrue(e.key().matches("user-[0-9]{4}"), e.key());
            assertTrue(Integer.parseInt(e.key().substring(5)) < 2000, e.key());
            assertTrue(e.time() >= START && e.time() < START + 6 * Generate.HOUR_MS, e.toString());
            assertTrue(e.amount() >= 1 && e.amount() <= 100, e.toString());
        }
        assertTrue(Generate.events(new Generate.Spec(20000, 10, 1, 1, 0, START)).get(0).key().matches("user-[0-9]{5}"),
                "keys are wide enough for --keys");
    }

    @Test
    void mostKeysHaveBurstsThatFormSessions() {
        // Events of one key less than the 10 min inactivity gap apart join one session.
        Map<String, Long> last = new HashMap<>();
        int joined = 0;
        List<Generate.Event> sorted = new java.util.ArrayList<>(Generate.events(SPEC));
        sorted.sort(java.util.Comparator.comparingLong(Generate.Event::time));
        for (Generate.Event e : sorted) {
            Long prev = last.put(e.key(), e.time());
            if (prev != null && e.time() - prev < 10 * Generate.MINUTE_MS) {
                joined++;
            }
        }
        assertTrue(joined > 30000 / 2, "events within a session gap of their key's previous one: " + joined);
    }

    @Test
    void lateEventsFallInEveryBand() {
        record Case(String name, double lateFraction, boolean bands) {}
        for (Case c : List.of(
                new Case("5% late: every band", 0.05, true),
                new Case("none late: out of order by the jitter only", 0, false))) {
            Generate.Lateness l = Generate.lateness(Generate.events(new Generate.Spec(2000, 30000, 6, 1, c.lateFraction(), START)), 6);
            assertTrue(l.behind() > 0, c.name() + ": some events are out of order: " + l);
            if (c.bands()) {
                assertTrue(l.from5mTo10m() > 100 && l.atLeast10m() > 100, c.name() + ": " + l);
                assertTrue(l.maxMs() > 15 * Generate.MINUTE_MS, c.name() + ": " + l);
            } else {
                assertEquals(0, l.from5mTo10m() + l.atLeast10m(), c.name() + ": " + l);
                assertTrue(l.maxMs() <= Generate.JITTER_MS, c.name() + ": " + l);
            }
        }
    }

    @Test
    void partitionsAreTheProducersDefault() {
        // Values computed by Kafka's default partitioner (murmur2) for these keys, as on the broker.
        assertEquals(0, Generate.partition("user-0268", 6));
        assertEquals(0, Generate.partition("user-1597", 6));
    }
}
