/**
 * The console Backend: the host terminal behind the guest's serial console. stdin goes raw when
 * it is a TTY (so ^C, ^Z and friends reach the guest) and is read asynchronously; output is
 * buffered and written once per task. lguest's escape hatch: three ^C within a second quit
 * (the ^C bytes still go to the guest). Left out: window size, and any escape-key menu.
 */
import { warn } from "../support/log.ts";

/** The parts of `Deno.stdin` the terminal uses (tests pass a fake). */
export interface TerminalInput {
  isTerminal(): boolean;
  setRaw(mode: boolean): void;
  readonly readable: ReadableStream<Uint8Array>;
}

/** The part of `Deno.stdout` the terminal uses. */
export interface TerminalOutput {
  writeSync(bytes: Uint8Array): number;
}

export interface TerminalOptions {
  /** Receives host input; the array is only valid during the call. */
  onInput: (bytes: Uint8Array) => void;
  /** Three ^C within a second. */
  onQuit: () => void;
  /** stdin reached end of file (a pipe or file ran out); the terminal keeps writing. */
  onEof?: () => void;
  stdin?: TerminalInput;
  stdout?: TerminalOutput;
  /** A millisecond clock for the ^C rule. Default `performance.now`. */
  nowMs?: () => number;
}

const CTRL_C = 0x03;
const QUIT_PRESSES = 3;
const QUIT_WINDOW_MS = 1000;

export class Terminal {
  #onInput: (bytes: Uint8Array) => void;
  #onQuit: () => void;
  #onEof: () => void;
  #stdin: TerminalInput;
  #stdout: TerminalOutput;
  #nowMs: () => number;
  #started = false;
  #restored = false;
  #raw = false;
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #outputBroken = false;
  #out = new Uint8Array(8192);
  #outLength = 0;
  #flushScheduled = false;
  #flushTask = () => {
    this.#flushScheduled = false;
    this.flush();
  };
  #ctrlCCount = 0;
  #firstCtrlCMs = 0;
  /** Safety net: Deno.exit() dispatches "unload", so even an abrupt exit leaves a sane TTY. */
  #onUnload = () => this.restore();
  /** Resolves when input stops: end of file, a read error, or `restore()`. */
  readonly inputDone: Promise<void>;
  #resolveInputDone: () => void = () => {};

  constructor(options: TerminalOptions) {
    this.#onInput = options.onInput;
    this.#onQuit = options.onQuit;
    this.#onEof = options.onEof ?? (() => {});
    this.#stdin = options.stdin ?? Deno.stdin;
    this.#stdout = options.stdout ?? Deno.stdout;
    this.#nowMs = options.nowMs ?? (() => performance.now());
    this.inputDone = new Promise((resolve) => this.#resolveInputDone = resolve);
  }

  /** True while stdin is in raw mode. */
  get isRaw(): boolean {
    return this.#raw;
  }

  /** Puts a TTY stdin in raw mode and starts reading. Call once; pair it with `restore()`. */
  start(): void {
    if (this.#started || this.#restored) return;
    this.#started = true;
    if (this.#stdin.isTerminal()) {
      this.#stdin.setRaw(true);
      this.#raw = true;
    }
    globalThis.addEventListener("unload", this.#onUnload);
    this.#reader = this.#stdin.readable.getReader();
    this.#readLoop(this.#reader);
  }

  /**
   * Leaves raw mode, stops reading and flushes output. Idempotent and safe from a finally block,
   * a signal handler or "unload"; output written afterwards goes straight out.
   */
  restore(): void {
    if (this.#restored) return;
    this.#restored = true;
    globalThis.removeEventListener("unload", this.#onUnload);
    this.flush();
    if (this.#raw) {
      this.#raw = false;
      try {
        this.#stdin.setRaw(false);
      } catch {
        // The TTY went away (hangup): there is nothing left to restore.
      }
    }
    const reader = this.#reader;
    this.#reader = null;
    // Cancelling (not just abandoning) the read lets Deno exit without waiting for a keypress.
    if (reader !== null) reader.cancel().catch(() => {});
    else this.#resolveInputDone();
  }

  /** Queues guest output; it is written at the end of the current task (or at once after restore). */
  write(bytes: Uint8Array): void {
    if (this.#outputBroken) return;
    const needed = this.#outLength + bytes.length;
    if (needed > this.#out.length) {
      let size = this.#out.length;
      while (size < needed) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.#out.subarray(0, this.#outLength));
      this.#out = grown;
    }
    this.#out.set(bytes, this.#outLength);
    this.#outLength = needed;
    if (this.#restored) {
      this.flush();
    } else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flushTask);
    }
  }

  /** Writes buffered output now. */
  flush(): void {
    let offset = 0;
    try {
      while (offset < this.#outLength) {
        offset += this.#stdout.writeSync(this.#out.subarray(offset, this.#outLength));
      }
    } catch (e: unknown) {
      // The reader of our stdout went away (closed pipe): keep running, stop writing.
      this.#outputBroken = true;
      warn(`Cannot write to the console: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.#outLength = 0;
  }

  async #readLoop(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (value.length > 0) this.#input(value);
      }
      if (!this.#restored) this.#onEof();
    } catch (e: unknown) {
      if (!this.#restored) warn(`Cannot read the console: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      this.#resolveInputDone();
    }
  }

  /** Passes input to the guest, then applies the three-^C rule. */
  #input(bytes: Uint8Array): void {
    this.#onInput(bytes);
    let quit = false;
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] !== CTRL_C) {
        this.#ctrlCCount = 0;
        continue;
      }
      const now = this.#nowMs();
      if (this.#ctrlCCount === 0 || now - this.#firstCtrlCMs > QUIT_WINDOW_MS) {
        this.#ctrlCCount = 1;
        this.#firstCtrlCMs = now;
      } else if (++this.#ctrlCCount === QUIT_PRESSES) {
        this.#ctrlCCount = 0;
        quit = true;
      }
    }
    if (quit) this.#onQuit();
  }
}
