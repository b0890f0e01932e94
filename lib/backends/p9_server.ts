/**
 * A 9P2000.L file server over a confined HostFs: the protocol Linux's 9p filesystem speaks over
 * 9pnet_virtio (the T/R message formats of Linux's include/net/9p/9p.h and QEMU's virtfs docs).
 * Served: version, attach, walk, lopen, lcreate, read, write, readdir, getattr, setattr, mkdir,
 * unlinkat, renameat, rename, remove, symlink, readlink, link, statfs, fsync, lock/getlock
 * (always granted: no host locks), flush and clunk. xattrwalk answers ENODATA (no extended
 * attributes), mknod and auth are refused. Every message is untrusted: a field that runs past
 * the message, a bad fid, a bad name or count gets Rlerror, never an exception; at most
 * MAX_FIDS fids and MAX_OPEN_FILES open files per session bound host resources.
 */
import {
  checkName,
  EBADF,
  EINVAL,
  EISDIR,
  EMFILE,
  ENODATA,
  ENOENT,
  ENOTDIR,
  EOPNOTSUPP,
  EPERM,
  EPROTO,
  EROFS,
  errnoOf,
  type HostFs,
  HostFsError,
  type HostStat,
} from "./host_fs.ts";

// ---- Message types (include/net/9p/9p.h) ----

export const P9_RLERROR = 7;
export const P9_TSTATFS = 8;
export const P9_TLOPEN = 12;
export const P9_TLCREATE = 14;
export const P9_TSYMLINK = 16;
export const P9_TMKNOD = 18;
export const P9_TRENAME = 20;
export const P9_TREADLINK = 22;
export const P9_TGETATTR = 24;
export const P9_TSETATTR = 26;
export const P9_TXATTRWALK = 30;
export const P9_TXATTRCREATE = 32;
export const P9_TREADDIR = 40;
export const P9_TFSYNC = 50;
export const P9_TLOCK = 52;
export const P9_TGETLOCK = 54;
export const P9_TLINK = 70;
export const P9_TMKDIR = 72;
export const P9_TRENAMEAT = 74;
export const P9_TUNLINKAT = 76;
export const P9_TVERSION = 100;
export const P9_TAUTH = 102;
export const P9_TATTACH = 104;
export const P9_TFLUSH = 108;
export const P9_TWALK = 110;
export const P9_TREAD = 116;
export const P9_TWRITE = 118;
export const P9_TCLUNK = 120;
export const P9_TREMOVE = 122;

export const P9_NOTAG = 0xFFFF;
export const P9_NOFID = 0xFFFF_FFFF;
const P9_QTDIR = 0x80;
const P9_QTSYMLINK = 0x02;
const P9_STATS_BASIC = 0x7FF;
const P9_MAXWELEM = 16;
/** V9FS_MAGIC, what statfs reports as f_type. */
const V9FS_MAGIC = 0x01021997;

// Tsetattr valid bits.
const P9_ATTR_MODE = 0x1;
const P9_ATTR_UID = 0x2;
const P9_ATTR_GID = 0x4;
const P9_ATTR_SIZE = 0x8;
const P9_ATTR_ATIME = 0x10;
const P9_ATTR_MTIME = 0x20;
const P9_ATTR_CTIME = 0x40;
const P9_ATTR_ATIME_SET = 0x80;
const P9_ATTR_MTIME_SET = 0x100;

// Linux open(2) flags (x86) as 9P2000.L carries them.
const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_RDWR = 2;
const O_TRUNC = 0o1000;
const O_APPEND = 0o2000;
const AT_REMOVEDIR = 0x200;

