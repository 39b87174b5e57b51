// Fixed replies, encoded once.

const enc = (s: string) => new TextEncoder().encode(s);

export const OK = enc("+OK\r\n");
export const PONG = enc("+PONG\r\n");
export const NULL_BULK = enc("$-1\r\n");

export const ERR_NO_NODE = enc("-CLUSTERDOWN Hash slot not served\r\n");
export const ERR_NOAUTH = enc("-NOAUTH Authentication required.\r\n");
export const ERR_WRONGPASS = enc("-WRONGPASS invalid username-password pair or user is disabled.\r\n");
export const ERR_NOPASS = enc("-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n");
export const ERR_SYNTAX = enc("-ERR syntax error\r\n");
export const ERR_SELECT = enc("-ERR SELECT is not allowed in cluster mode\r\n");
export const ERR_MAX_CLIENTS = enc("-ERR max number of clients reached\r\n");

/** An error reply built at run time (rare paths only). */
export function errorReply(message: string): Uint8Array {
  return enc(`-${message.replace(/[\r\n]+/g, " ")}\r\n`);
}

export function bulkReply(bytes: Uint8Array): Uint8Array {
  const head = enc(`$${bytes.length}\r\n`);
  const out = new Uint8Array(head.length + bytes.length + 2);
  out.set(head, 0);
  out.set(bytes, head.length);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

export function intReply(n: number): Uint8Array {
  return enc(`:${n}\r\n`);
}
