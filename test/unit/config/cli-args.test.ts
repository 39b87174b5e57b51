// Command-line parsing: flag forms, precedence of help/version, and usage errors.

import { test, expect, describe } from "bun:test";
import fc from "fast-check";
import { parseCliArgs, UsageError, USAGE, type CliAction } from "../../../src/config/cli-args.ts";

const run = (configPath: string, check = false): CliAction => ({ kind: "run", configPath, check });

describe("accepted command lines", () => {
  const cases: [string[], CliAction][] = [
    [[], run("predixy.toml")],
    [["--check"], run("predixy.toml", true)],
    [["-c", "a.toml"], run("a.toml")],
    [["--config", "a.toml"], run("a.toml")],
    [["--config=a.toml"], run("a.toml")],
    [["--config=dir/with=equals.toml"], run("dir/with=equals.toml")],
    [["--config=-odd.toml"], run("-odd.toml")],
    [["-c", "a.toml", "--check"], run("a.toml", true)],
    [["--check", "-c", "a.toml"], run("a.toml", true)],
    [["-v"], { kind: "version" }],
    [["--version"], { kind: "version" }],
    [["-h"], { kind: "help" }],
    [["--help"], { kind: "help" }],
    [["-c", "a.toml", "-h"], { kind: "help" }],
    [["--version", "--help"], { kind: "help" }],
    [["--check", "-v"], { kind: "version" }],
    [["--ping"], { kind: "ping", configPath: "predixy.toml" }],
    [["--ping", "-c", "/etc/predixy/config.yaml"], { kind: "ping", configPath: "/etc/predixy/config.yaml" }],
    [["--ping", "--check", "-h"], { kind: "help" }],
  ];
  for (const [argv, action] of cases)
    test(JSON.stringify(argv), () => expect(parseCliArgs(argv)).toEqual(action));

  test("any plain file name after -c round-trips", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }).filter((s) => !s.startsWith("-")), (path) => {
        expect(parseCliArgs(["-c", path])).toEqual(run(path));
        expect(parseCliArgs([`--config=${path}`])).toEqual(run(path));
      }),
    );
  });
});

describe("usage errors", () => {
  const cases: [string, string[], string][] = [
    ["unknown short flag", ["-x"], "unknown option -x"],
    ["unknown long flag", ["--chek"], "unknown option --chek"],
    ["unknown long flag with value", ["--port=1"], "unknown option --port"],
    ["-c without a value", ["-c"], "-c requires a file name"],
    ["--config without a value", ["--config"], "--config requires a file name"],
    ["--config= empty", ["--config="], "--config requires a file name"],
    ["-c followed by a flag", ["-c", "--check"], "-c requires a file name"],
    ["-c given twice", ["-c", "a", "-c", "b"], "-c given more than once"],
    ["stray positional argument", ["predixy.toml"], 'unexpected argument "predixy.toml"'],
    ["--check with a value", ["--check=yes"], "--check takes no value"],
    ["unknown flag is reported even with -h", ["-h", "--bogus"], "unknown option --bogus"],
    ["--ping with a value", ["--ping=6379"], "--ping takes no value"],
    ["--check with --ping", ["--check", "--ping"], "--check and --ping cannot be used together"],
  ];
  for (const [name, argv, message] of cases)
    test(name, () => expect(() => parseCliArgs(argv)).toThrow(new UsageError(message)));

  test("UsageError is an Error named UsageError", () => {
    const e = new UsageError("m");
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("UsageError");
  });
});

describe("PREDIXY_CONFIG", () => {
  const env = { PREDIXY_CONFIG: "/etc/predixy/config.yaml" };

  test("is the config when no -c is given, for running, checking and pinging", () => {
    expect(parseCliArgs([], env)).toEqual(run("/etc/predixy/config.yaml"));
    expect(parseCliArgs(["--check"], env)).toEqual(run("/etc/predixy/config.yaml", true));
    expect(parseCliArgs(["--ping"], env)).toEqual({ kind: "ping", configPath: "/etc/predixy/config.yaml" });
  });

  test("-c wins over it", () => {
    expect(parseCliArgs(["-c", "a.toml"], env)).toEqual(run("a.toml"));
  });

  test("set but empty, it is as if unset", () => {
    expect(parseCliArgs([], { PREDIXY_CONFIG: "" })).toEqual(run("predixy.toml"));
  });
});

test("USAGE names every flag", () => {
  for (const flag of ["-c", "--config", "--check", "--ping", "-v", "--version", "-h", "--help", "predixy.toml", "PREDIXY_CONFIG"])
    expect(USAGE).toContain(flag);
});
