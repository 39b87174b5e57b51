// deploy/kubernetes: valid against Kubernetes' schema, free of unknown fields, and in step with predixy and its image.

import { describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { parse, parseAllDocuments } from "yaml";
import pkg from "../../package.json" with { type: "json" };
import { startAdmin } from "../../src/admin/server.ts";
import type { InfoContext } from "../../src/metrics/info.ts";
import { parseConfig, type Config } from "../../src/config/config.ts";
import { finalStage } from "../helpers/dockerfile.ts";

const ROOT = resolve(import.meta.dir, "../..");
const DIR = join(ROOT, "deploy/kubernetes");

/** The models the manifests may use: kubernetes-models' class and the module of its type. */
const MODELS: Record<string, { cls: new (data: any) => { validate(): void }; module: string }> = {
  "v1/ConfigMap": { cls: ConfigMap, module: "kubernetes-models/v1/ConfigMap" },
  "v1/Service": { cls: Service, module: "kubernetes-models/v1/Service" },
  "apps/v1/Deployment": { cls: Deployment, module: "kubernetes-models/apps/v1/Deployment" },
  "policy/v1/PodDisruptionBudget": { cls: PodDisruptionBudget, module: "kubernetes-models/policy/v1/PodDisruptionBudget" },
};

type Obj = Record<string, any>;
const files = readdirSync(DIR).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml").sort();
const manifests: { file: string; obj: Obj }[] = files.flatMap((file) =>
  parseAllDocuments(readFileSync(join(DIR, file), "utf8")).map((d) => {
    expect(d.errors).toEqual([]);
    return { file, obj: d.toJS() as Obj };
  }));
const byKind = (kind: string) => {
  const found = manifests.filter((m) => m.obj.kind === kind);
  expect(found).toHaveLength(1);
  return found[0].obj;
};
const modelOf = (o: Obj) => MODELS[`${o.apiVersion}/${o.kind}`];

const configMap = byKind("ConfigMap");
const deployment = byKind("Deployment");
const service = byKind("Service");
const pdb = byKind("PodDisruptionBudget");
const pod = deployment.spec.template.spec;
const container = pod.containers[0];
const image = finalStage();

/**
 * Unknown fields (a misspelt `readinesProbe`) pass the JSON schema, which allows extra keys.
 * TypeScript's excess-property check on kubernetes-models' types catches them: each manifest is
 * written out as a typed constant and compiled. Returns tsc's output (empty when clean).
 */
function typeCheck(objs: Obj[], name: string): string {
  const dir = join(ROOT, "node_modules/.cache/predixy-k8s-check"); // node_modules above it resolves the types
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.ts`);
  writeFileSync(file, objs.map((o, i) => {
    const m = modelOf(o);
    return `import type { I${o.kind} as T${i} } from "${m.module}";\nexport const m${i}: T${i} = ${JSON.stringify(o)};\n`;
  }).join(""));
  const tsc = Bun.spawnSync([join(ROOT, "node_modules/.bin/tsc"), "--ignoreConfig", "--noEmit", "--strict", "--skipLibCheck",
    "--module", "preserve", "--moduleResolution", "bundler", "--target", "esnext", "--types", "", file], { stdout: "pipe", stderr: "pipe" });
  return (tsc.stdout.toString() + tsc.stderr.toString()).trim();
}

describe("schema", () => {
  test("every manifest is a kind we know and validates against Kubernetes' schema", () => {
    expect(manifests.length).toBeGreaterThanOrEqual(4);
    for (const { file, obj } of manifests) {
      expect(modelOf(obj), `${file}: ${obj.apiVersion} ${obj.kind}`).toBeDefined();
      expect(() => new (modelOf(obj).cls)(obj).validate(), file).not.toThrow();
    }
  });

  test("the schema check fails a wrong type", () => {
    const bad = structuredClone(deployment);
    bad.spec.template.spec.containers[0].ports[0].containerPort = "6379";
    expect(() => new Deployment(bad).validate()).toThrow(/containerPort must be integer/);
  });

  test("no manifest has a field Kubernetes does not know (and the check does catch one)", () => {
    expect(typeCheck(manifests.map((m) => m.obj), "manifests")).toBe("");
    const typo = structuredClone(deployment);
    typo.spec.template.spec.terminationGracePeriodSecond = 20;
    expect(typeCheck([typo], "control")).toMatch(/terminationGracePeriodSecond\W+ does not exist in type 'IPodSpec'/);
  });

  test("kustomization.yaml lists every manifest", () => {
    const k = parse(readFileSync(join(DIR, "kustomization.yaml"), "utf8"));
    expect([...k.resources].sort()).toEqual(files);
  });
});

describe("in step with predixy and its image", () => {
  const cfg = parseConfig(configMap.data["config.yaml"], "configmap.yaml", "yaml");

  test("the ConfigMap holds a valid predixy config, one process per pod", () => {
    expect(cfg.performance.workerThreads).toBe(1);
    expect(cfg.server.bind).toBe("0.0.0.0");
  });

  test("the config is mounted where the image reads it by default", () => {
    const vol = pod.volumes.find((v: Obj) => v.configMap?.name === configMap.metadata.name);
    const mount = container.volumeMounts.find((m: Obj) => m.name === vol.name);
    expect(`${mount.mountPath}/config.yaml`).toBe(image.env.PREDIXY_CONFIG);
    expect(container.args ?? []).toEqual([]);
  });

  test("the image is this version's, as make image tags it", () => {
    expect(container.image).toBe(`predixy:${pkg.version}`);
  });

  test("the pod runs as the image's non-root user, read-only, with no capabilities", () => {
    expect(`${pod.securityContext.runAsUser}:${pod.securityContext.runAsGroup}`).toBe(image.user);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(container.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(container.securityContext.capabilities.drop).toEqual(["ALL"]);
  });

  test("the container exposes the image's ports, and the client port is the config's", () => {
    const ports = container.ports.map((p: Obj) => p.containerPort);
    expect(ports.toSorted()).toEqual(image.expose.toSorted());
    expect(container.ports.find((p: Obj) => p.name === "redis").containerPort).toBe(cfg.server.port);
  });

  test("several replicas, rolled one at a time without losing capacity, and a budget that keeps most up", () => {
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(deployment.spec.strategy.rollingUpdate).toEqual({ maxUnavailable: 0, maxSurge: 1 });
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(pdb.spec.maxUnavailable).toBeLessThan(deployment.spec.replicas);
  });

  test("the Deployment, Service and PDB select exactly the pods' labels", () => {
    const labels = deployment.spec.template.metadata.labels;
    for (const selector of [deployment.spec.selector.matchLabels, service.spec.selector, pdb.spec.selector.matchLabels])
      for (const [k, v] of Object.entries(selector)) expect(labels[k]).toBe(v);
    const target = service.spec.ports[0].targetPort;
    expect(container.ports.find((p: Obj) => p.name === target).containerPort).toBe(cfg.server.port);
  });

  test("the grace period covers preStop, the drain (drain_timeout_ms) and a margin", () => {
    const preStop = container.lifecycle.preStop.sleep.seconds;
    expect(preStop).toBeGreaterThanOrEqual(3);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStop + Math.ceil(cfg.server.drainTimeoutMs / 1000) + 5);
  });

  test("resources are requested, and the memory limit leaves room for the measured peak and what clients may hold", () => {
    const mi = (q: string) => Number(/^(\d+)Mi$/.exec(q)![1]);
    expect(container.resources.requests.cpu).toBeDefined();
    // 80 MB under load + 5.5 MB per 1,000 clients at max_clients.
    const need = (80 + 5.5 * (cfg.server.maxClients / 1000)) / 1.048576;
    expect(mi(container.resources.requests.memory)).toBeGreaterThanOrEqual(80);
    expect(mi(container.resources.limits.memory)).toBeGreaterThanOrEqual(need);
    // max_memory set, not left to predixy's start-up fit (half the limit, with a warning).
    expect(cfg.performance.maxMemory).toBeGreaterThan(0);
    expect(cfg.performance.maxMemory).toBeLessThanOrEqual(mi(container.resources.limits.memory) * 1048576 / 2);
  });
});

/** What each probe asks of the admin server: the path and what a pod in that state must answer. */
const PROBES = { startupProbe: "/healthz", readinessProbe: "/readyz", livenessProbe: "/healthz" } as const;

/**
 * Why the container's probes would not reach the admin server `cfg` configures, or [] if they
 * do: each is an httpGet of its path on a container port (named or numbered) that is
 * `admin.port`, and the admin server listens beyond loopback, where the kubelet connects.
 */
function probeProblems(c: Obj, cfg: Config): string[] {
  const problems: string[] = [];
  if (cfg.admin.port === 0) problems.push("admin.port is 0: no admin server to probe");
  if (!["0.0.0.0", "::"].includes(cfg.admin.bind)) problems.push(`admin.bind ${cfg.admin.bind}: the kubelet connects to the pod's address`);
  for (const [p, path] of Object.entries(PROBES)) {
    const get = c[p]?.httpGet;
    if (!get) { problems.push(`${p}: not an httpGet`); continue; }
    if (get.path !== path) problems.push(`${p}: path ${get.path}, not ${path}`);
    const port = typeof get.port === "number" ? get.port : c.ports.find((x: Obj) => x.name === get.port)?.containerPort;
    if (port !== cfg.admin.port) problems.push(`${p}: port ${get.port} (${port}) is not admin.port ${cfg.admin.port}`);
  }
  return problems;
}

describe("probes", () => {
  const cfg = parseConfig(configMap.data["config.yaml"], "configmap.yaml", "yaml");

  test("readiness asks /readyz, liveness and start-up /healthz, on the ConfigMap's admin port, bound beyond loopback", () => {
    expect(probeProblems(container, cfg)).toEqual([]);
  });

  test("the check fails a probe on another port, a swapped path, or an admin server on loopback", () => {
    const other = structuredClone(container);
    other.ports.find((x: Obj) => x.name === "admin").containerPort = cfg.admin.port + 1;
    expect(probeProblems(other, cfg)).toHaveLength(Object.keys(PROBES).length);
    const swapped = structuredClone(container);
    swapped.livenessProbe.httpGet.path = "/readyz";
    expect(probeProblems(swapped, cfg)).toEqual(["livenessProbe: path /readyz, not /healthz"]);
    const loopback = parseConfig(configMap.data["config.yaml"].replace(/bind: "0\.0\.0\.0"\n(\s+port: 9380)/, 'bind: "127.0.0.1"\n$1'), "x.yaml", "yaml");
    expect(probeProblems(container, loopback)).toEqual(["admin.bind 127.0.0.1: the kubelet connects to the pod's address"]);
  });

  test("what the probed paths answer: /readyz fails before the topology is known and while draining, /healthz does not", async () => {
    // predixy's own admin server, given each state as observability.ts reports it.
    let notReady: string | null = "no topology yet";
    const server = startAdmin({
      bind: "127.0.0.1", port: 8597, notReady: () => notReady,
      view: () => Promise.reject(new Error("not needed by the probes")), info: {} as InfoContext,
    });
    const ask = async (p: keyof typeof PROBES) => (await fetch(`http://127.0.0.1:${server.port}${container[p].httpGet.path}`)).status;
    try {
      const answers: Record<string, number[]> = {};
      for (const state of ["no topology yet", null, "draining (shutting down)"]) {
        notReady = state;
        for (const p of Object.keys(PROBES) as (keyof typeof PROBES)[]) (answers[p] ??= []).push(await ask(p));
      }
      expect(answers).toEqual({ startupProbe: [200, 200, 200], readinessProbe: [503, 200, 503], livenessProbe: [200, 200, 200] });
    } finally {
      server.stop();
    }
  });

  test("the start-up probe waits out a start against a cluster that does not answer", () => {
    // Before the admin server listens, main.ts asks each entry point for COMMAND (at least 5 s
    // each) and then for CLUSTER SLOTS (connect_timeout_ms each, at most): SYNs dropped, all time out.
    const worstMs = cfg.cluster.entryPoints.length * (Math.max(cfg.cluster.connectTimeoutMs, 5000) + cfg.cluster.connectTimeoutMs);
    const startup = container.startupProbe.periodSeconds * container.startupProbe.failureThreshold;
    expect(startup * 1000).toBeGreaterThan(worstMs);
  });
});
