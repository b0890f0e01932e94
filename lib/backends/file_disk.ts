/**
 * A host file as a virtio-blk disk (`--block=FILE[,ro]`). Capacity is the file size rounded down
 * to whole 512-byte sectors: a trailing partial sector is invisible to the guest and never written
 * (`sizeWarning` says so; an empty or sub-sector file is refused). Read-only files are opened
 * read-only, so nothing the guest does can modify them. Every image holds an advisory lock (flock)
 * while open, exclusive for read-write and shared for read-only, as QEMU locks its images: one
 * writer or any number of readers, across processes and within one. flush() is fdatasync.
 * Operations run one at a time (Deno.FsFile has no pread/pwrite: seek + read must pair).
 */
import { LaunchError } from "../support/errors.ts";
import type { BlockBackend } from "../virtio/block.ts";

const SECTOR_BYTES = 512;

export interface FileDiskOptions {
  readOnly?: boolean;
}

/** Turns a Deno error into the lower-case reason of a launch message (`permission denied`). */
export function hostErrorReason(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (e instanceof Deno.errors.IsADirectory) return "is a directory";
  if (e instanceof Deno.errors.AlreadyExists) return "already exists";
  if (e instanceof Deno.errors.NotCapable) {
    return "not allowed by Deno's permissions (--allow-read/--allow-write)";
  }
  return e instanceof Error ? e.message : String(e);
}

/** A disk image file opened by `FileDisk.open`. */
export class FileDisk implements BlockBackend {
  readonly path: string;
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  /** Set when the file is not a whole number of sectors: the bytes the guest will not see. */
  readonly sizeWarning?: string;
  readonly #file: Deno.FsFile;
  /** The tail of the operation chain: each operation starts when the previous one settled. */
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(path: string, file: Deno.FsFile, fileBytes: number, readOnly: boolean) {
    this.path = path;
    this.#file = file;
    this.sizeBytes = fileBytes - (fileBytes % SECTOR_BYTES);
    this.readOnly = readOnly;
    if (fileBytes % SECTOR_BYTES !== 0) {
      this.sizeWarning = `block file "${path}" is ${fileBytes} bytes, not a multiple of 512: ` +
        `the guest sees ${this.sizeBytes / SECTOR_BYTES} sectors and never the last ${
          fileBytes % SECTOR_BYTES
        } bytes`;
    }
  }

  /** Opens `path`; throws LaunchError `Cannot open block file "path": reason` when it cannot. */
  static async open(path: string, options: FileDiskOptions = {}): Promise<FileDisk> {
    const readOnly = options.readOnly ?? false;
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true, write: !readOnly });
    } catch (e) {
      const writeRefused = !readOnly &&
        (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable);
      const hint = writeRefused ? ` (to use it read-only, add ",ro": --block=${path},ro)` : "";
      throw new LaunchError(`Cannot open block file "${path}": ${hostErrorReason(e)}${hint}`);
    }
    let size: number;
    try {
      const info = await file.stat();
      if (!info.isFile && !info.isBlockDevice) throw new Deno.errors.IsADirectory("not a regular file");
      size = info.isFile ? info.size : await file.seek(0, Deno.SeekMode.End);
    } catch (e) {
      file.close();
      throw new LaunchError(`Cannot open block file "${path}": ${hostErrorReason(e)}`);
    }
    if (size < SECTOR_BYTES) {
      file.close();
      throw new LaunchError(
        `Cannot use block file "${path}": it is ${size} bytes, less than one 512-byte sector`,
      );
    }
    let locked = false;
    try {
      locked = await file.tryLock(!readOnly);
    } catch {
      locked = true; // a file system without flock (some network mounts): go on unlocked
    }
    if (!locked) {
      file.close();
      const why = readOnly
        ? "it is open read-write elsewhere (another --block or launcher holds its lock)"
        : "it is already open elsewhere (another --block or launcher holds its lock; " +
          "readers can share it with ,ro)";
      throw new LaunchError(`Cannot open block file "${path}": ${why}`);
    }
    return new FileDisk(path, file, size, readOnly);
  }

  read(offset: number, buf: Uint8Array): Promise<void> {
    return this.#queue(async () => {
      this.#checkRange(offset, buf.length);
      await this.#file.seek(offset, Deno.SeekMode.Start);
      for (let done = 0; done < buf.length;) {
        const n = await this.#file.read(buf.subarray(done));
        if (n === null) throw new Error(`${this.path}: file shrank under the guest`);
        done += n;
      }
    });
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.#queue(async () => {
      if (this.readOnly) throw new Error(`${this.path} is read-only`);
      this.#checkRange(offset, data.length);
      await this.#file.seek(offset, Deno.SeekMode.Start);
      for (let done = 0; done < data.length;) done += await this.#file.write(data.subarray(done));
    });
  }

  flush(): Promise<void> {
    return this.#queue(async () => {
      if (!this.readOnly) await this.#file.syncData();
    });
  }

  /** Waits for queued operations, then closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#tail.catch(() => {});
    this.#file.close();
  }

  #checkRange(offset: number, len: number): void {
    if (this.#closed) throw new Error(`${this.path} is closed`);
    if (offset < 0 || offset + len > this.sizeBytes) {
      throw new RangeError(`${this.path}: access past the end`);
    }
  }

  #queue(op: () => Promise<void>): Promise<void> {
    const run = this.#tail.then(op);
    this.#tail = run.catch(() => {});
    return run;
  }
}
