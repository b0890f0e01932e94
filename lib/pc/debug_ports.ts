/**
 * Three debugging conventions: POST codes on port 0x80 (Linux also writes it as an I/O delay, so
 * only changes are logged under --verbose), the Bochs/QEMU debug console on 0xE9 (bytes go to
 * a sink a line at a time; reading returns 0xE9 so software can detect it), and an exit-status
 * register on 0xF4 in the spirit of QEMU's isa-debug-exit: the byte written there becomes the
 * Launcher's exit code when the guest next powers off (the reference guest's `lguest_run=` writes
 * its command's status through /dev/port). Left out: nothing.
 */
import type { PortBus } from "../machine/bus.ts";
import { debug, isVerbose, warn } from "../support/log.ts";

/** Where debug-console bytes go; the array is only valid during the call. */
export interface DebugConsoleSink {
  write(bytes: Uint8Array): void;
}

const LINE_BYTES = 256;
/** The exit-status register's port (free on a PC: 0xF0-0xF1 are the only x87 ports in use). */
export const EXIT_STATUS_PORT = 0xF4;
const NEWLINE = 0x0A;

/** The default sink: each line to stderr through the log, prefixed "debugcon: ". */
class LogLineSink implements DebugConsoleSink {
  #decoder = new TextDecoder();
  write(bytes: Uint8Array): void {
    const end = bytes.length > 0 && bytes[bytes.length - 1] === NEWLINE ? bytes.length - 1 : bytes.length;
    warn(`debugcon: ${this.#decoder.decode(bytes.subarray(0, end))}`);
  }
}

export class DebugPorts {
  /** The last byte written to port 0x80 (0 before any). */
  lastPostCode = 0;
  /** The last byte written to the exit-status port, or -1 before any. */
  exitStatus = -1;
  #sink: DebugConsoleSink;
  #line = new Uint8Array(LINE_BYTES);
  #lineLength = 0;

  /** Debug-console output is passed to `sink` a line at a time (default: stderr via the log). */
  constructor(sink: DebugConsoleSink = new LogLineSink()) {
    this.#sink = sink;
  }

  /** Claims ports 0x80 and 0xE9. */
  register(ports: PortBus): void {
    ports.register(0x80, 1, "post-code", {
      read: (_offset, size) => size === 4 ? 0xFFFF_FFFF : (1 << (size * 8)) - 1, // write-only
      write: (_offset, _size, value) => this.#writePostCode(value & 0xFF),
    });
    ports.register(0xE9, 1, "debug-console", {
      read: () => 0xE9,
      write: (_offset, _size, value) => this.#writeConsole(value & 0xFF),
    });
    ports.register(EXIT_STATUS_PORT, 1, "exit-status", {
      read: () => 0xFF,
      write: (_offset, _size, value) => {
        this.exitStatus = value & 0xFF;
        debug(`guest exit status ${this.exitStatus}`);
      },
    });
  }

  /** Passes a partial line to the sink (call when the guest stops). */
  flush(): void {
    if (this.#lineLength === 0) return;
    const length = this.#lineLength;
    this.#lineLength = 0;
    this.#sink.write(this.#line.subarray(0, length));
  }

  #writePostCode(code: number): void {
    if (code !== this.lastPostCode && isVerbose()) debug(`POST code 0x${code.toString(16).padStart(2, "0")}`);
    this.lastPostCode = code;
  }

  #writeConsole(byte: number): void {
    this.#line[this.#lineLength++] = byte;
    if (byte === NEWLINE || this.#lineLength === LINE_BYTES) this.flush();
  }
}
