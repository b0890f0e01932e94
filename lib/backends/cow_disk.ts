/**
 * A copy-on-write disk: reads come from an overlay where the guest wrote, else from the base
 * image, which is opened read-only and never modified. Two uses: `--block=FILE,overlay=OVERLAY`
 * (a persistent overlay file, our own format below) and `--block=FILE,snapshot` / `--snapshot`
 * (the same layer in an unlinked temporary file, gone when the launcher exits, as QEMU's -snapshot).
 *
 * Overlay format, version 1 (all integers little-endian):
 *   0     8  magic "LGTSCOW1"
 *   8     4  version (1)
 *   12    4  sector size (512)
 *   16    8  base size in bytes (a multiple of 512; must match the base at open)
 *   24    8  bitmap offset (4096)
 *   32    8  bitmap bytes (one bit per sector, bit i%8 of byte i/8 for sector i)
 *   40    8  data offset (1 MiB aligned): sector i lives at data offset + 512 i (a sparse file)
 *   48    2  base path length, then the base path as UTF-8 (what `overlay commit` writes into)
 * Crash safety: a write puts its data in the data area and sets its bits in memory only; FLUSH
 * makes the data durable (fdatasync), then writes the changed bitmap bytes and fdatasyncs again.
 * A bit on disk therefore always covers data that reached the disk: after a crash at any moment
 * the overlay holds every write a completed FLUSH covered, and unflushed first writes read as the
 * base (as a disk may lose writes it never confirmed).
 */
import { LaunchError } from "../support/errors.ts";
import type { BlockBackend } from "../virtio/block.ts";
import { FileDisk, hostErrorReason } from "./file_disk.ts";

const SECTOR = 512;
export const COW_MAGIC = "LGTSCOW1";
export const COW_VERSION = 1;
const HEADER_BYTES = 4096;
const DATA_ALIGN = 1 << 20;

/** The parsed header of an overlay file. */
export interface CowHeader {
  baseSizeBytes: number;
  bitmapOffset: number;
  bitmapBytes: number;
  dataOffset: number;
  basePath: string;
}

function layout(baseSizeBytes: number, basePath: string): CowHeader {
  const bitmapBytes = Math.ceil(baseSizeBytes / SECTOR / 8);
  const dataOffset = Math.ceil((HEADER_BYTES + bitmapBytes) / DATA_ALIGN) * DATA_ALIGN;
  return { baseSizeBytes, bitmapOffset: HEADER_BYTES, bitmapBytes, dataOffset, basePath };
}

function encodeHeader(h: CowHeader): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES);
  const v = new DataView(out.buffer);
  out.set(new TextEncoder().encode(COW_MAGIC), 0);
  v.setUint32(8, COW_VERSION, true);
  v.setUint32(12, SECTOR, true);
  v.setBigUint64(16, BigInt(h.baseSizeBytes), true);
  v.setBigUint64(24, BigInt(h.bitmapOffset), true);
  v.setBigUint64(32, BigInt(h.bitmapBytes), true);
  v.setBigUint64(40, BigInt(h.dataOffset), true);
  const path = new TextEncoder().encode(h.basePath).subarray(0, HEADER_BYTES - 64);
  v.setUint16(48, path.length, true);
  out.set(path, 50);
  return out;
}

/** Parses and checks an overlay header; throws Error with the reason. */
export function decodeHeader(bytes: Uint8Array): CowHeader {
  if (bytes.length < 64 || new TextDecoder().decode(bytes.subarray(0, 8)) !== COW_MAGIC) {
    throw new Error("not an lguest.ts overlay (bad magic)");
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(8, true) !== COW_VERSION) throw new Error(`overlay version ${v.getUint32(8, true)}`);
  if (v.getUint32(12, true) !== SECTOR) throw new Error("overlay sector size is not 512");
  const h: CowHeader = {
    baseSizeBytes: Number(v.getBigUint64(16, true)),
    bitmapOffset: Number(v.getBigUint64(24, true)),
    bitmapBytes: Number(v.getBigUint64(32, true)),
    dataOffset: Number(v.getBigUint64(40, true)),
    basePath: new TextDecoder().decode(
      bytes.subarray(50, 50 + Math.min(v.getUint16(48, true), bytes.length - 50)),
    ),
  };
  const want = layout(h.baseSizeBytes, h.basePath);
  if (
    h.baseSizeBytes % SECTOR !== 0 || h.bitmapOffset !== want.bitmapOffset ||
    h.bitmapBytes !== want.bitmapBytes ||
    h.dataOffset !== want.dataOffset
  ) {
    throw new Error("overlay header is inconsistent");
  }
  return h;
}

/** Reads exactly buf.length bytes at `offset` (zeros past the end of the file: holes). */
async function readAt(file: Deno.FsFile, offset: number, buf: Uint8Array): Promise<void> {
  await file.seek(offset, Deno.SeekMode.Start);
  let done = 0;
  while (done < buf.length) {
    const n = await file.read(buf.subarray(done));
    if (n === null) break;
    done += n;
  }
  buf.fill(0, done);
}

