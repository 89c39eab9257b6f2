package streamsapp;

import java.util.Arrays;

/**
 * A worked example Kafka Streams application whose changelog topics iqengine serves (see
 * README.md). Subcommands:
 *
 * <pre>
 * streams-app generate --bootstrap B [--topic events --keys 2000 --events 30000 --hours 6 --seed 1 ...]
 * streams-app run --bootstrap B --application-id A --state-dir D [--listen 127.0.0.1:8080 --commit-ms 100]
 * streams-app dump --bootstrap B --topic T [--partition P --limit 10 --layout kv|window|session|raw --json]
 * </pre>
 */
public final class Main {
    private Main() {}

    static final String USAGE = String.join("\n",
            "usage: streams-app generate|run|dump [flags]   (streams-app COMMAND --help for its flags)",
            "",
            "  generate   produce a deterministic stream of events (out of order, some late)",
            "  run        run the Kafka Streams application and serve its interactive queries",
            "  dump       print a topic's first records, keys and values in hex and decoded");

    public static void main(String[] args) throws Exception {
        if (args.length == 0) {
            System.err.println(USAGE);
            System.exit(2);
        }
        if (args[0].equals("-h") || args[0].equals("--help") || args[0].equals("help")) {
            System.out.println(USAGE);
            System.exit(0);
        }
        String cmd = args[0];
        String[] rest = Arrays.copyOfRange(args, 1, args.length);
        String usage = switch (cmd) {
            case "generate" -> Generate.USAGE;
            case "run" -> App.USAGE;
            case "dump" -> Dump.USAGE;
            default -> null;
        };
        if (usage == null) {
            System.err.println("streams-app: unknown command " + cmd + "\n" + USAGE);
            System.exit(2);
        }
        try {
            switch (cmd) {
                case "generate" -> Generate.run(rest);
                case "run" -> App.run(rest);
                default -> Dump.run(rest);
            }
        } catch (Flags.HelpException e) {
            System.out.println(usage);
            System.exit(0);
        } catch (Flags.UsageException e) {
            System.err.println("streams-app " + cmd + ": " + e.getMessage() + " (see --help)");
            System.exit(2);
        }
        // The Kafka clients' threads are done; exit even if a non-daemon thread lingers.
        System.exit(0);
    }
}
