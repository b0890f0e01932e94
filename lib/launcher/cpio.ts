/**
 * The "newc" cpio format (magic 070701) that Linux unpacks as an initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst), plus gzip through the Web
 * CompressionStream. Writes directories, regular files, symlinks and device nodes; no hard links.
 */

/** File type bits of `mode`, as in stat(2). */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;

const NEWC_MAGIC = "070701";
const NEWC_CRC_MAGIC = "070702";
const HEADER_SIZE = 110;
const TRAILER_NAME = "TRAILER!!!";

/** One archive member. Names are relative ("bin/sh"), as GNU cpio writes them. */
export interface CpioEntry {
  name: string;
  /** File type and permission bits. */
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  nlink: number;
  ino: number;
  rdevMajor: number;
  rdevMinor: number;
  /** File contents, or a symlink's target. */
  data: Uint8Array;
}

/** Builds a newc archive in memory; parent directories are added automatically, once each. */
export class CpioWriter {
  #chunks: Uint8Array[] = [];
  #names = new Set<string>();
  #nextIno = 1;
  #mtime: number;
  #finished = false;

  /** `mtime` stamps every entry (default 0), so the same inputs give the same bytes. */
  constructor(options: { mtime?: number } = {}) {
    this.#mtime = options.mtime ?? 0;
  }

  addDirectory(name: string, perm = 0o755): void {
    const path = this.#path(name);
    if (this.#names.has(path)) return;
    this.#ensureParents(path);
    this.#append(path, S_IFDIR | perm, new Uint8Array(0), 2);
  }

  addFile(name: string, data: Uint8Array, perm = 0o644): void {
    const path = this.#newPath(name);
    this.#append(path, S_IFREG | perm, data, 1);
  }

  addSymlink(name: string, target: string): void {
    const path = this.#newPath(name);
    this.#append(path, S_IFLNK | 0o777, new TextEncoder().encode(target), 1);
  }

  addCharDevice(name: string, major: number, minor: number, perm = 0o600): void {
    const path = this.#newPath(name);
    this.#append(path, S_IFCHR | perm, new Uint8Array(0), 1, major, minor);
  }

  /** Appends the trailer and returns the archive; the writer cannot be used afterwards. */
  finish(): Uint8Array {
    if (this.#finished) throw new Error("CpioWriter.finish() called twice");
    this.#finished = true;
    this.#chunks.push(encodeEntry(TRAILER_NAME, { mode: 0, ino: 0, nlink: 1, mtime: 0 }, new Uint8Array(0)));
    const total = this.#chunks.reduce((n, c) => n + c.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of this.#chunks) {
      out.set(c, at);
      at += c.length;
    }
    this.#chunks = [];
    return out;
  }

  #path(name: string): string {
    if (this.#finished) throw new Error("CpioWriter used after finish()");
    const path = name.replace(/^\/+/, "").replace(/\/+$/, "");
    if (path === "" || path.split("/").some((p) => p === "" || p === "." || p === "..")) {
      throw new Error(`invalid cpio member name "${name}"`);
    }
    return path;
  }

  #newPath(name: string): string {
    const path = this.#path(name);
    if (this.#names.has(path)) throw new Error(`cpio member "${path}" added twice`);
    this.#ensureParents(path);
    return path;
  }

  #ensureParents(path: string): void {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (!this.#names.has(dir)) this.#append(dir, S_IFDIR | 0o755, new Uint8Array(0), 2);
    }
  }

  #append(path: string, mode: number, data: Uint8Array, nlink: number, rdevMajor = 0, rdevMinor = 0): void {
    this.#names.add(path);
    const header = { mode, ino: this.#nextIno++, nlink, mtime: this.#mtime, rdevMajor, rdevMinor };
    this.#chunks.push(encodeEntry(path, header, data));
  }
}

function encodeEntry(
  name: string,
  h: { mode: number; ino: number; nlink: number; mtime: number; rdevMajor?: number; rdevMinor?: number },
  data: Uint8Array,
): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const namesize = nameBytes.length + 1;
  const dataStart = align4(HEADER_SIZE + namesize);
  const out = new Uint8Array(dataStart + align4(data.length));
  const fields = [
    h.ino,
    h.mode,
    0, // uid: root
    0, // gid: root
    h.nlink,
    h.mtime,
    data.length,
    0, // devmajor
    0, // devminor
    h.rdevMajor ?? 0,
    h.rdevMinor ?? 0,
    namesize,
    0, // check: only used by the 070702 format
  ];
  const header = NEWC_MAGIC +
    fields.map((f) => (f >>> 0).toString(16).toUpperCase().padStart(8, "0")).join("");
  out.set(new TextEncoder().encode(header), 0);
  out.set(nameBytes, HEADER_SIZE);
  out.set(data, dataStart);
  return out;
}

/** Reads a newc (070701 or 070702) archive up to its trailer. Throws on a malformed archive. */
export function parseCpio(archive: Uint8Array): CpioEntry[] {
  const entries: CpioEntry[] = [];
  const decoder = new TextDecoder();
  let at = 0;
  for (;;) {
    if (at + HEADER_SIZE > archive.length) {
      throw new Error(`cpio archive truncated at byte ${at}: no trailer`);
    }
    const header = decoder.decode(archive.subarray(at, at + HEADER_SIZE));
    const magic = header.slice(0, 6);
    if (magic !== NEWC_MAGIC && magic !== NEWC_CRC_MAGIC) {
      throw new Error(`cpio archive has bad magic "${magic}" at byte ${at}: not newc`);
    }
    const field = (i: number) => {
      const text = header.slice(6 + i * 8, 14 + i * 8);
      if (!/^[0-9a-fA-F]{8}$/.test(text)) {
        throw new Error(`cpio header at byte ${at} has a bad field "${text}"`);
      }
      return parseInt(text, 16);
    };
    const namesize = field(11);
    const filesize = field(6);
    const dataStart = at + align4(HEADER_SIZE + namesize);
    if (namesize < 1 || dataStart + filesize > archive.length) {
      throw new Error(`cpio archive truncated in the member at byte ${at}`);
    }
    const name = decoder.decode(archive.subarray(at + HEADER_SIZE, at + HEADER_SIZE + namesize - 1));
    if (name === TRAILER_NAME) return entries;
    entries.push({
      name,
      ino: field(0),
      mode: field(1),
      uid: field(2),
      gid: field(3),
      nlink: field(4),
      mtime: field(5),
      rdevMajor: field(9),
      rdevMinor: field(10),
      data: archive.slice(dataStart, dataStart + filesize),
    });
    at = dataStart + align4(filesize);
  }
}

/** gzip-compresses `bytes` (what Linux's initramfs unpacker expects with CONFIG_RD_GZIP). */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  return await pipe(bytes, new CompressionStream("gzip"));
}

/** Undoes `gzip`. */
export async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  return await pipe(bytes, new DecompressionStream("gzip"));
}

async function pipe(
  bytes: Uint8Array,
  transform: CompressionStream | DecompressionStream,
): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(transform);
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
