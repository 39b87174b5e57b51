// The final stage of the repository's Dockerfile, read as a runtime would apply it (for deploy tests).

import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export interface FinalStage {
  user: string;
  env: Record<string, string>;
  expose: number[];
  entrypoint: string[];
  healthcheck: string[];
}

const ROOT = resolve(import.meta.dir, "../..");

/** USER, ENV, EXPOSE, ENTRYPOINT and HEALTHCHECK CMD after the last FROM (exec forms only). */
export function finalStage(): FinalStage {
  const text = readFileSync(join(ROOT, "Dockerfile"), "utf8").replace(/\\\n/g, " ");
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  const last = lines.findLastIndex((l) => /^FROM\s/i.test(l));
  const out: FinalStage = { user: "", env: {}, expose: [], entrypoint: [], healthcheck: [] };
  for (const line of lines.slice(last + 1)) {
    const [, op, rest] = /^(\w+)\s+(.*)$/.exec(line) ?? [];
    switch (op?.toUpperCase()) {
      case "USER": out.user = rest; break;
      case "ENV": { const [k, v] = rest.split("="); out.env[k] = v; break; }
      case "EXPOSE": out.expose = rest.split(/\s+/).map(Number); break;
      case "ENTRYPOINT": out.entrypoint = JSON.parse(rest); break;
      case "HEALTHCHECK": out.healthcheck = JSON.parse(rest.slice(rest.indexOf("CMD ") + 4)); break;
    }
  }
  return out;
}
