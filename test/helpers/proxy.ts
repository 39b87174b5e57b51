// Runs predixy (src/main.ts under Bun) as a child process with a generated config, for integration tests.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export interface ProxyHandle {
  port: number;
  pid: number;
  /** The config file it runs with (unique per proxy: tells its processes apart from others'). */
  configFile: string;
  /** Everything the proxy wrote to stderr so far. */
  logs(): string;
  /** Sends the proxy process a signal. */
  signal(sig: NodeJS.Signals): void;
  /** The exit status, once the process has exited. */
  exited: Promise<number>;
  stop(): Promise<void>;
}

const ROOT = resolve(import.meta.dir, "../..");

export interface ProxyExtra {
  /** TOML lines for [server] and [cluster] (besides port/bind and entry_points). */
  server?: string;
  cluster?: string;
  /** Further sections. */
  rest?: string;
  /** Run under `ulimit -n` this low. */
  openFiles?: number;
  /** Run with this config file instead of writing one (it must listen on `port`, loopback). */
  configFile?: string;
  /** More environment variables for the proxy. */
  env?: Record<string, string>;
}

/** Starts the proxy on `port` in front of `entryPoints`, configured by `extra`. */
export async function startProxy(port: number, entryPoints: string[], extra: ProxyExtra = {}): Promise<ProxyHandle> {
  // Something else answering on the port would pass the readiness check below and fool the test.
  if (await portOpen(port)) throw new Error(`port ${port} is already in use`);
  const dir = mkdtempSync(join(tmpdir(), "predixy-test-"));
  const file = extra.configFile ?? join(dir, "predixy.toml");
  if (extra.configFile === undefined) writeFileSync(file, proxyConfig(port, entryPoints, extra));
  const argv = [process.execPath, join(ROOT, "src/main.ts"), "-c", file];
  if (extra.openFiles !== undefined) argv.unshift("sh", "-c", `ulimit -n ${extra.openFiles} && exec "$0" "$@"`);
  const proc = Bun.spawn(argv, {
    stdout: "pipe", stderr: "pipe", cwd: ROOT, env: { ...process.env, ...extra.env },
  });
  let stderr = "";
  void (async () => {
    for await (const chunk of proc.stderr) stderr += new TextDecoder().decode(chunk);
  })();
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`proxy exited with ${proc.exitCode}: ${stderr}`);
    if (await answersPing(port)) break;
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`proxy did not answer PING on ${port}: ${stderr}`);
    }
    await Bun.sleep(50);
  }
  return {
    port,
    pid: proc.pid,
    configFile: file,
    logs: () => stderr,
    signal: (sig) => { proc.kill(sig); },
    exited: proc.exited,
    async stop() {
      proc.kill("SIGTERM");
      const killer = setTimeout(() => proc.kill("SIGKILL"), 3000);
      await proc.exited;
      clearTimeout(killer);
    },
  };
}

/** The config file startProxy writes (tests rewrite it to test SIGHUP). */
export function proxyConfig(port: number, entryPoints: string[], extra: ProxyExtra = {}): string {
  return [
    "[server]", `bind = "127.0.0.1"`, `port = ${port}`, extra.server ?? "",
    "[cluster]", `entry_points = ${JSON.stringify(entryPoints)}`, extra.cluster ?? "",
    extra.rest ?? "",
    // No admin server unless the test asks for one: the default port would be shared by every test proxy.
    extra.rest?.includes("[admin]") ? "" : "[admin]\nport = 0",
    extra.rest?.includes("[log]") ? "" : "[log]\nlevel = \"info\"",
  ].join("\n");
}

/** Sends raw bytes and collects what comes back until `until` matches or the peer closes. */
export async function rawExchange(port: number, payload: string | Uint8Array, until: (s: string) => boolean, timeoutMs = 5000): Promise<{ text: string; closed: boolean }> {
  let text = "";
  let closed = false;
  const { promise, resolve } = Promise.withResolvers<void>();
  const sock = await Bun.connect({
    hostname: "127.0.0.1", port,
    socket: {
      data(_s, d) { text += new TextDecoder().decode(d); if (until(text)) resolve(); },
      close() { closed = true; resolve(); },
      error() { closed = true; resolve(); },
    },
  });
  sock.write(payload);
  const t = setTimeout(resolve, timeoutMs);
  await promise;
  clearTimeout(t);
  // Give a close that follows the reply a moment to arrive.
  if (!closed) await Bun.sleep(50);
  const result = { text, closed }; // before end(), whose own close event would set `closed`
  sock.end();
  return result;
}

async function answersPing(port: number): Promise<boolean> {
  try {
    const r = await rawExchange(port, "PING\r\n", (s) => s.includes("\r\n"), 500);
    return r.text === "+PONG\r\n" || r.text.startsWith("-NOAUTH");
  } catch {
    return false;
  }
}

async function portOpen(port: number): Promise<boolean> {
  try {
    const sock = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    sock.end();
    return true;
  } catch {
    return false;
  }
}
