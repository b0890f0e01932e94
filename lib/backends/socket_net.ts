/**
 * Ethernet over TCP streams, compatible with QEMU's `-netdev socket` (and `-netdev stream`): each
 * frame is preceded by its length as a 4-byte big-endian integer. `listen:[HOST:]PORT` serves up
 * to MAX_PEERS peers at once as one Ethernet segment, a learning switch whose ports are the Guest
 * and each peer (lguest's --sharenet, for any number of guests); HOST defaults to 127.0.0.1, not
 * QEMU's all-interfaces, so a guest's network is not exposed by accident. `connect:HOST:PORT`
 * retries until the peer listens and again after it goes away.
 *
 * No peer can hold up another: each is read on its own, a peer that announces a frame over
 * MAX_FRAME_BYTES or stalls mid-frame is dropped with one log line, a peer that does not read
 * loses only its own frames (its send queue is bounded), and when the ports are full a peer that
 * never sent a frame makes room for a newcomer.
 */
import { LaunchError } from "../support/errors.ts";
import { debug, warn } from "../support/log.ts";
import { MAX_FRAME_BYTES, type NetBackend } from "../virtio/net.ts";
import { EthernetSwitch, TO_ALL, TO_NOWHERE } from "../net/ethernet_switch.ts";
import { hostErrorReason } from "./file_disk.ts";

/** Bytes of outgoing frames waiting for one peer's socket; beyond this, its frames are dropped. */
const MAX_PENDING_SEND_BYTES = 2 << 20;
const READ_CHUNK_BYTES = 64 << 10;
/** Peers one listening link serves at once. */
export const MAX_PEERS = 16;
/** The Guest's port on the switch. */
const GUEST_PORT = 0;

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
  /** A peer that sends nothing for this long in the middle of a frame is dropped (default 5000 ms). */
  stallMs?: number;
  /** Peers served at once in listen mode (default MAX_PEERS). */
  maxPeers?: number;
}

/** One connected peer: a port of the switch. */
class Peer {
  readonly conn: Deno.TcpConn;
  readonly port: number;
  readonly name: string;
  rxFrames = 0;
  txFrames = 0;
  droppedFrames = 0;
  pendingSendBytes = 0;
  sendTail: Promise<void> = Promise.resolve();
  /** Set when we close the connection on purpose (dropped, evicted, closing). */
  closedByUs = false;

  constructor(conn: Deno.TcpConn, port: number) {
    this.conn = conn;
    this.port = port;
    this.name = fmtAddr(conn.remoteAddr);
  }

  close(): void {
    this.closedByUs = true;
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }
}

/** A NetBackend whose wire is one or more TCP connections. */
export class SocketNet implements NetBackend {
  readonly spec: SocketNetSpec;
  /** In listen mode, the bound port (useful with port 0). */
  readonly localPort: number;
  /** Frames dropped: nowhere to go, too big, a peer's queue backed up, or a bad peer's. */
  droppedFrames = 0;
  /** Frames the Guest sent, and frames handed to the Guest. */
  framesFromGuest = 0;
  framesToGuest = 0;
  /** Peers dropped for breaking the framing (oversized length, stalled mid-frame) or evicted. */
  droppedPeers = 0;
  readonly #retryMs: number;
  readonly #stallMs: number;
  readonly #maxPeers: number;
  readonly #listener: Deno.TcpListener | null;
  readonly #switch = new EthernetSwitch();
  readonly #peers = new Map<number, Peer>();
  #nextPort = GUEST_PORT + 1;
  #receiver: (frame: Uint8Array) => void = () => {};
  #closed = false;
  #state = "starting";
  #loop: Promise<void>;
  readonly #serving = new Set<Promise<void>>();
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #wakeRetry: (() => void) | null = null;
  #connectedWaiters: (() => void)[] = [];