async function writeAt(file: Deno.FsFile, offset: number, data: Uint8Array): Promise<void> {
  await file.seek(offset, Deno.SeekMode.Start);
  for (let done = 0; done < data.length;) done += await file.write(data.subarray(done));
}

export interface CowDiskOptions {
  /** A persistent overlay file (created when missing); absent: a temporary snapshot layer. */
  overlayPath?: string;
}

/** A base image under a copy-on-write layer; the base is never written. */
export class CowDisk implements BlockBackend {
  readonly sizeBytes: number;
  readonly readOnly = false;
  readonly path: string;
  readonly #base: FileDisk;
  readonly #file: Deno.FsFile;
  readonly #header: CowHeader;
  readonly #bitmap: Uint8Array;
  readonly #persistent: boolean;
  /** Bitmap bytes changed since the last flush: [lo, hi) (hi = 0 when clean). */
  #dirtyLo = 0;
  #dirtyHi = 0;
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(
    base: FileDisk,
    file: Deno.FsFile,
    header: CowHeader,
    bitmap: Uint8Array,
    persistent: boolean,
  ) {
    this.#base = base;
    this.path = base.path;
    this.sizeBytes = base.sizeBytes;
    this.#file = file;
    this.#header = header;
    this.#bitmap = bitmap;
    this.#persistent = persistent;
  }

  /** Opens `basePath` read-only under an overlay; throws LaunchError naming the file at fault. */
  static async open(basePath: string, options: CowDiskOptions = {}): Promise<CowDisk> {
    const base = await FileDisk.open(basePath, { readOnly: true });
    try {
      const overlayPath = options.overlayPath;
      if (overlayPath === undefined) return await CowDisk.#temporary(base);
      return await CowDisk.#persistentOverlay(base, overlayPath);
    } catch (e) {
      await base.close();
      throw e;
    }
  }

  static async #temporary(base: FileDisk): Promise<CowDisk> {
    const path = await Deno.makeTempFile({ prefix: "lguest-snapshot-" });
    const file = await Deno.open(path, { read: true, write: true });
    // Unlinked at once: nothing is left behind, even after a SIGKILL.
    await Deno.remove(path);
    const header = layout(base.sizeBytes, "");
    return new CowDisk(base, file, header, new Uint8Array(header.bitmapBytes), false);
  }

  static async #persistentOverlay(base: FileDisk, overlayPath: string): Promise<CowDisk> {
    const fail = (reason: string) => new LaunchError(`Cannot use overlay file "${overlayPath}": ${reason}`);
    let file: Deno.FsFile;
    let created = false;
    try {
      file = await Deno.open(overlayPath, { read: true, write: true, createNew: true });
      created = true;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw fail(hostErrorReason(e));
      try {
        file = await Deno.open(overlayPath, { read: true, write: true });
      } catch (e2) {
        throw fail(hostErrorReason(e2));
      }
    }
    try {
      if (!(await file.tryLock(true))) throw fail("it is in use by another disk or launcher (locked)");
      let header: CowHeader;
      let bitmap: Uint8Array;
      if (created) {
        header = layout(base.sizeBytes, await Deno.realPath(base.path));
        bitmap = new Uint8Array(header.bitmapBytes);
        await writeAt(file, 0, encodeHeader(header));
        await writeAt(file, header.bitmapOffset, bitmap);
        await file.syncData();
      } else {
        const head = new Uint8Array(HEADER_BYTES);
        await readAt(file, 0, head);
        try {
          header = decodeHeader(head);
        } catch (e) {
          throw fail((e as Error).message);
        }
        if (header.baseSizeBytes !== base.sizeBytes) {
          throw fail(
            `it was made for a base of ${header.baseSizeBytes} bytes, but "${base.path}" has ${base.sizeBytes}`,
          );
        }
        bitmap = new Uint8Array(header.bitmapBytes);
        await readAt(file, header.bitmapOffset, bitmap);
      }
      return new CowDisk(base, file, header, bitmap, true);
    } catch (e) {
      file.close();
      if (created) await Deno.remove(overlayPath).catch(() => {});
      throw e;
    }
  }

  /** Sectors the overlay holds. */
  get allocatedSectors(): number {
    let n = 0;
    for (const b of this.#bitmap) for (let x = b; x !== 0; x &= x - 1) n++;
    return n;
  }

  #has(sector: number): boolean {
    return (this.#bitmap[sector >>> 3] & (1 << (sector & 7))) !== 0;
  }

  read(offset: number, buf: Uint8Array): Promise<void> {
    return this.#queue(async () => {
      this.#checkRange(offset, buf.length);
      const first = offset / SECTOR;
      const count = buf.length / SECTOR;
      // Runs of sectors from the same layer.
      for (let i = 0; i < count;) {
        const inOverlay = this.#has(first + i);
        let j = i + 1;
        while (j < count && this.#has(first + j) === inOverlay) j++;
        const part = buf.subarray(i * SECTOR, j * SECTOR);
        if (inOverlay) await readAt(this.#file, this.#header.dataOffset + (first + i) * SECTOR, part);
        else await this.#base.read((first + i) * SECTOR, part);
        i = j;
      }
    });
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.#queue(async () => {
      this.#checkRange(offset, data.length);
      await writeAt(this.#file, this.#header.dataOffset + offset, data);
      // The bits go to disk only at the next flush, after the data (see the header comment).
      const first = offset / SECTOR;
      const last = first + data.length / SECTOR - 1;
      for (let s = first; s <= last; s++) this.#bitmap[s >>> 3] |= 1 << (s & 7);
      const lo = first >>> 3;
      const hi = (last >>> 3) + 1;
      if (this.#dirtyHi === 0) {
        this.#dirtyLo = lo;
        this.#dirtyHi = hi;
      } else {
        this.#dirtyLo = Math.min(this.#dirtyLo, lo);
        this.#dirtyHi = Math.max(this.#dirtyHi, hi);
      }
    });
  }

  flush(): Promise<void> {
    return this.#queue(async () => {
      if (!this.#persistent || this.#dirtyHi === 0) return;
      await this.#file.syncData(); // the data first ...
      const lo = this.#dirtyLo;
      const hi = this.#dirtyHi;
      this.#dirtyHi = 0;
      await writeAt(this.#file, this.#header.bitmapOffset + lo, this.#bitmap.subarray(lo, hi));
      await this.#file.syncData(); // ... then the bits that point at it
    });
  }

  /** Flushes (a clean exit keeps every write, as a disk that is shut down cleanly), then closes. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush().catch(() => {});
    this.#closed = true;
    await this.#tail.catch(() => {});
    this.#file.close();
    await this.#base.close();
  }

  #checkRange(offset: number, len: number): void {
    if (this.#closed) throw new Error(`${this.path} is closed`);
    if (offset < 0 || offset % SECTOR !== 0 || len % SECTOR !== 0 || offset + len > this.sizeBytes) {
      throw new RangeError(`${this.path}: access outside the disk or not in whole sectors`);
    }
  }

  #queue(op: () => Promise<void>): Promise<void> {
    const run = this.#tail.then(op);
    this.#tail = run.catch(() => {});
    return run;
  }
}

/** Reads an overlay file's header and bitmap (for `deno task overlay`). */
export async function readOverlay(
  path: string,
): Promise<{ header: CowHeader; bitmap: Uint8Array; file: Deno.FsFile }> {
  const file = await Deno.open(path, { read: true, write: true });
  try {
    const head = new Uint8Array(HEADER_BYTES);
    await readAt(file, 0, head);
    const header = decodeHeader(head);
    const bitmap = new Uint8Array(header.bitmapBytes);
    await readAt(file, header.bitmapOffset, bitmap);
    return { header, bitmap, file };
  } catch (e) {
    file.close();
    throw e;
  }
}

