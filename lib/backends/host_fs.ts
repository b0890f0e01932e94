/**
 * A host folder confined for a guest (`--share=HOSTDIR`): every operation names a file by its
 * components below the root, and no operation ever leaves the root. Components are checked one by
 * one with lstat (every one but the last must be a real directory, never a symlink: symlinks are
 * the guest's to follow, in its own namespace); names are single components (no "/", "..", NUL);
 * calls that would follow a final symlink (open, chmod, truncate, utime) refuse symlinks; and
 * after an open the opened file's identity (dev, ino) is checked against the verified path, so a
 * host process that swaps a directory for a symlink between check and open gains nothing.
 * Deno has no openat/O_NOFOLLOW, hence the re-check; see the README's "Known issues".
 */
import { LaunchError } from "../support/errors.ts";
import { statfs } from "../support/node_fs.ts";
import { hostErrorReason } from "./file_disk.ts";

// Linux errno values (asm-generic/errno-base.h, errno.h): 9P2000.L's Rlerror carries them.
export const EPERM = 1;
export const ENOENT = 2;
export const EIO = 5;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EEXIST = 17;
export const EXDEV = 18;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const EFBIG = 27;
export const ENOSPC = 28;
export const EROFS = 30;
export const ERANGE = 34;
export const ENAMETOOLONG = 36;
export const ENOSYS = 38;
export const ENOTEMPTY = 39;
export const ELOOP = 40;
export const ENODATA = 61;
export const EPROTO = 71;
export const EMSGSIZE = 90;
export const EOPNOTSUPP = 95;

/** A refused or failed host operation, with the errno the guest gets. */
export class HostFsError extends Error {
  override name = "HostFsError";
  constructor(readonly errno: number, message: string) {
    super(message);
  }
}

const CODE_ERRNO: Record<string, number> = {
  EPERM,
  ENOENT,
  EIO,
  EBADF,
  EAGAIN,
  ENOMEM,
  EACCES,
  EEXIST,
  EXDEV,
  ENOTDIR,
  EISDIR,
  EINVAL,
  ENFILE,
  EMFILE,
  EFBIG,
  ENOSPC,
  EROFS,
  ENAMETOOLONG,
  ENOTEMPTY,
  ELOOP,
  EBUSY: 16,
  ETXTBSY: 26,
  EMLINK: 31,
};

/** The errno for a Deno error (its OS code when it has one). */
export function errnoOf(e: unknown): number {
  if (e instanceof HostFsError) return e.errno;
  const code = (e as { code?: unknown })?.code;
  if (typeof code === "string" && code in CODE_ERRNO) return CODE_ERRNO[code];
  if (e instanceof Deno.errors.NotFound) return ENOENT;
  if (e instanceof Deno.errors.AlreadyExists) return EEXIST;
  if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) return EACCES;
  if (e instanceof Deno.errors.IsADirectory) return EISDIR;
  if (e instanceof Deno.errors.NotADirectory) return ENOTDIR;
  if (e instanceof Deno.errors.FilesystemLoop) return ELOOP;
  return EIO;
}

function refuse(errno: number, what: string): never {
  throw new HostFsError(errno, what);
}

/** Longest name we accept (Linux NAME_MAX). */
export const NAME_MAX = 255;
/** Deepest path below the root we follow (bounds the lstat chain per operation). */
export const MAX_DEPTH = 64;

/** Checks that `name` is one plain component: not empty, ".", "..", and without "/" or NUL. */
export function checkName(name: string): void {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    refuse(EINVAL, `bad file name ${JSON.stringify(name)}`);
  }
  if (new TextEncoder().encode(name).length > NAME_MAX) refuse(ENAMETOOLONG, "name too long");
}

/** Stat fields the 9P server reports. */
export interface HostStat {
  isDirectory: boolean;
  isFile: boolean;
  isSymlink: boolean;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  rdev: number;
  size: number;
  blksize: number;
  blocks: number;
  dev: number;
  ino: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
}

function hostStat(i: Deno.FileInfo): HostStat {
  return {
    isDirectory: i.isDirectory,
    isFile: i.isFile,
    isSymlink: i.isSymlink,
    mode: i.mode ?? (i.isDirectory ? 0o40755 : 0o100644),
    uid: i.uid ?? 0,
    gid: i.gid ?? 0,
    nlink: i.nlink ?? 1,
    rdev: i.rdev ?? 0,
    size: i.size,
    blksize: i.blksize ?? 4096,
    blocks: i.blocks ?? Math.ceil(i.size / 512),
    dev: i.dev,
    ino: i.ino ?? 0,
    atimeMs: i.atime?.getTime() ?? 0,
    mtimeMs: i.mtime?.getTime() ?? 0,
    ctimeMs: i.ctime?.getTime() ?? i.mtime?.getTime() ?? 0,
  };
}