  private constructor(spec: SocketNetSpec, listener: Deno.TcpListener | null, options: SocketNetOptions) {
    this.spec = spec;
    this.#listener = listener;
    this.#retryMs = options.retryMs ?? 500;
    this.#stallMs = options.stallMs ?? 5000;
    this.#maxPeers = spec.mode === "connect" ? 1 : Math.max(1, options.maxPeers ?? MAX_PEERS);
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

  /** True while at least one peer is connected. */
  get connected(): boolean {
    return this.#peers.size > 0;
  }

  /** Number of peers connected now. */
  get peerCount(): number {
    return this.#peers.size;
  }

  /** Resolves once a peer is connected (immediately if one is). */
  whenConnected(): Promise<void> {
    if (this.#peers.size > 0) return Promise.resolve();
    return new Promise((resolve) => this.#connectedWaiters.push(resolve));
  }

  onFrame(cb: (frame: Uint8Array) => void): void {
    this.#receiver = cb;
  }

  /** A frame from the Guest: to the peer owning its destination, or to every peer. */
  send(frame: Uint8Array): void {
    this.framesFromGuest++;
    if (frame.length === 0 || frame.length > MAX_FRAME_BYTES) {
      this.droppedFrames++;
      return;
    }
    this.#forward(frame, GUEST_PORT);
  }

  /** The link's state and counters, for `kill -USR2` (one line per peer after a summary line). */
  describe(): string {
    const where = `${this.spec.mode} ${this.spec.hostname}:${this.localPort}`;
    const lines = [
      `socket network ${where}: ${this.#state}, ${this.#peers.size} peer(s); guest sent ${this.framesFromGuest} ` +
      `frames, received ${this.framesToGuest}; ${this.droppedFrames} dropped, ${this.droppedPeers} bad peers dropped`,
    ];
    for (const p of this.#peers.values()) {
      lines.push(
        `  peer ${p.name} (port ${p.port}): received ${p.rxFrames} frames, sent ${p.txFrames}, ` +
          `${p.droppedFrames} dropped, ${p.pendingSendBytes} bytes queued`,
      );
    }
    return lines.join("\n");
  }

  /** Stops listening or connecting, closes every connection and waits for the background loops. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#state = "closed";
    clearTimeout(this.#retryTimer);
    this.#wakeRetry?.();
    try {
      this.#listener?.close();
    } catch { /* already closed */ }
    for (const p of this.#peers.values()) p.close();
    await this.#loop;
    await Promise.all([...this.#serving]);
  }

  // ---- Switching ----

  #forward(frame: Uint8Array, inPort: number): void {
    const out = this.#switch.forward(frame, inPort);
    if (out === TO_NOWHERE) {
      this.droppedFrames++;
    } else if (out === TO_ALL) {
      if (inPort !== GUEST_PORT) this.#toGuest(frame);
      for (const p of this.#peers.values()) if (p.port !== inPort) this.#toPeer(p, frame);
      if (inPort === GUEST_PORT && this.#peers.size === 0) this.droppedFrames++;
    } else if (out === GUEST_PORT) {
      this.#toGuest(frame);
    } else {
      const p = this.#peers.get(out);
      if (p === undefined) this.droppedFrames++;
      else this.#toPeer(p, frame);
    }
  }

  #toGuest(frame: Uint8Array): void {
    this.framesToGuest++;
    this.#receiver(frame);
  }

  #toPeer(peer: Peer, frame: Uint8Array): void {
    if (peer.pendingSendBytes + 4 + frame.length > MAX_PENDING_SEND_BYTES) {
      peer.droppedFrames++;
      this.droppedFrames++;
      return;
    }
    const packet = new Uint8Array(4 + frame.length);
    new DataView(packet.buffer).setUint32(0, frame.length, false);
    packet.set(frame, 4);
    peer.pendingSendBytes += packet.length;
    peer.txFrames++;
    peer.sendTail = peer.sendTail.then(async () => {
      try {
        if (!peer.closedByUs) {
          for (let done = 0; done < packet.length;) done += await peer.conn.write(packet.subarray(done));
        }
      } catch {
        // The read loop sees the broken connection too and tidies up.
      } finally {
        peer.pendingSendBytes -= packet.length;
      }
    });
  }

  // ---- Connections ----

  async #acceptLoop(listener: Deno.TcpListener): Promise<void> {
    this.#state = "waiting for peers";
    debug(`socket network: waiting for peers on ${this.spec.hostname}:${this.localPort}`);
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
      if (this.#peers.size >= this.#maxPeers && !this.#evictSilentPeer()) {
        warn(`socket network: refused peer ${fmtAddr(conn.remoteAddr)}: ${this.#maxPeers} peers already`);
        conn.close();
        continue;
      }
      const serving = this.#serve(conn);
      this.#serving.add(serving);
      serving.finally(() => this.#serving.delete(serving));
    }
  }

  /** Drops the longest-connected peer that has not sent a frame yet; false if every peer has. */
  #evictSilentPeer(): boolean {
    for (const p of this.#peers.values()) {
      if (p.rxFrames === 0) {
        this.#dropPeer(p, "it never sent a frame and a new peer needs its place");
        return true;
      }
    }
    return false;
  }

  async #connectLoop(): Promise<void> {
    const { hostname, port } = this.spec;
    while (!this.#closed) {
      this.#state = `connecting to ${hostname}:${port}`;
      let conn: Deno.TcpConn | null = null;
      try {
        conn = await Deno.connect({ hostname, port, transport: "tcp" });
      } catch (e) {
        debug(
          `socket network: connect ${hostname}:${port}: ${
            hostErrorReason(e)
          }; retrying in ${this.#retryMs} ms`,
        );
      }
      if (conn !== null) await this.#serve(conn);
      if (!this.#closed) {
        this.#state = `retrying ${hostname}:${port}`;
        await this.#sleep(this.#retryMs);
      }
    }
  }

