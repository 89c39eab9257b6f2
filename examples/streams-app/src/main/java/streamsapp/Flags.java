package streamsapp;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * A subcommand's flags: {@code --name value} or {@code --name=value}, each named in the
 * subcommand's usage text with its default. A flag not in the usage, a flag without a value
 * and a malformed number are usage errors ({@link UsageException}).
 */
final class Flags {
    /** A usage error: the message names the flag and what is wrong with it. */
    static final class UsageException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        UsageException(String msg) {
            super(msg);
        }
    }

    /** Thrown for -h / --help: the caller prints the usage and exits 0. */
    static final class HelpException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        HelpException() {
            super("help");
        }
    }

    private final Map<String, String> values = new LinkedHashMap<>();

    /**
     * Parses {@code args} against the flags that {@code known} names (without the dashes); a
     * flag in {@code booleans} takes no value and is "true" when present.
     */
    static Flags parse(String[] args, Set<String> known, Set<String> booleans) {
        Flags f = new Flags();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("-h") || a.equals("--help") || a.equals("-help")) {
                throw new HelpException();
            }
            if (!a.startsWith("--")) {
                throw new UsageException("unexpected argument " + a);
            }
            String name = a.substring(2);
            String value = null;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            }
            if (booleans.contains(name)) {
                f.values.put(name, value == null ? "true" : value);
                continue;
            }
            if (!known.contains(name)) {
                throw new UsageException("unknown flag --" + name);
            }
            if (value == null) {
                if (i + 1 >= args.length) {
                    throw new UsageException("flag --" + name + " needs a value");
                }
                value = args[++i];
            }
            f.values.put(name, value);
        }
        return f;
    }

    /** The flag's value, or {@code def} when it was not given. */
    String string(String name, String def) {
        return values.getOrDefault(name, def);
    }

    /** The flag's value; a usage error when it was not given. */
    String required(String name) {
        String v = values.get(name);
        if (v == null || v.isEmpty()) {
            throw new UsageException("flag --" + name + " is required");
        }
        return v;
    }

    /** Whether a boolean flag was given (and not as {@code --name=false}). */
    boolean bool(String name) {
        return Boolean.parseBoolean(values.getOrDefault(name, "false"));
    }

    /** The flag as a whole number of at least {@code min}, or {@code def} when it was not given. */
    long number(String name, long def, long min) {
        String v = values.get(name);
        if (v == null) {
            return def;
        }
        try {
            long n = Long.parseLong(v);
            if (n >= min) {
                return n;
            }
        } catch (NumberFormatException e) {
            // fall through
        }
        throw new UsageException("flag --" + name + ": " + v + " is not a whole number >= " + min);
    }

    /** The flag as a fraction in [0, 1], or {@code def} when it was not given. */
    double fraction(String name, double def) {
        String v = values.get(name);
        if (v == null) {
            return def;
        }
        try {
            double d = Double.parseDouble(v);
            if (d >= 0 && d <= 1) {
                return d;
            }
        } catch (NumberFormatException e) {
            // fall through
        }
        throw new UsageException("flag --" + name + ": " + v + " is not a fraction between 0 and 1");
    }

}
