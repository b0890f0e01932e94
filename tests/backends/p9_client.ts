/**
 * A minimal 9P2000.L client for the tests: builds T-messages byte by byte (so tests can also build
 * broken ones) and decodes the replies the server gives.
 */
import type { P9Server } from "../../lib/backends/p9_server.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Builds one message: fields appended in order, size and tag filled in by `bytes(type, tag)`. */
export class Msg {
  #parts: number[] = [];
  u8(v: number): this {
    this.#parts.push(v & 0xFF);
    return this;
  }
  u16(v: number): this {
    return this.u8(v).u8(v >> 8);
  }
  u32(v: number): this {
    return this.u16(v & 0xFFFF).u16(v >>> 16);
  }
  u64(v: number): this {
    return this.u32(v % 0x1_0000_0000).u32(Math.floor(v / 0x1_0000_0000));
  }
  str(s: string): this {
    const b = enc.encode(s);
    this.u16(b.length);
    for (const x of b) this.u8(x);
    return this;
  }
  raw(b: Uint8Array): this {
    for (const x of b) this.u8(x);
    return this;
  }
  bytes(type: number, tag = 1): Uint8Array {
    const size = 7 + this.#parts.length;
    const out = new Uint8Array(size);
    const v = new DataView(out.buffer);
    v.setUint32(0, size, true);
    v.setUint8(4, type);
    v.setUint16(5, tag, true);
    out.set(this.#parts, 7);
    return out;
  }
}

/** A decoded reply: its type, tag and a reader over the body. */
export class Reply {
  readonly type: number;
  readonly tag: number;
  readonly size: number;
  #pos = 7;
  readonly #v: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.#v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.size = this.#v.getUint32(0, true);
    this.type = bytes[4];
    this.tag = this.#v.getUint16(5, true);
  }
  u8(): number {
    return this.#v.getUint8(this.#pos++);
  }
  u16(): number {
    const v = this.#v.getUint16(this.#pos, true);
    this.#pos += 2;
    return v;
  }
  u32(): number {
    const v = this.#v.getUint32(this.#pos, true);
    this.#pos += 4;
    return v;
  }
  u64(): number {
    const lo = this.u32();
    return this.u32() * 0x1_0000_0000 + lo;
  }
  str(): string {
    const n = this.u16();
    const s = dec.decode(this.bytes.subarray(this.#pos, this.#pos + n));
    this.#pos += n;
    return s;
  }
  qid(): { type: number; version: number; path: number } {
    return { type: this.u8(), version: this.u32(), path: this.u64() };
  }
  take(n: number): Uint8Array {
    const b = this.bytes.slice(this.#pos, this.#pos + n);
    this.#pos += n;
    return b;
  }
  /** The errno of an Rlerror, or -1. */
  get errno(): number {
    return this.type === 7 ? this.#v.getUint32(7, true) : -1;
  }
}

/** Sends `msg` to `server` and decodes the reply (a copy: the server reuses its buffer). */
export async function call(server: P9Server, msg: Uint8Array, replyCapacity = 1 << 20): Promise<Reply> {
  return new Reply((await server.handle(msg, replyCapacity)).slice());
}
