package streamsapp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.HexFormat;
import java.util.List;

import org.junit.jupiter.api.Test;

/** The changelog layouts, on records copied from a real run's changelogs (README.md shows them). */
class LayoutTest {
    static byte[] hex(String s) {
        return HexFormat.of().parseHex(s);
    }

    @Test
    void windowKeysAreKeyStartAndSequenceNumber() {
        assertEquals(new Layout.WindowKey("user-0268", 1796205600000L, 0),
                Layout.window(hex("757365722d30323638" + "000001a236325d00" + "00000000")));
        assertThrows(IllegalArgumentException.class, () -> Layout.window(hex("00")));
    }

    @Test
    void sessionKeysAreKeyEndAndStart() {
        assertEquals(new Layout.SessionKey("user-0268", 1796205948171L, 1796205664439L),
                Layout.session(hex("757365722d30323638" + "000001a23637ad0b" + "000001a2363358b7")));
        assertThrows(IllegalArgumentException.class, () -> Layout.session(hex("000001a23637ad0b")));
    }

    @Test
    void valuesAreEightByteLongsOrTombstones() {
        assertEquals(93L, Layout.longValue(hex("000000000000005d")));
        assertNull(Layout.longValue(null));
        assertThrows(IllegalArgumentException.class, () -> Layout.longValue(hex("0000005d")));
    }

    @Test
    void theLayoutFollowsTheTopicName() {
        record Case(String topic, Layout want) {}
        for (Case c : List.of(
                new Case("app-counts-changelog", Layout.KV),
                new Case("app-windowed-counts-changelog", Layout.WINDOW),
                new Case("app-sessions-changelog", Layout.SESSION),
                new Case("events", Layout.KV))) {
            assertEquals(c.want(), Layout.guess(c.topic()), c.topic());
        }
    }
}
