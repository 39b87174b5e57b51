// Bytes waiting, unread, in each client socket's receive buffer (Linux /proc/net/tcp): what a client had sent before a shutdown.

import { readFileSync } from "node:fs";

/**
 * For the established connections to local `port`: the bytes in each one's receive queue,
 * keyed by peerKey(remote address, remote port). Null where /proc/net is not there (not Linux).
 */
export function receiveQueues(port: number): Map<string, number> | null {
  const out = new Map<string, number>();
  let found = false;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    found = true;
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue …
      const f = line.trim().split(/\s+/);
      if (f.length < 5) continue;
      const [localHex, localPort] = f[1].split(":");
      const [remoteHex, remotePort] = f[2].split(":");
      if (parseInt(localPort, 16) !== port || localHex === undefined) continue;
      // 01 ESTABLISHED, 08 CLOSE_WAIT (the peer sent FIN; what it sent before is still there).
      if (f[3] !== "01" && f[3] !== "08") continue;
      const rx = parseInt(f[4].split(":")[1], 16);
      out.set(peerKey(hexAddress(remoteHex), parseInt(remotePort, 16)), rx);
    }
  }
  return found ? out : null;
}

/** One key for an address however it is written: IPv4, IPv4-mapped IPv6, or IPv6 (expanded). */
export function peerKey(address: string, port: number): string {
  return `${canonical(address)}|${port}`;
}

function canonical(address: string): string {
  const a = address.toLowerCase();
  if (!a.includes(":")) return a;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) return mapped[1];
  const [head, tail = ""] = a.split("::");
  const h = head ? head.split(":") : [];
  const t = a.includes("::") && tail ? tail.split(":") : [];
  const groups = a.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  return groups.map((g) => g.padStart(4, "0")).join(":");
}

/** /proc/net/tcp{,6} address hex (host byte order per 32-bit word) → address text. */
function hexAddress(hex: string): string {
  const words: number[] = [];
  for (let i = 0; i < hex.length; i += 8) {
    const w = parseInt(hex.slice(i, i + 8), 16);
    // Little-endian words on the machines this runs on: byte 0 is the low byte.
    words.push(((w & 0xff) << 24 | (w >> 8 & 0xff) << 16 | (w >> 16 & 0xff) << 8 | (w >>> 24 & 0xff)) >>> 0);
  }
  const v4 = (w: number) => `${w >>> 24}.${w >> 16 & 0xff}.${w >> 8 & 0xff}.${w & 0xff}`;
  if (words.length === 1) return v4(words[0]);
  if (words[0] === 0 && words[1] === 0 && words[2] === 0xffff) return v4(words[3]);
  const groups: string[] = [];
  for (const w of words) groups.push((w >>> 16).toString(16).padStart(4, "0"), (w & 0xffff).toString(16).padStart(4, "0"));
  return groups.join(":");
}
