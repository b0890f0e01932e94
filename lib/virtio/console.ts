/**
 * virtio-console (virtio 1.x §5.3): a single port, receiveq 0 and transmitq 1, plus the
 * emergency-write register (VIRTIO_CONSOLE_F_EMERG_WRITE) that early boot code can poke before any
 * queue exists. Input that arrives while the driver has no receive buffers waits in a bounded
 * host-side FIFO. Each transmit chain yields at most CONSOLE_MAX_REQUEST_BYTES. The console size
 * (VIRTIO_CONSOLE_F_SIZE) follows the host terminal: a resize updates cols/rows and raises a
 * configuration interrupt, which Linux turns into hvc_resize (a SIGWINCH in the guest). Leaves out multiport (and with it the control queues).
 */
import { warn } from "../support/log.ts";
import {
  bit,
  configBytesRead,
  VIRTIO_DEVICE_TYPES,
  type VirtioContext,
  type VirtioDevice,
} from "./virtio_device.ts";
import { DescChain } from "./virtqueue.ts";

// ---- Spec constants (§5.3) ----

export const VIRTIO_CONSOLE_F_SIZE = 0;
export const VIRTIO_CONSOLE_F_MULTIPORT = 1;
export const VIRTIO_CONSOLE_F_EMERG_WRITE = 2;

// struct virtio_console_config: cols, rows, max_nr_ports, emerg_wr.
const CFG_COLS = 0;
const CFG_ROWS = 2;
const CFG_EMERG_WR = 8;
const CONFIG_SIZE = 12;

const RECEIVEQ = 0;
const TRANSMITQ = 1;
const QUEUE_SIZE = 128;
/** Host-side input held while the guest has no receive buffers; more is dropped. */
export const CONSOLE_INPUT_LIMIT_BYTES = 64 << 10;
/**
 * Most output bytes taken from one transmit chain (Linux's hvc sends at most a page per buffer);
 * the rest of a longer chain is consumed unread. A chain may name the same RAM many times, so its
 * readableBytes says nothing about real work: this, times the ring size, bounds one notify.
 */
export const CONSOLE_MAX_REQUEST_BYTES = 64 << 10;

// ---- Backend ----

/** The terminal (or a test) behind the console. */
export interface ConsoleBackend {
  /** Guest output. `bytes` is a fresh copy the backend may keep. */
  write(bytes: Uint8Array): void;
  /** Registers the one receiver of guest input; the backend calls it from the event loop. */
  onInput(cb: (bytes: Uint8Array) => void): void;
  /** The console's size in character cells; null (or absent) when it has none (not a terminal). */
  size?(): { columns: number; rows: number } | null;
  /** Registers a callback for size changes. */
  onResize?(cb: () => void): void;
}

export interface ConsoleOptions {
  name?: string;
}

// ---- Device ----

/** A virtio console port: guest output to the backend, backend input to the guest. */
export class ConsoleDevice implements VirtioDevice {
  readonly deviceType = VIRTIO_DEVICE_TYPES.console.id;
  readonly name: string;
  readonly queueSizes = [QUEUE_SIZE, QUEUE_SIZE];
  readonly features: bigint;
  readonly configSizeBytes = CONFIG_SIZE;
  readonly #backend: ConsoleBackend;
  readonly #config = new Uint8Array(CONFIG_SIZE);
  /** Pending input: a ring would be tidier, but input is rare and small. */
  #input: Uint8Array[] = [];
  #inputBytes = 0;
  #dropped = 0;
  /** Transmit bytes cut off by CONSOLE_MAX_REQUEST_BYTES (warned about once). */
  #truncated = 0;
  #chain: DescChain | null = null;
  #ctx: VirtioContext | null = null;

