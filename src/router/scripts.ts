// Scripts and function libraries seen through the proxy, so a node that lacks one can be given it.

import { encodeCommand } from "../resp/reply-value.ts";
import { internalRequest, Kind, type Request } from "./request.ts";

/**
 * A node answers NOSCRIPT when a script is missing from its cache: a replica promoted by a
 * failover, or a master added by resharding, never saw the SCRIPT LOAD (Redis does not replicate
 * the script cache). Likewise FCALL gets "Function not found" on a new master. The proxy keeps the
 * bodies it has seen (EVAL, SCRIPT LOAD, FUNCTION LOAD), bounded in bytes, oldest use evicted
 * first, and loads them on such a node before sending the command again.
 */
export class ScriptMemory {
  /** SHA1 (lower-case hex) → body, in order of last use. */
  private readonly scripts = new Map<string, Uint8Array>();
  /** Library name → the FUNCTION LOAD payload that created it. */
  private readonly libraries = new Map<string, Uint8Array>();
  private bytes = 0;

  constructor(private readonly maxBytes = 64 * 1024 * 1024) {}

  /** EVAL / SCRIPT LOAD of `body`. */
  rememberScript(body: Uint8Array): void {
    const sha = Bun.SHA1.hash(body, "hex") as string;
    const known = this.scripts.get(sha);
    if (known !== undefined) {
      this.scripts.delete(sha); // to the young end
      this.scripts.set(sha, known);
      return;
    }
    this.scripts.set(sha, body.slice());
    this.bytes += body.length;
    this.evict();
  }

  /** FUNCTION LOAD [REPLACE] of `code`, whose first line is `#!<engine> name=<library> …`. */
  rememberLibrary(code: Uint8Array): void {
    const name = libraryName(code);
    if (name === null) return;
    this.forgetLibrary(name);
    this.libraries.set(name, code.slice());
    this.bytes += code.length;
    this.evict();
  }

  forgetLibrary(name: string): void {
    const old = this.libraries.get(name);
    if (old === undefined) return;
    this.libraries.delete(name);
    this.bytes -= old.length;
  }

  /** SCRIPT FLUSH: nodes forget every script, and so does the proxy (no resurrection). */
  forgetScripts(): void {
    for (const body of this.scripts.values()) this.bytes -= body.length;
    this.scripts.clear();
  }

  /** FUNCTION FLUSH. */
  forgetLibraries(): void {
    for (const code of this.libraries.values()) this.bytes -= code.length;
    this.libraries.clear();
  }

  get scriptCount(): number {
    return this.scripts.size;
  }

  /** The SCRIPT LOAD to send before retrying an EVALSHA of `sha`, or null if the body is unknown. */
  preloadScript(sha: string): Request[] | null {
    const body = this.scripts.get(sha.toLowerCase());
    return body === undefined ? null : [internalRequest(Kind.PRELOAD, encodeCommand(["SCRIPT", "LOAD", body]))];
  }

  /** FUNCTION LOADs of every library seen (a node that has one already refuses it harmlessly). */
  preloadLibraries(): Request[] | null {
    if (this.libraries.size === 0) return null;
    return [...this.libraries.values()].map((code) => internalRequest(Kind.PRELOAD, encodeCommand(["FUNCTION", "LOAD", code])));
  }

  private evict(): void {
    while (this.bytes > this.maxBytes && this.scripts.size > 0) {
      const [sha, body] = this.scripts.entries().next().value!;
      this.scripts.delete(sha);
      this.bytes -= body.length;
    }
  }
}

/** The `name=` of a library's shebang line, as Redis reads it. */
export function libraryName(code: Uint8Array): string | null {
  const nl = code.indexOf(10);
  const line = new TextDecoder().decode(nl < 0 ? code : code.subarray(0, nl));
  if (!line.startsWith("#!")) return null;
  for (const part of line.split(" ").slice(1)) if (part.startsWith("name=")) return part.slice(5) || null;
  return null;
}