/** The size header of every message: size[4] type[1] tag[2]. */
export const P9_HEADER_BYTES = 7;
/** Read/write/readdir reply overhead: size[4] type[1] tag[2] count[4]. */
const IO_HEADER_BYTES = 11;
/** Largest msize we agree to (Linux 6.1's virtio transport allows up to about 500 KiB). */
export const P9_MAX_MSIZE = 512 << 10;
/** Smallest msize that leaves room for a useful read. */
const P9_MIN_MSIZE = 4096;
export const MAX_FIDS = 4096;
export const MAX_OPEN_FILES = 256;
/** Entries listed per directory (a bigger directory is truncated for the guest). */
export const MAX_DIR_ENTRIES = 65536;

/** A field ran past the end of the message (answered with Rlerror EPROTO). */
class DecodeError extends Error {}

/** Little-endian reader over one T-message. */
class Reader {
  #pos = P9_HEADER_BYTES;
  readonly #view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  #need(n: number): number {
    const at = this.#pos;
    if (at + n > this.bytes.length) throw new DecodeError("message too short");
    this.#pos = at + n;
    return at;
  }
  u8(): number {
    return this.#view.getUint8(this.#need(1));
  }
  u16(): number {
    return this.#view.getUint16(this.#need(2), true);
  }
  u32(): number {
    return this.#view.getUint32(this.#need(4), true);
  }
  /** A u64 as a number; values past 2^53 (no file is that large) are refused. */
  u64(): number {
    const at = this.#need(8);
    const lo = this.#view.getUint32(at, true);
    const hi = this.#view.getUint32(at + 4, true);
    if (hi > 0x1F_FFFF) throw new HostFsError(EINVAL, "64-bit value out of range");
    return hi * 0x1_0000_0000 + lo;
  }
  str(): string {
    const n = this.u16();
    const at = this.#need(n);
    try {
      return decoder.decode(this.bytes.subarray(at, at + n));
    } catch {
      throw new HostFsError(EINVAL, "name is not UTF-8");
    }
  }
  bytesOf(n: number): Uint8Array {
    const at = this.#need(n);
    return this.bytes.subarray(at, at + n);
  }
}

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** Little-endian writer of one R-message into a buffer of the negotiated size. */
class Writer {
  pos = P9_HEADER_BYTES;
  readonly #view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get room(): number {
    return this.bytes.length - this.pos;
  }
  #take(n: number): number {
    const at = this.pos;
    if (at + n > this.bytes.length) throw new HostFsError(EINVAL, "reply larger than the buffer");
    this.pos = at + n;
    return at;
  }
  u8(v: number): void {
    this.#view.setUint8(this.#take(1), v);
  }
  u16(v: number): void {
    this.#view.setUint16(this.#take(2), v, true);
  }
  u32(v: number): void {
    this.#view.setUint32(this.#take(4), v >>> 0, true);
  }
  u64(v: number): void {
    const at = this.#take(8);
    const n = Math.max(0, Math.floor(v));
    this.#view.setUint32(at, n % 0x1_0000_0000, true);
    this.#view.setUint32(at + 4, Math.floor(n / 0x1_0000_0000) >>> 0, true);
  }
  str(s: string): void {
    const b = encoder.encode(s);
    this.u16(b.length);
    this.bytes.set(b, this.#take(b.length));
  }
  qid(s: HostStat): void {
    this.u8(s.isDirectory ? P9_QTDIR : s.isSymlink ? P9_QTSYMLINK : 0);
    this.u32(0); // version: Linux's cache=none does not use it
    this.u64(s.ino);
  }
  finish(type: number, tag: number): Uint8Array {
    this.#view.setUint32(0, this.pos, true);
    this.#view.setUint8(4, type);
    this.#view.setUint16(5, tag, true);
    return this.bytes.subarray(0, this.pos);
  }
}

interface Fid {
  parts: string[];
  /** An open regular file (lopen/lcreate). */
  file: Deno.FsFile | null;
  /** Opened as a directory: the listing taken at readdir offset 0. */
  dir: { names: string[] } | null;
  opened: boolean;
  writable: boolean;
  append: boolean;
}

