/**
 * The console Backend: the host terminal behind the guest's serial console. stdin goes raw when
 * it is a TTY (so ^C, ^Z and friends reach the guest) and is read asynchronously; output is
 * buffered and written once per task. lguest's escape hatch: three ^C in a row, each within a
 * second of the one before, quit (the ^C bytes still go to the guest; escape sequences such as the
 * terminal's answer to a cursor-position query do not break the row). At stdin's end of file the
 * guest gets ^D, and again whenever it wrote something and then fell quiet (a shell back at its
 * prompt), so a shell fed by a script ends. The window size is read at start and on SIGWINCH.
 * Left out: any escape-key menu.
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

/** A terminal's size in character cells. */
export interface TerminalSize {
  columns: number;
  rows: number;
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
  /** The host terminal's size, or null when stdout is not a terminal. Default: `Deno.consoleSize()`. */
  size?: () => TerminalSize | null;
  /** Calls `cb` whenever the host terminal is resized. Default: SIGWINCH. Returns an unsubscribe. */
  watchResize?: (cb: () => void) => () => void;
}

const CTRL_C = 0x03;
const CTRL_D = 0x04;
const ESC = 0x1B;
const QUIT_PRESSES = 3;
/** Most milliseconds from one ^C of the quitting three to the next. */
const QUIT_WINDOW_MS = 1000;
/** After end of input: the guest's output pause that earns it another ^D. */
const EOF_QUIET_MS = 500;

function hostTerminalSize(): TerminalSize | null {
  try {
    if (!Deno.stdout.isTerminal()) return null;
    const { columns, rows } = Deno.consoleSize();
    return columns > 0 && rows > 0 ? { columns, rows } : null;
  } catch {
    return null;
  }
}

function watchSigwinch(cb: () => void): () => void {
  if (Deno.build.os === "windows") return () => {};
  Deno.addSignalListener("SIGWINCH", cb);
  return () => Deno.removeSignalListener("SIGWINCH", cb);
}

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
  #lastCtrlCMs = 0;
  /** Escape-sequence state of the input: 0 none, 1 after ESC, 2 inside a CSI or SS3 sequence. */
  #escape = 0;
  #size: () => TerminalSize | null;
  #watchResize: (cb: () => void) => () => void;
  #unwatchResize: () => void = () => {};
  #resizeListeners: (() => void)[] = [];
  /** End of input was seen: ^D goes to the guest after each burst of its output. */
  #atEof = false;
  #wroteSinceEot = false;
  #lastWriteMs = 0;
  #eofTimer: ReturnType<typeof setInterval> | undefined;
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
    this.#size = options.size ?? hostTerminalSize;
    this.#watchResize = options.watchResize ?? watchSigwinch;
    this.inputDone = new Promise((resolve) => this.#resolveInputDone = resolve);
  }

  /** True while stdin is in raw mode. */
  get isRaw(): boolean {
    return this.#raw;
  }

  /** The host terminal's size now, or null when output does not go to a terminal. */
  size(): TerminalSize | null {
    return this.#size();
  }

  /** Calls `cb` after each resize of the host terminal (from `start()` to `restore()`). */
  onResize(cb: () => void): () => void {
    this.#resizeListeners.push(cb);
    return () => {
      this.#resizeListeners = this.#resizeListeners.filter((l) => l !== cb);
    };
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
    this.#unwatchResize = this.#watchResize(() => {
      for (const cb of this.#resizeListeners) cb();
    });
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
    this.#unwatchResize();
    if (this.#eofTimer !== undefined) clearInterval(this.#eofTimer);
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
    if (this.#atEof) {
      this.#wroteSinceEot = true;
      this.#lastWriteMs = this.#nowMs();
    }
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
      if (!this.#restored) this.#endOfInput();
    } catch (e: unknown) {
      if (!this.#restored) warn(`Cannot read the console: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      this.#resolveInputDone();
    }
  }

  /**
   * stdin ended: the guest gets ^D now, and again each time it wrote and then stayed quiet for
   * EOF_QUIET_MS. One ^D is not always enough: one that reaches a Linux tty in canonical mode while
   * a command runs is a line end there, and reaches the shell's line editor as a NUL.
   */
  #endOfInput(): void {
    this.#onEof();
    this.#atEof = true;
    this.#onInput(Uint8Array.of(CTRL_D));
    this.#eofTimer = setInterval(() => {
      if (this.#wroteSinceEot && this.#nowMs() - this.#lastWriteMs >= EOF_QUIET_MS) {
        this.#wroteSinceEot = false;
        this.#onInput(Uint8Array.of(CTRL_D));
      }
    }, EOF_QUIET_MS / 2);
  }

  /** Passes input to the guest, then applies the three-^C rule. */
  #input(bytes: Uint8Array): void {
    this.#onInput(bytes);
    let quit = false;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (b === CTRL_C) {
        this.#escape = 0;
        const now = this.#nowMs();
        if (this.#ctrlCCount === 0 || now - this.#lastCtrlCMs > QUIT_WINDOW_MS) this.#ctrlCCount = 1;
        else if (++this.#ctrlCCount === QUIT_PRESSES) {
          this.#ctrlCCount = 0;
          quit = true;
        }
        this.#lastCtrlCMs = now;
      } else if (this.#escape === 1) {
        // ESC [ (CSI) and ESC O (SS3) run to a final byte; any other ESC x is two bytes.
        this.#escape = b === 0x5B || b === 0x4F ? 2 : 0;
      } else if (this.#escape === 2) {
        if (b >= 0x40 && b <= 0x7E) this.#escape = 0;
      } else if (b === ESC) {
        // The terminal's own answers (ESC[24;1R to the shell's ESC[6n) are not typing.
        this.#escape = 1;
      } else {
        this.#ctrlCCount = 0;
      }
    }
    if (quit) this.#onQuit();
  }
}
