/**
 * A capture of a network card's frames, both ways, in the classic pcap format tcpdump and
 * Wireshark read (https://www.tcpdump.org/manpages/pcap-savefile.5.html: a 24-byte file header,
 * then per frame a 16-byte record header with microsecond timestamps; LINKTYPE_ETHERNET). It wraps
 * any NetBackend, so socket links and the user network are captured alike. Records are buffered
 * and written synchronously in chunks, so a capture costs no unbounded memory.
 */
import { LaunchError } from "../support/errors.ts";
import { warn } from "../support/log.ts";
import type { NetBackend } from "../virtio/net.ts";
import { hostErrorReason } from "./file_disk.ts";

const PCAP_MAGIC_MICROSECONDS = 0xA1B2C3D4;
const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 262144;
const BUFFER_BYTES = 256 << 10;
const FLUSH_MS = 200;

/** A backend that can be closed and described (SocketNet, UserNet). */
export interface ClosableNetBackend extends NetBackend {
  close(): Promise<void>;
  describe(): string;
}

export class PcapTap implements ClosableNetBackend {
  readonly path: string;
  readonly inner: ClosableNetBackend;
  framesCaptured = 0;
  readonly #file: Deno.FsFile;
  readonly #buf = new Uint8Array(BUFFER_BYTES);
  readonly #view = new DataView(this.#buf.buffer);
  #used = 0;
  #failed = false;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(path: string, file: Deno.FsFile, inner: ClosableNetBackend) {
    this.path = path;
    this.#file = file;
    this.inner = inner;
    const v = this.#view;
    v.setUint32(0, PCAP_MAGIC_MICROSECONDS, true);
    v.setUint16(4, 2, true);
    v.setUint16(6, 4, true);
    v.setUint32(16, SNAPLEN, true);
    v.setUint32(20, LINKTYPE_ETHERNET, true);
    this.#used = 24;
    this.#flush();
  }

  /** Creates (or truncates) `path` and captures `inner`'s frames into it. */
  static open(path: string, inner: ClosableNetBackend): PcapTap {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { write: true, create: true, truncate: true });
    } catch (e) {
      throw new LaunchError(`Cannot open pcap file "${path}": ${hostErrorReason(e)}`);
    }
    return new PcapTap(path, file, inner);
  }

  send(frame: Uint8Array): void {
    this.#record(frame);
    this.inner.send(frame);
  }

  onFrame(cb: (frame: Uint8Array) => void): void {
    this.inner.onFrame((frame) => {
      this.#record(frame);
      cb(frame);
    });
  }

  describe(): string {
    return `${this.inner.describe()}\n  capturing to ${this.path}: ${this.framesCaptured} frames`;
  }

  async close(): Promise<void> {
    clearTimeout(this.#flushTimer);
    this.#flush();
    try {
      this.#file.close();
    } catch { /* already closed */ }
    await this.inner.close();
  }

  #record(frame: Uint8Array): void {
    if (this.#failed) return;
    const incl = Math.min(frame.length, SNAPLEN);
    if (this.#used + 16 + incl > BUFFER_BYTES) this.#flush();
    const us = Math.round((performance.timeOrigin + performance.now()) * 1000);
    const v = this.#view;
    v.setUint32(this.#used, Math.floor(us / 1e6), true);
    v.setUint32(this.#used + 4, us % 1e6, true);
    v.setUint32(this.#used + 8, incl, true);
    v.setUint32(this.#used + 12, frame.length, true);
    this.#buf.set(frame.subarray(0, incl), this.#used + 16);
    this.#used += 16 + incl;
    this.framesCaptured++;
    if (this.#flushTimer === undefined) {
      this.#flushTimer = setTimeout(() => {
        this.#flushTimer = undefined;
        this.#flush();
      }, FLUSH_MS);
    }
  }

  #flush(): void {
    if (this.#used === 0 || this.#failed) return;
    try {
      for (let done = 0; done < this.#used;) {
        done += this.#file.writeSync(this.#buf.subarray(done, this.#used));
      }
    } catch (e) {
      this.#failed = true;
      warn(`pcap file "${this.path}": ${hostErrorReason(e)}; capture stopped`);
    }
    this.#used = 0;
  }
}
