package streamsapp;

/**
 * A small JSON writer for the answers of the HTTP API, the generator's summary and the dumper:
 * the caller writes the punctuation; strings are escaped.
 */
final class Json {
    private final StringBuilder b = new StringBuilder(256);
    private boolean needComma;

    /** Starts an object; {@link #end} closes it. */
    Json object() {
        comma();
        b.append('{');
        needComma = false;
        return this;
    }

    /** Starts an array; {@link #endArray} closes it. */
    Json array() {
        comma();
        b.append('[');
        needComma = false;
        return this;
    }

    /** Closes the innermost object. */
    Json end() {
        b.append('}');
        needComma = true;
        return this;
    }

    /** Closes the innermost array. */
    Json endArray() {
        b.append(']');
        needComma = true;
        return this;
    }

    /** Writes a member name; the value follows. */
    Json name(String name) {
        comma();
        string(name);
        b.append(':');
        needComma = false;
        return this;
    }

    /** Writes a number value. */
    Json value(long n) {
        comma();
        b.append(n);
        needComma = true;
        return this;
    }

    /** Writes a string value, or null. */
    Json value(String s) {
        comma();
        if (s == null) {
            b.append("null");
        } else {
            string(s);
        }
        needComma = true;
        return this;
    }

    /** Writes a number value, or null. */
    Json value(Long n) {
        comma();
        b.append(n == null ? "null" : n.toString());
        needComma = true;
        return this;
    }

    /** Writes true or false. */
    Json value(boolean v) {
        comma();
        b.append(v);
        needComma = true;
        return this;
    }

    /** Writes a JSON value as it is. */
    Json raw(String json) {
        comma();
        b.append(json);
        needComma = true;
        return this;
    }

    @Override
    public String toString() {
        return b.toString();
    }

    private void comma() {
        if (needComma) {
            b.append(',');
            needComma = false;
        }
    }

    private void string(String s) {
        b.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        b.append('"');
    }
}
