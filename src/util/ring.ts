// A FIFO ring of object references that never allocates on push/shift once warmed up.

export class Ring<T> {
  private items: (T | undefined)[] = Array.from({ length: 16 });
  private head = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(x: T): void {
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) & (this.items.length - 1)] = x;
    this.count++;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const x = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & (this.items.length - 1);
    this.count--;
    return x;
  }

  /** The item `i` places from the oldest (0 <= i < size). */
  at(i: number): T {
    return this.items[(this.head + i) & (this.items.length - 1)] as T;
  }

  /** Visits the items, oldest first, without removing them. */
  forEach(fn: (x: T) => void): void {
    for (let i = 0; i < this.count; i++) fn(this.items[(this.head + i) & (this.items.length - 1)] as T);
  }

  private grow(): void {
    const next: (T | undefined)[] = Array.from({ length: this.items.length * 2 });
    for (let i = 0; i < this.count; i++) next[i] = this.items[(this.head + i) & (this.items.length - 1)];
    this.items = next;
    this.head = 0;
  }
}
