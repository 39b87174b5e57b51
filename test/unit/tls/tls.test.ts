// Which TLS handshakes are refused, on the client side of predixy and towards the cluster.

import { describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { peerRefusal } from "../../../src/tls/backend-tls.ts";
import { handshakeRefusal } from "../../../src/tls/server-tls.ts";

const err = (code: string) => Object.assign(new Error(code), { code });
const withCert = { getPeerCertificate: () => ({ subject: { CN: "c" } }) } as unknown as Socket<unknown>;
const noCert = { getPeerCertificate: () => ({}) } as unknown as Socket<unknown>;

describe("client handshakes", () => {
  test("not TLS at all is refused in every mode", () => {
    for (const mode of ["no", "optional", "yes"] as const) expect(handshakeRefusal(mode, noCert, false, err("EPROTO"))).toBe("EPROTO");
  });
  test("yes: any certificate error, none included, is refused", () => {
    expect(handshakeRefusal("yes", withCert, true, null)).toBeNull();
    expect(handshakeRefusal("yes", withCert, true, err("CERT_HAS_EXPIRED"))).toBe("CERT_HAS_EXPIRED");
    expect(handshakeRefusal("yes", noCert, true, err("UNABLE_TO_GET_ISSUER_CERT"))).toBe("UNABLE_TO_GET_ISSUER_CERT");
  });
  test("optional: no certificate is fine, a bad one is refused", () => {
    expect(handshakeRefusal("optional", noCert, true, err("UNABLE_TO_GET_ISSUER_CERT"))).toBeNull();
    expect(handshakeRefusal("optional", withCert, true, err("UNABLE_TO_VERIFY_LEAF_SIGNATURE"))).toBe("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    expect(handshakeRefusal("optional", withCert, true, null)).toBeNull();
  });
  test("no: certificates are not looked at", () => {
    expect(handshakeRefusal("no", withCert, true, err("CERT_HAS_EXPIRED"))).toBeNull();
  });
});

describe("node certificates", () => {
  test("full needs a good chain and name; ca a good chain; none anything", () => {
    const name = err("ERR_TLS_CERT_ALTNAME_INVALID"), chain = err("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    expect(peerRefusal("full", true, null)).toBeNull();
    expect(peerRefusal("full", false, name)).toBe("TLS certificate refused: ERR_TLS_CERT_ALTNAME_INVALID");
    expect(peerRefusal("full", true, chain)).toBe("TLS certificate refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    expect(peerRefusal("ca", false, name)).toBeNull();
    expect(peerRefusal("ca", true, chain)).toBe("TLS certificate refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    expect(peerRefusal("none", false, chain)).toBeNull();
  });
});