/** One 9P session's state; `handle` answers each T-message with its R-message. */
export class P9Server {
  readonly fs: HostFs;
  #msize = P9_MAX_MSIZE;
  readonly #fids = new Map<number, Fid>();
  #openFiles = 0;
  /** Reply buffer, reused: requests are served one at a time. */
  #reply = new Uint8Array(P9_MAX_MSIZE);

  constructor(fs: HostFs) {
    this.fs = fs;
  }

  /** The msize the last Tversion agreed (P9_MAX_MSIZE before any). */
  get msize(): number {
    return this.#msize;
  }

  get fidCount(): number {
    return this.#fids.size;
  }

  /** Closes every fid (device reset, or a new Tversion). */
  reset(): void {
    for (const f of this.#fids.values()) this.#closeFid(f);
    this.#fids.clear();
    this.#openFiles = 0;
  }

  /**
   * Answers one complete T-message (`msg` holds exactly its `size` bytes, at least 7) with an
   * R-message of at most `replyCapacity` bytes. The result is a view of a reused buffer, valid
   * until the next call. Never throws for anything in the message.
   */
  async handle(msg: Uint8Array, replyCapacity: number): Promise<Uint8Array> {
    const type = msg[4];
    const tag = msg[5] | (msg[6] << 8);
    const cap = Math.max(IO_HEADER_BYTES, Math.min(replyCapacity, this.#msize, this.#reply.length));
    const w = new Writer(this.#reply.subarray(0, cap));
    try {
      const r = new Reader(msg);
      const rtype = await this.#dispatch(type, r, w);
      return w.finish(rtype, tag);
    } catch (e) {
      const errno = e instanceof DecodeError ? EPROTO : errnoOf(e);
      const err = new Writer(this.#reply.subarray(0, IO_HEADER_BYTES));
      err.u32(errno);
      return err.finish(P9_RLERROR, tag);
    }
  }

  #fid(n: number): Fid {
    const f = this.#fids.get(n);
    if (f === undefined) throw new HostFsError(EBADF, `unknown fid ${n}`);
    return f;
  }

  #newFid(n: number, parts: string[]): Fid {
    if (n === P9_NOFID) throw new HostFsError(EBADF, "NOFID");
    if (this.#fids.has(n)) throw new HostFsError(EBADF, `fid ${n} in use`);
    if (this.#fids.size >= MAX_FIDS) throw new HostFsError(EMFILE, "too many fids");
    const f: Fid = { parts, file: null, dir: null, opened: false, writable: false, append: false };
    this.#fids.set(n, f);
    return f;
  }

  #closeFid(f: Fid): void {
    if (f.file !== null) {
      try {
        f.file.close();
      } catch { /* already closed */ }
      f.file = null;
      this.#openFiles--;
    }
    f.dir = null;
    f.opened = false;
  }

  #changing(): void {
    if (this.fs.readOnly) throw new HostFsError(EROFS, "read-only share");
  }

  async #statOf(f: Fid): Promise<HostStat> {
    if (f.file !== null) {
      // Also right for a file unlinked while open.
      const i = await f.file.stat();
      return {
        isDirectory: false,
        isFile: true,
        isSymlink: false,
        mode: i.mode ?? 0o100644,
        uid: i.uid ?? 0,
        gid: i.gid ?? 0,
        nlink: i.nlink ?? 1,
        rdev: i.rdev ?? 0,
        size: i.size,
        blksize: i.blksize ?? 4096,
        blocks: i.blocks ?? 0,
        dev: i.dev,
        ino: i.ino ?? 0,
        atimeMs: i.atime?.getTime() ?? 0,
        mtimeMs: i.mtime?.getTime() ?? 0,
        ctimeMs: i.ctime?.getTime() ?? 0,
      };
    }
    return await this.fs.stat(f.parts);
  }

  /** Serves one request; returns the R type (T type + 1). */
  async #dispatch(type: number, r: Reader, w: Writer): Promise<number> {
    switch (type) {
      case P9_TVERSION: {
        const msize = r.u32();
        const version = r.str();
        this.reset();
        this.#msize = Math.max(P9_MIN_MSIZE, Math.min(msize, P9_MAX_MSIZE));
        w.u32(this.#msize);
        w.str(version === "9P2000.L" ? "9P2000.L" : "unknown");
        return type + 1;
      }
      case P9_TAUTH:
        throw new HostFsError(EOPNOTSUPP, "no authentication");
      case P9_TATTACH: {
        const fid = r.u32();
        r.u32(); // afid
        r.str(); // uname
        r.str(); // aname: there is one tree per device
        const root = await this.fs.stat([]);
        this.#newFid(fid, []);
        w.qid(root);
        return type + 1;
      }
      case P9_TFLUSH:
        r.u16(); // oldtag: requests are answered in order, so it was answered already
        return type + 1;
      case P9_TWALK:
        return await this.#walk(r, w);
      case P9_TCLUNK: {
        const n = r.u32();
        const f = this.#fid(n);
        this.#closeFid(f);
        this.#fids.delete(n);
        return type + 1;
      }
      case P9_TLOPEN:
        return await this.#lopen(r, w);
      case P9_TLCREATE: {
        const n = r.u32();
        const name = r.str();
        const flags = r.u32();
        const mode = r.u32();
        r.u32(); // gid
        const f = this.#fid(n);
        if (f.opened) throw new HostFsError(EINVAL, "fid already open");
        this.#changing();
        if (this.#openFiles >= MAX_OPEN_FILES) throw new HostFsError(EMFILE, "too many open files");
        const { file, stat } = await this.fs.createFile(f.parts, name, mode);
        f.parts = [...f.parts, name];
        f.file = file;
        f.opened = true;
        f.writable = true;
        f.append = (flags & O_APPEND) !== 0;
        this.#openFiles++;
        w.qid(stat);
        w.u32(0);
        return type + 1;
      }
      case P9_TREAD:
        return await this.#read(r, w);
      case P9_TWRITE:
        return await this.#write(r, w);
      case P9_TREADDIR:
        return await this.#readdir(r, w);
      case P9_TGETATTR: {
        const f = this.#fid(r.u32());
        r.u64(); // request_mask: we always return the basic set
        const s = await this.#statOf(f);
        w.u64(P9_STATS_BASIC);
        w.qid(s);
        w.u32(s.mode);
        w.u32(s.uid);
        w.u32(s.gid);
        w.u64(s.nlink);
        w.u64(s.rdev);
        w.u64(s.size);
        w.u64(s.blksize);
        w.u64(s.blocks);
        for (const ms of [s.atimeMs, s.mtimeMs, s.ctimeMs, 0]) {
          w.u64(Math.floor(ms / 1000));
          w.u64((ms % 1000) * 1_000_000);
        }
        w.u64(0); // gen
        w.u64(0); // data_version
        return type + 1;
      }
      case P9_TSETATTR:
        return await this.#setattr(r);
      case P9_TSTATFS: {
        this.#fid(r.u32());
        const s = await this.fs.statfs();
        w.u32(V9FS_MAGIC);
        w.u32(s.bsize);
        w.u64(s.blocks);
        w.u64(s.bfree);
        w.u64(s.bavail);
        w.u64(s.files);
        w.u64(s.ffree);
        w.u64(0); // fsid
        w.u32(255); // namelen
        return type + 1;
      }
      case P9_TFSYNC: {
        const f = this.#fid(r.u32());
        const datasync = r.u32();
        if (f.file !== null && f.writable) {
          if (datasync !== 0) await f.file.syncData();
          else await f.file.sync();
        }
        return type + 1;
      }
      case P9_TMKDIR: {
        const f = this.#fid(r.u32());
        const name = r.str();
        const mode = r.u32();
        r.u32(); // gid
        this.#changing();
        w.qid(await this.fs.mkdir(f.parts, name, mode));
        return type + 1;
      }
      case P9_TSYMLINK: {
        const f = this.#fid(r.u32());
        const name = r.str();
        const target = r.str();
        r.u32(); // gid
        this.#changing();
        w.qid(await this.fs.symlink(f.parts, name, target));
        return type + 1;
      }
      case P9_TREADLINK: {
        const f = this.#fid(r.u32());
        w.str(await this.fs.readLink(f.parts));
        return type + 1;
      }
      case P9_TLINK: {
        const dir = this.#fid(r.u32());
        const target = this.#fid(r.u32());
        const name = r.str();
        this.#changing();
        await this.fs.link(target.parts, dir.parts, name);
        return type + 1;
      }
      case P9_TUNLINKAT: {
        const dir = this.#fid(r.u32());
        const name = r.str();
        const flags = r.u32();
        this.#changing();
        await this.fs.unlink(dir.parts, name, (flags & AT_REMOVEDIR) !== 0);
        return type + 1;
      }
      case P9_TRENAMEAT: {
        const from = this.#fid(r.u32());
        const oldName = r.str();
        const to = this.#fid(r.u32());
        const newName = r.str();
        this.#changing();
        await this.fs.rename(from.parts, oldName, to.parts, newName);
        this.#renamed([...from.parts, oldName], [...to.parts, newName]);
        return type + 1;
      }
      case P9_TRENAME: {
        const f = this.#fid(r.u32());
        const dir = this.#fid(r.u32());
        const name = r.str();
        this.#changing();
        if (f.parts.length === 0) throw new HostFsError(EINVAL, "cannot rename the root");
        const oldParts = f.parts;
        await this.fs.rename(oldParts.slice(0, -1), oldParts[oldParts.length - 1], dir.parts, name);
        this.#renamed(oldParts, [...dir.parts, name]);
        return type + 1;
      }
      case P9_TREMOVE: {
        const n = r.u32();
        const f = this.#fid(n);
        try {
          this.#changing();
          if (f.parts.length === 0) throw new HostFsError(EINVAL, "cannot remove the root");
          const s = await this.fs.stat(f.parts);
          await this.fs.unlink(f.parts.slice(0, -1), f.parts[f.parts.length - 1], s.isDirectory);
        } finally {
          // Tremove clunks the fid even when the remove fails.
          this.#closeFid(f);
          this.#fids.delete(n);
        }
        return type + 1;
      }
      case P9_TXATTRWALK:
        this.#fid(r.u32());
        r.u32();
        r.str();
        throw new HostFsError(ENODATA, "no extended attributes");
      case P9_TXATTRCREATE:
        throw new HostFsError(EOPNOTSUPP, "no extended attributes");
      case P9_TLOCK: {
        this.#fid(r.u32());
        r.u8(); // type
        r.u32(); // flags
        r.u64(); // start
        r.u64(); // length
        r.u32(); // proc_id
        r.str(); // client_id
        w.u8(0); // P9_LOCK_SUCCESS: locks are the guest's business
        return type + 1;
      }
      case P9_TGETLOCK: {
        this.#fid(r.u32());
        r.u8();
        const start = r.u64();
        const length = r.u64();
        const procId = r.u32();
        const client = r.str();
        w.u8(2); // F_UNLCK: nobody holds a conflicting lock
        w.u64(start);
        w.u64(length);
        w.u32(procId);
        w.str(client);
        return type + 1;
      }
      case P9_TMKNOD:
        throw new HostFsError(EPERM, "device files and FIFOs are not created in a shared folder");
      default:
        throw new HostFsError(EOPNOTSUPP, `message type ${type}`);
    }
  }

  /** After a rename, fids below the old path follow it (as QEMU's v9fs_fix_fid_paths). */
  #renamed(oldParts: string[], newParts: string[]): void {
    for (const f of this.#fids.values()) {
      if (f.parts.length < oldParts.length) continue;
      let below = true;
      for (let i = 0; i < oldParts.length && below; i++) below = f.parts[i] === oldParts[i];
      if (below) f.parts = [...newParts, ...f.parts.slice(oldParts.length)];
    }
  }

  async #walk(r: Reader, w: Writer): Promise<number> {
    const fid = this.#fid(r.u32());
    const newfid = r.u32();
    const n = r.u16();
    if (n > P9_MAXWELEM) throw new HostFsError(EINVAL, "too many walk elements");
    const names: string[] = [];
    for (let i = 0; i < n; i++) names.push(r.str());
    if (fid.opened) throw new HostFsError(EBADF, "walk from an open fid");
    if (newfid !== P9_NOFID && this.#fids.has(newfid) && this.#fids.get(newfid) !== fid) {
      throw new HostFsError(EBADF, `fid ${newfid} in use`);
    }
    let parts = fid.parts;
    const qids: HostStat[] = [];
    let cur = n > 0 ? await this.fs.stat(parts) : null;
    for (const name of names) {
      try {
        if (cur === null || !cur.isDirectory || cur.isSymlink) {
          throw new HostFsError(ENOTDIR, "not a directory");
        }
        if (name === "..") parts = parts.slice(0, -1); // ".." of the root is the root
        else {
          checkName(name);
          parts = [...parts, name];
        }
        cur = await this.fs.stat(parts);
        qids.push(cur);
      } catch (e) {
        if (qids.length === 0) throw e;
        break;
      }
    }
    if (qids.length === n) {
      if (this.#fids.get(newfid) === fid) fid.parts = parts;
      else this.#newFid(newfid, parts);
    }
    w.u16(qids.length);
    for (const q of qids) w.qid(q);
    return P9_TWALK + 1;
  }

  async #lopen(r: Reader, w: Writer): Promise<number> {
    const f = this.#fid(r.u32());
    const flags = r.u32();
    if (f.opened) throw new HostFsError(EINVAL, "fid already open");
    const s = await this.fs.stat(f.parts);
    const acc = flags & O_ACCMODE;
    const writing = acc === O_WRONLY || acc === O_RDWR;
    if (s.isDirectory) {
      if (writing) throw new HostFsError(EISDIR, "directory opened for writing");
      f.opened = true;
      f.dir = null;
    } else {
      if (writing || (flags & O_TRUNC) !== 0) this.#changing();
      if (this.#openFiles >= MAX_OPEN_FILES) throw new HostFsError(EMFILE, "too many open files");
      const { file } = await this.fs.openFile(f.parts, {
        read: acc !== O_WRONLY,
        write: writing,
        truncate: (flags & O_TRUNC) !== 0 && writing,
        append: (flags & O_APPEND) !== 0 && writing,
      });
      f.file = file;
      f.opened = true;
      f.writable = writing;
      f.append = (flags & O_APPEND) !== 0;
      this.#openFiles++;
    }
    w.qid(s);
    w.u32(0); // iounit: the client uses msize
    return P9_TLOPEN + 1;
  }

  async #read(r: Reader, w: Writer): Promise<number> {
    const f = this.#fid(r.u32());
    const offset = r.u64();
    const count = Math.min(r.u32(), w.room - 4);
    if (f.dir !== null || (f.opened && f.file === null)) throw new HostFsError(EISDIR, "read of a directory");
    if (f.file === null) throw new HostFsError(EBADF, "fid not open");
    const countAt = w.pos;
    w.u32(0);
    const buf = w.bytes.subarray(w.pos, w.pos + Math.max(0, count));
    await f.file.seek(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < buf.length) {
      const got = await f.file.read(buf.subarray(done));
      if (got === null) break;
      done += got;
    }
    new DataView(w.bytes.buffer, w.bytes.byteOffset).setUint32(countAt, done, true);
    w.pos += done;
    return P9_TREAD + 1;
  }

  async #write(r: Reader, w: Writer): Promise<number> {
    const f = this.#fid(r.u32());
    const offset = r.u64();
    const count = r.u32();
    const data = r.bytesOf(count);
    if (f.file === null) throw new HostFsError(f.opened ? EISDIR : EBADF, "fid not open for writing");
    this.#changing();
    if (!f.writable) throw new HostFsError(EBADF, "fid not open for writing");
    if (!f.append) await f.file.seek(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < data.length) done += await f.file.write(data.subarray(done));
    w.u32(done);
    return P9_TWRITE + 1;
  }

