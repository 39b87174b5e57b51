import { expect, test } from "bun:test";
import { peerKey } from "../../../src/client/receive-queues.ts";

test("one key for an address however it is written (as /proc/net/tcp6 and Bun's remoteAddress may differ)", () => {
  expect(peerKey("::ffff:127.0.0.1", 5000)).toBe(peerKey("127.0.0.1", 5000));
  expect(peerKey("::1", 1)).toBe("0000:0000:0000:0000:0000:0000:0000:0001|1");
  expect(peerKey("FE80::1:2", 1)).toBe(peerKey("fe80:0:0:0:0:0:1:2", 1));
  expect(peerKey("127.0.0.1", 1)).not.toBe(peerKey("127.0.0.1", 2));
});