  constructor(backend: ConsoleBackend, options: ConsoleOptions = {}) {
    this.#backend = backend;
    this.name = options.name ?? "virtio-console";
    backend.onInput((bytes) => this.#receive(bytes));
    const sized = backend.size !== undefined && backend.size() !== null;
    this.features = bit(VIRTIO_CONSOLE_F_EMERG_WRITE) | (sized ? bit(VIRTIO_CONSOLE_F_SIZE) : 0n);
    if (sized) {
      this.#updateSize();
      backend.onResize?.(() => {
        if (this.#updateSize()) this.#ctx?.configChanged();
      });
    }
  }

  /** Copies the backend's size into cols/rows; true when it changed. */
  #updateSize(): boolean {
    const size = this.#backend.size?.();
    if (!size) return false;
    const view = new DataView(this.#config.buffer);
    const cols = Math.min(size.columns, 0xFFFF), rows = Math.min(size.rows, 0xFFFF);
    if (view.getUint16(CFG_COLS, true) === cols && view.getUint16(CFG_ROWS, true) === rows) return false;
    view.setUint16(CFG_COLS, cols, true);
    view.setUint16(CFG_ROWS, rows, true);
    return true;
  }

  // ---- Configuration space ----

  configRead(offset: number, size: number): number {
    return configBytesRead(this.#config, offset, size); // emerg_wr reads as 0
  }

  configWrite(offset: number, _size: number, value: number): void {
    // §5.3.4: a write to emerg_wr outputs one character, whatever the device state.
    if (offset === CFG_EMERG_WR) this.#backend.write(Uint8Array.of(value & 0xFF));
  }

  // ---- Lifecycle ----

  activate(ctx: VirtioContext): void {
    this.#ctx = ctx;
    this.#chain = new DescChain(ctx.mem, 4);
    // Linux reads cols/rows only on a configuration interrupt: one now gives hvc0 its first size.
    if ((ctx.features & bit(VIRTIO_CONSOLE_F_SIZE)) !== 0n) ctx.configChanged();
  }

  reset(): void {
    this.#ctx = null;
    // Typed-ahead input survives a driver reload, as it would in a terminal.
  }

  // ---- Queues ----

  onQueueNotify(queueIndex: number): void {
    if (queueIndex === TRANSMITQ) this.#transmit();
    else if (queueIndex === RECEIVEQ) this.#deliver();
  }

  #transmit(): void {
    const ctx = this.#ctx;
    const chain = this.#chain;
    if (ctx === null || chain === null || !ctx.live) return;
    const queue = ctx.queues[TRANSMITQ];
    while (queue.pop(chain)) {
      const total = Math.min(chain.readableBytes, CONSOLE_MAX_REQUEST_BYTES);
      if (total < chain.readableBytes) {
        if (this.#truncated === 0) {
          warn(`${this.name}: output buffer of ${chain.readableBytes} bytes cut to ${total}`);
        }
        this.#truncated += chain.readableBytes - total;
      }
      if (total > 0) {
        const out = new Uint8Array(total);
        chain.readBytes(0, out);
        this.#backend.write(out);
      }
      queue.pushUsed(chain.head, 0);
    }
    ctx.usedBuffers(TRANSMITQ);
  }

  /** Moves pending input into receive buffers, as much as fits. */
  #deliver(): void {
    const ctx = this.#ctx;
    const chain = this.#chain;
    if (ctx === null || chain === null || !ctx.live || this.#inputBytes === 0) return;
    const queue = ctx.queues[RECEIVEQ];
    while (this.#inputBytes > 0 && queue.pop(chain)) {
      let written = 0;
      while (this.#input.length > 0 && written < chain.writableBytes) {
        const head = this.#input[0];
        const n = chain.writeBytes(written, head);
        written += n;
        this.#inputBytes -= n;
        if (n === head.length) this.#input.shift();
        else this.#input[0] = head.subarray(n);
      }
      queue.pushUsed(chain.head, written);
    }
    ctx.usedBuffers(RECEIVEQ);
  }

  // ---- Backend events ----

  #receive(bytes: Uint8Array): void {
    const room = CONSOLE_INPUT_LIMIT_BYTES - this.#inputBytes;
    const take = Math.min(room, bytes.length);
    if (take < bytes.length) {
      if (this.#dropped === 0) warn(`${this.name}: input buffer full, dropping input`);
      this.#dropped += bytes.length - take;
    }
    if (take === 0) return;
    this.#input.push(bytes.slice(0, take));
    this.#inputBytes += take;
    const ctx = this.#ctx;
    if (ctx === null) return;
    try {
      this.#deliver();
    } catch (e) {
      ctx.fail(e);
    }
  }
}
