/**
 * Ethernet over a TCP stream, compatible with QEMU's `-netdev socket` (and `-netdev stream`): each
 * frame is preceded by its length as a 4-byte big-endian integer. `listen:[HOST:]PORT` serves one
 * peer at a time (HOST defaults to 127.0.0.1, not QEMU's all-interfaces, so a guest's network is
 * not exposed by accident); `connect:HOST:PORT` retries until the peer listens and again after it
 * goes away. Frames sent while no peer is connected, or larger than MAX_FRAME_BYTES, are dropped.
 */
import { LaunchError } from "../support/errors.ts";
import { debug, warn } from "../support/log.ts";
import { MAX_FRAME_BYTES, type NetBackend } from "../virtio/net.ts";
import { hostErrorReason } from "./file_disk.ts";

/** Bytes of outgoing frames waiting for the socket; beyond this, frames are dropped (as a full NIC would). */
const MAX_PENDING_SEND_BYTES = 4 << 20;
const READ_CHUNK_BYTES = 64 << 10;

export interface SocketNetSpec {
  mode: "listen" | "connect";
  hostname: string;
  port: number;
}

/** Parses `listen:[HOST:]PORT` or `connect:HOST:PORT`; throws LaunchError on anything else. */
export function parseSocketNetSpec(spec: string): SocketNetSpec {
  const m = /^(listen|connect):(?:(\[[^\]]+\]|[^:]+):)?(\d{1,5})$/.exec(spec);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || port > 65535 || (m[1] === "connect" && (m[2] === undefined || port === 0))) {
    throw new LaunchError(
      `Invalid socket network "${spec}": expected listen:[HOST:]PORT or connect:HOST:PORT`,
    );
  }
  const hostname = (m[2] ?? "127.0.0.1").replace(/^\[(.*)\]$/, "$1");
  return { mode: m[1] as "listen" | "connect", hostname, port };
}

export interface SocketNetOptions {
  /** Delay between connection attempts in connect mode (default 500 ms). */
  retryMs?: number;
}

/** A NetBackend whose wire is a TCP connection. */
export class SocketNet implements NetBackend {
  readonly spec: SocketNetSpec;
  /** In listen mode, the bound port (useful with port 0). */
  readonly localPort: number;
  /** Frames dropped: no peer, too big, or the socket backed up. */
  droppedFrames = 0;
  readonly #retryMs: number;
  readonly #listener: Deno.TcpListener | null;
  #conn: Deno.TcpConn | null = null;
  #receiver: (frame: Uint8Array) => void = () => {};
  #closed = false;
  #loop: Promise<void>;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #wakeRetry: (() => void) | null = null;
  #sendTail: Promise<void> = Promise.resolve();
  #pendingSendBytes = 0;
  #connectedWaiters: (() => void)[] = [];

  private constructor(spec: SocketNetSpec, listener: Deno.TcpListener | null, options: SocketNetOptions) {
    this.spec = spec;
    this.#listener = listener;
    this.#retryMs = options.retryMs ?? 500;
    this.localPort = listener !== null ? listener.addr.port : spec.port;
    this.#loop = listener !== null ? this.#acceptLoop(listener) : this.#connectLoop();
  }

  /** Starts listening (synchronously: a busy port is a LaunchError) or connecting (in the background). */
  static open(spec: SocketNetSpec | string, options: SocketNetOptions = {}): SocketNet {
    const s = typeof spec === "string" ? parseSocketNetSpec(spec) : spec;
    if (s.mode === "connect") return new SocketNet(s, null, options);
    let listener: Deno.TcpListener;
    try {
      listener = Deno.listen({ hostname: s.hostname, port: s.port, transport: "tcp" });
    } catch (e) {
      throw new LaunchError(`Cannot listen on ${s.hostname}:${s.port}: ${hostErrorReason(e)}`);
    }
    return new SocketNet(s, listener, options);
  }

  /** True while a peer is connected. */
  get connected(): boolean {
    return this.#conn !== null;
  }

