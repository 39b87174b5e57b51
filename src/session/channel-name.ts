// Channel and pattern names kept as JS strings that hold every byte: one char per byte (latin1),
// so binary names stay distinct as Map keys and turn back into exactly the bytes they came from.

export function nameOf(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString("latin1");
}

export function bytesOf(name: string): Uint8Array {
  return Buffer.from(name, "latin1");
}