/**
 * Writes every sector the overlay holds into `basePath` (fdatasync), then empties the overlay
 * (its bitmap cleared and synced). A crash part way leaves the overlay intact: commit again.
 * Returns the sectors written.
 */
export async function commitOverlay(overlayPath: string, basePath?: string): Promise<number> {
  const { header, bitmap, file } = await readOverlay(overlayPath);
  try {
    if (!(await file.tryLock(true))) throw new Error(`overlay "${overlayPath}" is in use`);
    const target = basePath ?? header.basePath;
    const base = await FileDisk.open(target);
    let written = 0;
    try {
      if (base.sizeBytes !== header.baseSizeBytes) {
        throw new Error(
          `base "${target}" has ${base.sizeBytes} bytes, the overlay expects ${header.baseSizeBytes}`,
        );
      }
      const sectors = header.baseSizeBytes / SECTOR;
      const buf = new Uint8Array(256 * SECTOR);
      for (let s = 0; s < sectors;) {
        if ((bitmap[s >>> 3] & (1 << (s & 7))) === 0) {
          s++;
          continue;
        }
        let e = s + 1;
        while (e < sectors && e - s < 256 && (bitmap[e >>> 3] & (1 << (e & 7))) !== 0) e++;
        const part = buf.subarray(0, (e - s) * SECTOR);
        await readAt(file, header.dataOffset + s * SECTOR, part);
        await base.write(s * SECTOR, part);
        written += e - s;
        s = e;
      }
      await base.flush();
    } finally {
      await base.close();
    }
    await discardInto(file, header);
    return written;
  } finally {
    file.close();
  }
}

/** Empties an overlay: every sector reads from the base again. */
export async function discardOverlay(overlayPath: string): Promise<void> {
  const { header, file } = await readOverlay(overlayPath);
  try {
    if (!(await file.tryLock(true))) throw new Error(`overlay "${overlayPath}" is in use`);
    await discardInto(file, header);
  } finally {
    file.close();
  }
}

async function discardInto(file: Deno.FsFile, header: CowHeader): Promise<void> {
  await writeAt(file, header.bitmapOffset, new Uint8Array(header.bitmapBytes));
  await file.syncData();
  await file.truncate(header.dataOffset); // frees the data blocks
  await file.syncData();
}
