// Command-line arguments → what main should do: run (or only check) a config, ping a running proxy, print version, or help.

/**
 * What the command line asked for. `check`: validate the config and exit without listening.
 * `ping`: PING the proxy that the config describes (a health check) and exit 0 or 1.
 */
export type CliAction =
  | { kind: "run"; configPath: string; check: boolean }
  | { kind: "ping"; configPath: string }
  | { kind: "version" }
  | { kind: "help" };

/** A malformed command line; the message says what was wrong (main prints it with USAGE). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Help text printed for -h and after a UsageError. */
export const USAGE = `Usage: predixy [-c FILE] [--check | --ping]
       predixy --version
       predixy -h

Options:
  -c, --config FILE   configuration file, TOML or (.yaml/.yml) YAML
                      (default: $PREDIXY_CONFIG, else predixy.toml)
      --check         validate the configuration, print any errors, and exit
      --ping          PING the predixy this configuration describes; exit 0 on PONG, else 1
  -v, --version       print the version and the commit it was built from, and exit
  -h, --help          print this help and exit
`;

/** Where the config is read from when no -c is given: `$PREDIXY_CONFIG` (containers), else this. */
const DEFAULT_CONFIG_PATH = "predixy.toml";

/**
 * Parse the user's arguments (no runtime or script path). Any -h/--help wins, then
 * -v/--version; both still reject unknown flags first, so a typo is never silently ignored.
 * Throws UsageError on an unknown flag, a missing value, a stray argument, a repeated -c, or
 * --check with --ping. `env` supplies PREDIXY_CONFIG.
 */
export function parseCliArgs(argv: string[], env: Record<string, string | undefined> = {}): CliAction {
  let configPath: string | undefined;
  let check = false, ping = false, help = false, version = false;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);

    switch (flag) {
      case "-c":
      case "--config": {
        // A following "-x" is a forgotten value, not a file; --config=-x is taken literally.
        const value = inline ?? (argv[i + 1]?.startsWith("-") ? undefined : argv[++i]);
        if (value === undefined || value === "") throw new UsageError(`${flag} requires a file name`);
        if (configPath !== undefined) throw new UsageError(`${flag} given more than once`);
        configPath = value;
        break;
      }
      case "--check":
      case "--ping":
      case "--help":
      case "--version":
        if (inline !== undefined) throw new UsageError(`${flag} takes no value`);
        if (flag === "--check") check = true;
        else if (flag === "--ping") ping = true;
        else if (flag === "--help") help = true;
        else version = true;
        break;
      case "-h":
        help = true;
        break;
      case "-v":
        version = true;
        break;
      default:
        throw new UsageError(
          arg.startsWith("-") ? `unknown option ${flag}` : `unexpected argument "${arg}"`,
        );
    }
  }

  if (help) return { kind: "help" };
  if (version) return { kind: "version" };
  configPath ??= env.PREDIXY_CONFIG || DEFAULT_CONFIG_PATH;
  if (check && ping) throw new UsageError("--check and --ping cannot be used together");
  return ping ? { kind: "ping", configPath } : { kind: "run", configPath, check };
}
