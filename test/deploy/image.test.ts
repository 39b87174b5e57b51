// The container image, built by `make image` (podman, no registry) and tried the way a runtime would run it.
//
// Containers cannot start on these machines, so the image's filesystem is exported
// (podman create + export) and its entrypoint run in a chroot, with /proc, /dev, /etc/hosts and
// the config bound in as a runtime does, as the image's user and with the image's environment.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { CONFIG_SCHEMA } from "../../src/config/config.ts";
import { redisCli, startCluster, type ClusterHandle } from "../helpers/redis-cluster.ts";

const ROOT = resolve(import.meta.dir, "../..");
const BASE = 8515;
const PORT = 8594;
const ADMIN = 8598;
const IMAGE = "predixy-image-test";
const dir = mkdtempSync(join(tmpdir(), "predixy-image-"));
const fs = join(dir, "fs");
// A private image store, so the test neither sees nor leaves images in the machine's own.
const PODMAN_OPTS = `--root ${dir}/storage --runroot ${dir}/run`;
const podman = (...args: string[]) => run(["podman", ...PODMAN_OPTS.split(" "), ...args]);

function run(argv: string[], env?: Record<string, string>) {
  const p = Bun.spawnSync(argv, { cwd: ROOT, stdout: "pipe", stderr: "pipe", env });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

interface ImageConfig {
  User: string; Env: string[]; Entrypoint: string[]; ExposedPorts: Record<string, object>; StopSignal: string;
}
let config: ImageConfig;
let healthcheck: { Test: string[] };
let cluster: ClusterHandle | undefined;

/**
 * Runs the image's entrypoint with `args` as a runtime would: in a mount namespace of its own
 * (the binds vanish with it) holding /proc, /dev, /etc/hosts and `mounts`, chrooted into the
 * image's filesystem, as the image's user, with only the image's environment.
 */
function inImage(args: string[], mounts: Record<string, string> = {}): string[] {
  const binds = { "/proc": "/proc", "/dev": "/dev", "/etc/hosts": "/etc/hosts", ...mounts };
  const script = Object.entries(binds).map(([target, source]) => `mount --bind '${source}' "$0${target}"`).join(" && ");
  return ["unshare", "--mount", "--propagation", "private", "sh", "-c", `${script} && exec chroot --userspec='${config.User}' "$0" "$@"`,
    fs, ...config.Entrypoint, ...args];
}
const imageEnv = () => Object.fromEntries(config.Env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));

beforeAll(async () => {
  const made = run(["make", "image"], { ...process.env, PODMAN_OPTS, IMAGE } as Record<string, string>);
  if (made.code !== 0) throw new Error(`make image failed:\n${made.out}\n${made.err}`);
  const inspect = podman("image", "inspect", `${IMAGE}:latest`);
  const [image] = JSON.parse(inspect.out);
  config = image.Config;
  healthcheck = image.Healthcheck; // podman keeps it beside Config
  const id = podman("create", `${IMAGE}:latest`).out.trim();
  const exported = podman("export", "-o", join(dir, "fs.tar"), id);
  if (exported.code !== 0) throw new Error(`podman export failed: ${exported.err}`);
  podman("rm", id);
  mkdirSync(fs);
  expect(run(["tar", "-xf", join(dir, "fs.tar"), "-C", fs]).code).toBe(0);
  // Mount points a runtime would make.
  for (const d of ["proc", "dev"]) mkdirSync(join(fs, d), { recursive: true });
  writeFileSync(join(fs, "etc/hosts"), "");
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  podman("rmi", "--all", "--force");
  rmSync(dir, { recursive: true, force: true });
});