export interface HostStatFs {
  type: number;
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
}

/** A confined host directory. Paths are arrays of checked components below `root`. */
export class HostFs {
  /** The real (symlink-free) absolute path of the shared folder. */
  readonly root: string;
  readonly readOnly: boolean;

  private constructor(root: string, readOnly: boolean) {
    this.root = root;
    this.readOnly = readOnly;
  }

  /** Opens HOSTDIR; throws LaunchError `Cannot share folder "dir": reason`. */
  static async open(dir: string, readOnly: boolean): Promise<HostFs> {
    try {
      const root = await Deno.realPath(dir);
      const info = await Deno.stat(root);
      if (!info.isDirectory) throw new Deno.errors.NotADirectory("not a directory");
      return new HostFs(root, readOnly);
    } catch (e) {
      const reason = e instanceof Deno.errors.NotADirectory ? "not a directory" : hostErrorReason(e);
      throw new LaunchError(`Cannot share folder "${dir}": ${reason}`);
    }
  }

  /** The host path of `parts` (only meaningful after `resolve` checked them). */
  hostPath(parts: readonly string[]): string {
    return parts.length === 0 ? this.root : `${this.root}/${parts.join("/")}`;
  }

  /**
   * Checks `parts` component by component and returns the final one's lstat: every directory on
   * the way must be a directory, not a symlink. The final component may be anything.
   */
  async resolve(parts: readonly string[]): Promise<HostStat> {
    if (parts.length > MAX_DEPTH) refuse(ENAMETOOLONG, "path too deep");
    let info = await Deno.lstat(this.root);
    for (let i = 0; i < parts.length; i++) {
      if (!info.isDirectory || info.isSymlink) refuse(ENOTDIR, "not a directory on the way");
      info = await Deno.lstat(this.hostPath(parts.slice(0, i + 1)));
    }
    return hostStat(info);
  }

  /** resolve() for a directory the caller will work in. */
  async resolveDir(parts: readonly string[]): Promise<HostStat> {
    const s = await this.resolve(parts);
    if (!s.isDirectory || s.isSymlink) refuse(ENOTDIR, "not a directory");
    return s;
  }

