// Command line over test/helpers/redis-cluster.ts: start, stop and inspect the dev cluster `make run` uses.
import { parseArgs } from "node:util";
import { readMeta, redisCli, startCluster, stopCluster } from "../test/helpers/redis-cluster.ts";

const USAGE = `usage:
  bun scripts/cluster.ts start  [--port 7000] [--masters 9] [--replicas 1] [--dir .cluster] [--password X] [--host 127.0.0.1]
                                [--tls-cert FILE --tls-key FILE --tls-ca FILE]   (TLS only: tls-port, tls-cluster, tls-replication)
  bun scripts/cluster.ts stop   [--dir .cluster]
  bun scripts/cluster.ts status [--dir .cluster] [--password X]`;

const { values, positionals } = parseArgs({
  args: Bun.argv.slice(2),
  allowPositionals: true,
  options: {
    port: { type: "string", default: "7000" },
    masters: { type: "string", default: "9" },
    replicas: { type: "string", default: "1" },
    dir: { type: "string", default: ".cluster" },
    host: { type: "string" },
    password: { type: "string" },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
    "tls-ca": { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});

function int(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a non-negative integer, got "${text}"`);
  return n;
}

function fail(message: string): never {
  console.error(`cluster: ${message}`);
  process.exit(1);
}

async function start(): Promise<void> {
  const t0 = performance.now();
  const masters = int("masters", values.masters!);
  const replicas = int("replicas", values.replicas!);
  const tlsFiles = [values["tls-cert"], values["tls-key"], values["tls-ca"]];
  if (tlsFiles.some(Boolean) && !tlsFiles.every(Boolean)) fail("--tls-cert, --tls-key and --tls-ca go together");
  const c = await startCluster({
    tls: values["tls-cert"] ? { certFile: values["tls-cert"], keyFile: values["tls-key"]!, caFile: values["tls-ca"]! } : undefined,
    basePort: int("port", values.port!),
    masters,
    replicasPerMaster: replicas,
    dir: values.dir!,
    host: values.host,
    password: values.password,
  });
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  // Summary on stderr, entry points alone on stdout so a caller can capture them.
  console.error(`cluster ready in ${secs}s: ${masters} masters x ${replicas} replicas, state in ${c.dir}`);
  console.log(c.entryPoints.join("\n"));
}

/** Asks the first answering node; exits 1 when no recorded node answers. */
async function status(): Promise<void> {
  const meta = await readMeta(values.dir!);
  if (!meta) fail(`no cluster recorded in ${values.dir}`);
  const opts = { host: meta.host, password: values.password ?? meta.password, tls: meta.tls };
  for (const port of meta.ports) {
    let info: string, nodes: string;
    try {
      [info, nodes] = await Promise.all([redisCli(port, ["cluster", "info"], opts), redisCli(port, ["cluster", "nodes"], opts)]);
    } catch {
      continue;
    }
    const field = (k: string) => info.match(new RegExp(`^${k}:(\\S+)`, "m"))?.[1] ?? "?";
    console.log(`cluster_state:${field("cluster_state")} slots_assigned:${field("cluster_slots_assigned")} ` +
      `known_nodes:${field("cluster_known_nodes")} size:${field("cluster_size")} (asked ${meta.host}:${port})`);
    console.log(summarizeNodes(nodes));
    const down = meta.ports.length - (await Promise.all(meta.ports.map((p) => redisCli(p, ["ping"], opts).catch(() => "")))).filter((r) => r === "PONG").length;
    if (down > 0) console.log(`${down} of ${meta.ports.length} recorded nodes not answering`);
    return;
  }
  fail(`no node of the cluster in ${values.dir} answers (ports ${meta.ports[0]}..${meta.ports.at(-1)})`);
}

/** One line per node in port order: address, role, slots or the master it follows, and failure flags. */
function summarizeNodes(text: string): string {
  const rows = text.split("\n").map((l) => l.trim().split(" ")).filter((f) => f.length >= 8);
  const addrOf = new Map(rows.map((f) => [f[0], f[1].split("@")[0]]));
  const port = (f: string[]) => Number(f[1].split("@")[0].split(":").at(-1));
  return rows.sort((a, b) => port(a) - port(b)).map((f) => {
    const [, addr, flags, masterId, , , , link] = f;
    const role = flags.includes("master") ? "master " : "replica";
    const what = role === "master " ? `slots ${f.slice(8).join(" ") || "-"}` : `of ${addrOf.get(masterId) ?? masterId}`;
    const bad = flags.split(",").filter((x) => x === "fail" || x === "fail?" || x === "handshake" || x === "noaddr");
    return `  ${addr.split("@")[0].padEnd(16)} ${role} ${what}${link === "connected" ? "" : ` [${link}]`}${bad.length ? ` [${bad.join(",")}]` : ""}`;
  }).join("\n");
}

const command = positionals[0];
if (values.help || !command) {
  console.log(USAGE);
  process.exit(values.help ? 0 : 1);
}
try {
  if (command === "start") await start();
  else if (command === "stop") {
    await stopCluster(values.dir!);
    console.error(`cluster in ${values.dir} stopped`);
  }
  else if (command === "status") await status();
  else fail(`unknown command "${command}"\n${USAGE}`);
} catch (e) {
  fail((e as Error).message);
}
