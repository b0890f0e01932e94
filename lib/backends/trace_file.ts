/**
 * The `--trace=FILE` sink: one text line per executed instruction, written in 64 KiB batches with
 * synchronous writes (the run loop calls it between instructions, so there is no await to give).
 */
import { LaunchError } from "../support/errors.ts";
import { hostErrorReason } from "./file_disk.ts";

const BATCH_BYTES = 64 * 1024;

export class TraceFile {
  readonly #file: Deno.FsFile;
  readonly #encoder = new TextEncoder();
  #lines: string[] = [];
  #pending = 0;

  private constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  /** Creates (or truncates) the trace file; a host error becomes a one-line LaunchError. */
  static open(path: string): TraceFile {
    try {
      return new TraceFile(Deno.openSync(path, { write: true, create: true, truncate: true }));
    } catch (e) {
      throw new LaunchError(`Cannot open trace file "${path}": ${hostErrorReason(e)}`);
    }
  }

  write(line: string): void {
    this.#lines.push(line);
    this.#pending += line.length + 1;
    if (this.#pending >= BATCH_BYTES) this.flush();
  }

  flush(): void {
    if (this.#lines.length === 0) return;
    const bytes = this.#encoder.encode(this.#lines.join("\n") + "\n");
    this.#lines = [];
    this.#pending = 0;
    for (let off = 0; off < bytes.length;) off += this.#file.writeSync(bytes.subarray(off));
  }

  close(): void {
    this.flush();
    this.#file.close();
  }
}
