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

/**
 * One pcap file, written as frames are recorded. It can outlive the backend it captures: the
 * launcher opens it once per launch, so one capture covers every boot of a guest that reboots.
 */
export class PcapFile {
  readonly path: string;
  framesCaptured = 0;
  readonly #file: Deno.FsFile;
  readonly #buf = new Uint8Array(BUFFER_BYTES);
  readonly #view = new DataView(this.#buf.buffer);
  #used = 0;
  #failed = false;
  #closed = false;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.#file = file;
    const v = this.#view;
    v.setUint32(0, PCAP_MAGIC_MICROSECONDS, true);
    v.setUint16(4, 2, true);
    v.setUint16(6, 4, true);
    v.setUint32(16, SNAPLEN, true);
    v.setUint32(20, LINKTYPE_ETHERNET, true);
    this.#used = 24;
    this.#flush();
  }

  /** Creates (or truncates) `path` and writes the pcap file header. */
  static open(path: string): PcapFile {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { write: true, create: true, truncate: true });
    } catch (e) {
      throw new LaunchError(`Cannot open pcap file "${path}": ${hostErrorReason(e)}`);
    }
    return new PcapFile(path, file);
  }

  /** Adds one frame (cut to the snap length), stamped with the host's wall-clock time. */
  record(frame: Uint8Array): void {
    if (this.#failed || this.#closed) return;
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

  close(): void {
    if (this.#closed) return;
    clearTimeout(this.#flushTimer);
    this.#flush();
    this.#closed = true;
    try {
      this.#file.close();
    } catch { /* already closed */ }
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

/** A backend whose frames, both ways, are recorded in a PcapFile on their way through. */
export class PcapTap implements ClosableNetBackend {
  readonly file: PcapFile;
  readonly inner: ClosableNetBackend;
  readonly #ownsFile: boolean;

  /** `ownsFile`: closing the tap closes the file too (else the file outlives it). */
  constructor(file: PcapFile, inner: ClosableNetBackend, ownsFile = false) {
    this.file = file;
    this.inner = inner;
    this.#ownsFile = ownsFile;
  }

  /** Creates (or truncates) `path` and captures `inner`'s frames into it until the tap is closed. */
  static open(path: string, inner: ClosableNetBackend): PcapTap {
    return new PcapTap(PcapFile.open(path), inner, true);
  }

  send(frame: Uint8Array): void {
    this.file.record(frame);
    this.inner.send(frame);
  }

  onFrame(cb: (frame: Uint8Array) => void): void {
    this.inner.onFrame((frame) => {
      this.file.record(frame);
      cb(frame);
    });
  }

  describe(): string {
    return `${this.inner.describe()}\n  capturing to ${this.file.path}: ${this.file.framesCaptured} frames`;
  }

  async close(): Promise<void> {
    if (this.#ownsFile) this.file.close();
    await this.inner.close();
  }
}