  /** After an operation that followed a path: the path must still resolve to `expect` (dev, ino). */
  async #recheck(parts: readonly string[], expect: HostStat): Promise<void> {
    const now = await this.resolve(parts);
    if (now.dev !== expect.dev || now.ino !== expect.ino || now.isSymlink) {
      refuse(EACCES, "the path changed under the operation");
    }
  }

  #writable(): void {
    if (this.readOnly) refuse(EROFS, "the share is read-only");
  }

  async stat(parts: readonly string[]): Promise<HostStat> {
    return await this.resolve(parts);
  }

  /** Opens a regular file (never a symlink, device, FIFO or socket). */
  async openFile(
    parts: readonly string[],
    mode: { write: boolean; read: boolean; truncate: boolean; append: boolean },
  ): Promise<{ file: Deno.FsFile; stat: HostStat }> {
    if (mode.write || mode.truncate) this.#writable();
    const before = await this.resolve(parts);
    if (before.isSymlink) refuse(ELOOP, "a symlink is the guest's to follow");
    if (!before.isFile) refuse(before.isDirectory ? EISDIR : EPERM, "not a regular file");
    const file = await Deno.open(this.hostPath(parts), {
      read: mode.read || !mode.write,
      write: mode.write && !mode.append,
      append: mode.append,
      truncate: false,
    });
    try {
      const opened = await file.stat();
      if (opened.dev !== before.dev || opened.ino !== before.ino || !opened.isFile) {
        refuse(EACCES, "the file changed under the open");
      }
      await this.#recheck(parts, before);
      if (mode.truncate) await file.truncate(0);
      return { file, stat: hostStat(opened) };
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** The names in a directory, at most `limit` (".", ".." not included). */
  async listDir(parts: readonly string[], limit: number): Promise<string[]> {
    const before = await this.resolveDir(parts);
    const names: string[] = [];
    for await (const e of Deno.readDir(this.hostPath(parts))) {
      if (names.length >= limit) break;
      names.push(e.name);
    }
    await this.#recheck(parts, before);
    return names;
  }

  /** Creates and opens a new regular file `name` in directory `parts` (O_EXCL: never follows). */
  async createFile(
    parts: readonly string[],
    name: string,
    permBits: number,
  ): Promise<{ file: Deno.FsFile; stat: HostStat }> {
    this.#writable();
    checkName(name);
    const dir = await this.resolveDir(parts);
    const file = await Deno.open(this.hostPath([...parts, name]), {
      read: true,
      write: true,
      createNew: true,
      mode: permBits & 0o7777,
    });
    try {
      await this.#recheck(parts, dir);
      return { file, stat: hostStat(await file.stat()) };
    } catch (e) {
      file.close();
      throw e;
    }
  }

  async mkdir(parts: readonly string[], name: string, permBits: number): Promise<HostStat> {
    this.#writable();
    checkName(name);
    const dir = await this.resolveDir(parts);
    await Deno.mkdir(this.hostPath([...parts, name]), { mode: permBits & 0o7777 });
    await this.#recheck(parts, dir);
    return await this.resolve([...parts, name]);
  }

  async symlink(parts: readonly string[], name: string, target: string): Promise<HostStat> {
    this.#writable();
    checkName(name);
    if (target === "" || target.includes("\0") || target.length > 4095) refuse(EINVAL, "bad symlink target");
    const dir = await this.resolveDir(parts);
    // The target is stored, never followed by us: the guest resolves it in its own namespace.
    await Deno.symlink(target, this.hostPath([...parts, name]));
    await this.#recheck(parts, dir);
    return await this.resolve([...parts, name]);
  }

  async link(targetParts: readonly string[], dirParts: readonly string[], name: string): Promise<void> {
    this.#writable();
    checkName(name);
    const t = await this.resolve(targetParts);
    if (t.isDirectory) refuse(EPERM, "hard links to directories");
    const dir = await this.resolveDir(dirParts);
    await Deno.link(this.hostPath(targetParts), this.hostPath([...dirParts, name]));
    await this.#recheck(dirParts, dir);
  }

  async readLink(parts: readonly string[]): Promise<string> {
    const s = await this.resolve(parts);
    if (!s.isSymlink) refuse(EINVAL, "not a symlink");
    return await Deno.readLink(this.hostPath(parts));
  }

  /** unlinkat: `removeDir` is AT_REMOVEDIR (rmdir), else the name must not be a directory. */
  async unlink(parts: readonly string[], name: string, removeDir: boolean): Promise<void> {
    this.#writable();
    checkName(name);
    const dir = await this.resolveDir(parts);
    const s = await this.resolve([...parts, name]);
    if (removeDir && !(s.isDirectory && !s.isSymlink)) refuse(ENOTDIR, "not a directory");
    if (!removeDir && s.isDirectory && !s.isSymlink) refuse(EISDIR, "is a directory");
    await this.#recheck(parts, dir);
    await Deno.remove(this.hostPath([...parts, name]));
  }

  async rename(fromParts: readonly string[], fromName: string, toParts: readonly string[], toName: string) {
    this.#writable();
    checkName(fromName);
    checkName(toName);
    const a = await this.resolveDir(fromParts);
    const b = await this.resolveDir(toParts);
    await this.resolve([...fromParts, fromName]);
    await this.#recheck(fromParts, a);
    await this.#recheck(toParts, b);
    await Deno.rename(this.hostPath([...fromParts, fromName]), this.hostPath([...toParts, toName]));
  }

  async chmod(parts: readonly string[], permBits: number): Promise<void> {
    this.#writable();
    const s = await this.resolve(parts);
    if (s.isSymlink) refuse(EOPNOTSUPP, "symlinks have no mode");
    await Deno.chmod(this.hostPath(parts), permBits & 0o7777);
    await this.#recheck(parts, s);
  }

  async chown(parts: readonly string[], uid: number | null, gid: number | null): Promise<void> {
    this.#writable();
    const s = await this.resolve(parts);
    if ((uid === null || uid === s.uid) && (gid === null || gid === s.gid)) return;
    if (s.isSymlink) refuse(EOPNOTSUPP, "chown of a symlink");
    await Deno.chown(this.hostPath(parts), uid, gid);
    await this.#recheck(parts, s);
  }

  async truncate(parts: readonly string[], sizeBytes: number): Promise<void> {
    this.#writable();
    const { file } = await this.openFile(parts, { read: false, write: true, truncate: false, append: false });
    try {
      await file.truncate(sizeBytes);
    } finally {
      file.close();
    }
  }

  async utime(parts: readonly string[], atime: Date | null, mtime: Date | null): Promise<void> {
    this.#writable();
    const s = await this.resolve(parts);
    if (s.isSymlink) return; // Deno has no lutimes: leave a symlink's times alone
    const a = atime ?? new Date(s.atimeMs);
    const m = mtime ?? new Date(s.mtimeMs);
    await Deno.utime(this.hostPath(parts), a, m);
    await this.#recheck(parts, s);
  }

  /** statfs(2) of the share; without Deno's --allow-sys=statfs, zero counts (df shows 0, nothing breaks). */
  async statfs(): Promise<HostStatFs> {
    try {
      return await statfs(this.root);
    } catch {
      return { type: 0, bsize: 4096, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0 };
    }
  }
}