  async #readdir(r: Reader, w: Writer): Promise<number> {
    const f = this.#fid(r.u32());
    const offset = r.u64();
    const count = Math.min(r.u32(), w.room - 4);
    if (!f.opened || f.file !== null) {
      throw new HostFsError(f.opened ? ENOTDIR : EBADF, "fid not an open directory");
    }
    if (offset === 0 || f.dir === null) {
      f.dir = { names: [".", "..", ...await this.fs.listDir(f.parts, MAX_DIR_ENTRIES)] };
    }
    const countAt = w.pos;
    w.u32(0);
    const start = w.pos;
    const limit = start + Math.max(0, count);
    for (let i = offset; i < f.dir.names.length; i++) {
      const name = f.dir.names[i];
      let s: HostStat;
      try {
        s = await this.fs.stat(
          name === "." ? f.parts : name === ".." ? f.parts.slice(0, -1) : [...f.parts, name],
        );
      } catch (e) {
        if (errnoOf(e) === ENOENT) continue; // removed since the listing
        throw e;
      }
      const nameBytes = encoder.encode(name).length;
      if (w.pos + 13 + 8 + 1 + 2 + nameBytes > limit) break;
      w.qid(s);
      w.u64(i + 1); // the offset of the next entry
      w.u8(s.isDirectory ? 4 : s.isSymlink ? 10 : s.isFile ? 8 : 0); // DT_DIR, DT_LNK, DT_REG
      w.str(name);
    }
    new DataView(w.bytes.buffer, w.bytes.byteOffset).setUint32(countAt, w.pos - start, true);
    return P9_TREADDIR + 1;
  }

  async #setattr(r: Reader): Promise<number> {
    const f = this.#fid(r.u32());
    const valid = r.u32();
    const mode = r.u32();
    const uid = r.u32();
    const gid = r.u32();
    const size = r.u64();
    const atimeSec = r.u64();
    const atimeNsec = r.u64();
    const mtimeSec = r.u64();
    const mtimeNsec = r.u64();
    if ((valid & ~P9_ATTR_CTIME) === 0) return P9_TSETATTR + 1;
    this.#changing();
    if ((valid & P9_ATTR_MODE) !== 0) await this.fs.chmod(f.parts, mode);
    if ((valid & (P9_ATTR_UID | P9_ATTR_GID)) !== 0) {
      await this.fs.chown(
        f.parts,
        (valid & P9_ATTR_UID) !== 0 ? uid : null,
        (valid & P9_ATTR_GID) !== 0 ? gid : null,
      );
    }
    if ((valid & P9_ATTR_SIZE) !== 0) {
      if (f.file !== null && f.writable) await f.file.truncate(size);
      else await this.fs.truncate(f.parts, size);
    }
    if ((valid & (P9_ATTR_ATIME | P9_ATTR_MTIME)) !== 0) {
      const now = new Date();
      const at = (valid & P9_ATTR_ATIME) === 0
        ? null
        : (valid & P9_ATTR_ATIME_SET) !== 0
        ? new Date(atimeSec * 1000 + Math.floor(atimeNsec / 1e6))
        : now;
      const mt = (valid & P9_ATTR_MTIME) === 0
        ? null
        : (valid & P9_ATTR_MTIME_SET) !== 0
        ? new Date(mtimeSec * 1000 + Math.floor(mtimeNsec / 1e6))
        : now;
      await this.fs.utime(f.parts, at, mt);
    }
    return P9_TSETATTR + 1;
  }
}