describe("the image", () => {
  test("runs as a non-root user, exposes the client and admin ports, and checks its own health", () => {
    expect(config.User).toBe("65532:65532");
    // The admin port is [admin]'s default, which the shipped config.yaml keeps.
    expect(Object.keys(config.ExposedPorts).sort()).toEqual(["6379/tcp", `${CONFIG_SCHEMA.admin.port.default}/tcp`]);
    expect(config.Entrypoint).toEqual(["/usr/local/bin/predixy"]);
    expect(healthcheck.Test).toEqual(["CMD", "/usr/local/bin/predixy", "--ping"]);
    expect(imageEnv().PREDIXY_CONFIG).toBe("/etc/predixy/config.yaml");
    expect(config.StopSignal).toBe("SIGTERM");
  });

  test("holds the executable, exactly the libraries ldd lists for it, and a few files of /etc", () => {
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d)) {
        const p = join(d, e);
        if (statSync(p).isDirectory()) walk(p);
        else files.push("/" + relative(fs, p));
      }
    };
    walk(fs);
    const exe = join(fs, "usr/local/bin/predixy");
    const libs = run(["ldd", exe]).out.split("\n").flatMap((l) => {
      const m = /=> (\/\S+)|^\s*(\/\S+)/.exec(l);
      return m ? [m[1] ?? m[2]] : [];
    });
    expect(libs.length).toBeGreaterThan(1);
    expect(files.sort()).toEqual([
      "/etc/group", "/etc/hosts", "/etc/nsswitch.conf", "/etc/passwd", "/etc/predixy/config.yaml",
      "/usr/local/bin/predixy", ...libs,
    ].sort());
    expect(statSync(join(fs, "tmp")).mode & 0o7777).toBe(0o1777);
  });
});

describe("its executable, run from the exported filesystem", () => {
  test("--version names the version and the commit it was built from", () => {
    const commit = run(["git", "describe", "--always", "--dirty", "--abbrev=12", "--exclude=*"]).out.trim();
    const r = run(inImage(["--version"]), imageEnv());
    expect(r.err).toBe("");
    expect(r.out).toBe(`predixy ${pkg.version} (commit ${commit})\n`);
  });

  test("--check passes on the default config (/etc/predixy/config.yaml, from PREDIXY_CONFIG)", () => {
    const r = run(inImage(["--check"]), imageEnv());
    expect(r.out).toBe("/etc/predixy/config.yaml: OK\n");
    expect(r.code).toBe(0);
  });

  test("serves a cluster with a mounted config, answers its health checks, and stops on SIGTERM", async () => {
    cluster = await startCluster({ basePort: BASE, masters: 3, replicasPerMaster: 0, dir: join(dir, "cluster") });
    // As `docker run -v ./config.yaml:/etc/predixy/config.yaml`; a host name, resolved through
    // the /etc/hosts the runtime provides.
    const cfg = join(dir, "config.yaml");
    writeFileSync(cfg, `server:\n  bind: "0.0.0.0"\n  port: ${PORT}\ncluster:\n  entry_points: ["localhost:${BASE}"]\n` +
      `admin:\n  bind: "0.0.0.0"\n  port: ${ADMIN}\n`);
    const mounts = { "/etc/predixy/config.yaml": cfg };
    const proxy = Bun.spawn(inImage([], mounts), { env: imageEnv(), stdout: "pipe", stderr: "pipe" });
    try {
      let pong = "";
      for (let i = 0; i < 100 && pong !== "PONG" && proxy.exitCode === null; i++) {
        pong = await redisCli(PORT, ["ping"]).catch(() => "");
        if (pong !== "PONG") await Bun.sleep(100);
      }
      expect(pong).toBe("PONG");
      expect(await redisCli(PORT, ["set", "image:key", "from-the-image"])).toBe("OK");
      expect(await redisCli(BASE, ["-c", "get", "image:key"])).toBe("from-the-image");

      const [, ...check] = healthcheck.Test; // ["CMD", exe, ...args]
      const health = run(inImage(check.slice(1), mounts), imageEnv());
      expect(health.out).toBe(`PONG from 127.0.0.1:${PORT}\n`);
      expect(health.code).toBe(0);
      // The admin server's probes, as a kubelet would ask them.
      expect(await (await fetch(`http://127.0.0.1:${ADMIN}/healthz`)).text()).toBe("ok\n");
      expect(await (await fetch(`http://127.0.0.1:${ADMIN}/readyz`)).text()).toBe("ready\n");
    } finally {
      proxy.kill("SIGTERM");
    }
    expect(await proxy.exited).toBe(0);
    const unhealthy = run(inImage(["--ping"], mounts), imageEnv());
    expect(unhealthy.code).toBe(1);
  });
});