  /** Resolves once a peer is connected (immediately if one is). */
  whenConnected(): Promise<void> {
    if (this.#conn !== null) return Promise.resolve();
    return new Promise((resolve) => this.#connectedWaiters.push(resolve));
  }

  onFrame(cb: (frame: Uint8Array) => void): void {
    this.#receiver = cb;
  }

  send(frame: Uint8Array): void {
    const conn = this.#conn;
    if (
      conn === null || frame.length === 0 || frame.length > MAX_FRAME_BYTES ||
      this.#pendingSendBytes + frame.length > MAX_PENDING_SEND_BYTES
    ) {
      this.droppedFrames++;
      return;
    }
    const packet = new Uint8Array(4 + frame.length);
    new DataView(packet.buffer).setUint32(0, frame.length, false);
    packet.set(frame, 4);
    this.#pendingSendBytes += packet.length;
    this.#sendTail = this.#sendTail.then(async () => {
      try {
        if (this.#conn === conn) {
          for (let done = 0; done < packet.length;) done += await conn.write(packet.subarray(done));
        }
      } catch {
        // The read loop sees the broken connection too and tidies up.
      } finally {
        this.#pendingSendBytes -= packet.length;
      }
    });
  }

  /** Stops listening or connecting, closes the connection and waits for the background loop. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#wakeRetry?.();
    try {
      this.#listener?.close();
    } catch { /* already closed */ }
    this.#closeConn();
    await this.#loop;
    await this.#sendTail;
  }

  async #acceptLoop(listener: Deno.TcpListener): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (!this.#closed) {
          warn(`socket network ${this.spec.hostname}:${this.localPort}: ${hostErrorReason(e)}`);
        }
        return;
      }
      await this.#serve(conn);
    }
  }

  async #connectLoop(): Promise<void> {
    const { hostname, port } = this.spec;
    while (!this.#closed) {
      let conn: Deno.TcpConn | null = null;
      try {
        conn = await Deno.connect({ hostname, port, transport: "tcp" });
      } catch (e) {
        debug(`socket network: connect ${hostname}:${port}: ${hostErrorReason(e)}; retrying`);
      }
      if (conn !== null) await this.#serve(conn);
      if (!this.#closed) await this.#sleep(this.#retryMs);
    }
  }

  /** Reads length-prefixed frames from `conn` until it closes. */
  async #serve(conn: Deno.TcpConn): Promise<void> {
    if (this.#closed) {
      conn.close();
      return;
    }
    this.#conn = conn;
    debug(`socket network: peer ${fmtAddr(conn.remoteAddr)} connected`);
    for (const w of this.#connectedWaiters.splice(0)) w();
    const chunk = new Uint8Array(READ_CHUNK_BYTES);
    const lenBytes = new Uint8Array(4);
    let lenHave = 0;
    let frame: Uint8Array | null = null;
    let frameHave = 0;
    let skip = 0;
    try {
      for (;;) {
        const n = await conn.read(chunk);
        if (n === null) break;
        let at = 0;
        while (at < n) {
          if (skip > 0) {
            const k = Math.min(skip, n - at);
            skip -= k;
            at += k;
          } else if (frame !== null) {
            const k = Math.min(frame.length - frameHave, n - at);
            frame.set(chunk.subarray(at, at + k), frameHave);
            frameHave += k;
            at += k;
            if (frameHave === frame.length) {
              const done = frame;
              frame = null;
              this.#receiver(done);
            }
          } else {
            lenBytes[lenHave++] = chunk[at++];
            if (lenHave < 4) continue;
            lenHave = 0;
            const len = new DataView(lenBytes.buffer).getUint32(0, false);
            if (len === 0) continue;
            if (len > MAX_FRAME_BYTES) {
              this.droppedFrames++;
              skip = len;
            } else {
              frame = new Uint8Array(len);
              frameHave = 0;
            }
          }
        }
      }
    } catch (e) {
      if (!this.#closed) debug(`socket network: ${hostErrorReason(e)}`);
    }
    if (this.#conn === conn) this.#closeConn();
    debug(`socket network: peer disconnected`);
  }

  #closeConn(): void {
    const conn = this.#conn;
    this.#conn = null;
    try {
      conn?.close();
    } catch { /* already closed */ }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wakeRetry = resolve;
      this.#retryTimer = setTimeout(resolve, ms);
    });
  }
}

function fmtAddr(a: Deno.NetAddr): string {
  return `${a.hostname}:${a.port}`;
}