  #dropPeer(peer: Peer, why: string): void {
    if (peer.closedByUs) return;
    this.droppedPeers++;
    warn(`socket network: dropped peer ${peer.name}: ${why}`);
    peer.close();
  }

  /** Reads length-prefixed frames from `conn` until it closes or breaks the framing. */
  async #serve(conn: Deno.TcpConn): Promise<void> {
    if (this.#closed) {
      conn.close();
      return;
    }
    const peer = new Peer(conn, this.#nextPort++);
    this.#peers.set(peer.port, peer);
    this.#state = this.spec.mode === "connect" ? `connected to ${peer.name}` : "serving peers";
    debug(`socket network: peer ${peer.name} connected`);
    for (const w of this.#connectedWaiters.splice(0)) w();
    const chunk = new Uint8Array(READ_CHUNK_BYTES);
    const lenBytes = new Uint8Array(4);
    const lenView = new DataView(lenBytes.buffer);
    let lenHave = 0;
    let frame: Uint8Array | null = null;
    let frameHave = 0;
    let stallTimer: ReturnType<typeof setTimeout> | undefined;
    try {
      while (!peer.closedByUs) {
        const n = await conn.read(chunk);
        clearTimeout(stallTimer);
        if (n === null) break;
        let at = 0;
        while (at < n && !peer.closedByUs) {
          if (frame !== null) {
            const k = Math.min(frame.length - frameHave, n - at);
            frame.set(chunk.subarray(at, at + k), frameHave);
            frameHave += k;
            at += k;
            if (frameHave === frame.length) {
              const done = frame;
              frame = null;
              peer.rxFrames++;
              this.#forward(done, peer.port);
            }
          } else {
            lenBytes[lenHave++] = chunk[at++];
            if (lenHave < 4) continue;
            lenHave = 0;
            const len = lenView.getUint32(0, false);
            if (len === 0) continue;
            if (len > MAX_FRAME_BYTES) {
              this.droppedFrames++;
              this.#dropPeer(peer, `it announced a ${len}-byte frame (at most ${MAX_FRAME_BYTES})`);
            } else {
              frame = new Uint8Array(len);
              frameHave = 0;
            }
          }
        }
        if ((frame !== null || lenHave > 0) && !peer.closedByUs) {
          stallTimer = setTimeout(
            () => this.#dropPeer(peer, `it stopped for ${this.#stallMs} ms in the middle of a frame`),
            this.#stallMs,
          );
        }
      }
    } catch (e) {
      if (!peer.closedByUs) debug(`socket network: peer ${peer.name}: ${hostErrorReason(e)}`);
    }
    clearTimeout(stallTimer);
    this.#peers.delete(peer.port);
    this.#switch.forgetPort(peer.port);
    const wasOurs = peer.closedByUs;
    peer.close();
    await peer.sendTail;
    if (!wasOurs) debug(`socket network: peer ${peer.name} disconnected`);
    if (this.#peers.size === 0 && !this.#closed && this.spec.mode === "listen") {
      this.#state = "waiting for peers";
      debug(`socket network: waiting for peers on ${this.spec.hostname}:${this.localPort}`);
    }
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
