/**
 * The user-mode router's TCP: a table of TcpConnections (lib/net/tcp_connection.ts), each joined
 * to a host socket. A guest SYN opens a Deno.connect to the destination (the gateway meaning the
 * host's 127.0.0.1) and is answered once that connects; a hostfwd listener's client opens a
 * connection towards the guest. Host sockets are read only while the connection's send buffer has
 * room, and written one chunk at a time, so the table's memory is bounded by MAX_TCP_CONNECTIONS
 * × (SEND_BUFFER_BYTES + RECEIVE_WINDOW_BYTES) whatever either side does.
 */
import type { Ipv4Packet } from "../net/ipv4.ts";
import { formatIpv4 } from "../net/ipv4.ts";
import { CLOSED, TcpConnection, type TcpCounters, type TcpHostSide } from "../net/tcp_connection.ts";
import { buildTcpFrame, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type TcpSegment } from "../net/tcp_segment.ts";
import { LaunchError } from "../support/errors.ts";
import { debug, warn } from "../support/log.ts";
import { hostErrorReason } from "./file_disk.ts";
import { type HostForward, USER_NET_GATEWAY, USER_NET_GUEST, type UserNet } from "./user_net.ts";

/** Connections at once; a SYN beyond this is reset. */
export const MAX_TCP_CONNECTIONS = 256;
const READ_CHUNK_BYTES = 64 << 10;
/** Source ports the router uses for hostfwd connections towards the guest. */
const FORWARD_PORT_FIRST = 40000;
const FORWARD_PORT_COUNT = 20000;

/** One connection's host socket and the TcpConnection it feeds. */
class TcpFlow implements TcpHostSide {
  readonly key: string;
  readonly owner: UserNetTcp;
  conn!: TcpConnection;
  sock: Deno.TcpConn | null = null;
  #writes: Uint8Array[] = [];
  #writing = false;
  #endAfterWrites = false;
  #wakeReader: (() => void) | null = null;
  #closed = false;

  constructor(owner: UserNetTcp, key: string) {
    this.owner = owner;
    this.key = key;
  }

  data(bytes: Uint8Array): void {
    this.#writes.push(bytes);
    if (!this.#writing) this.#writeLoop();
  }

  end(): void {
    this.#endAfterWrites = true;
    if (!this.#writing) this.#writeLoop();
  }

  reset(): void {
    this.#closeSocket();
  }

  established(): void {
    this.#readLoop();
  }

  room(): void {
    const w = this.#wakeReader;
    this.#wakeReader = null;
    w?.();
  }

  closed(): void {
    this.owner.forget(this);
    // Let queued writes finish (the guest's last bytes before its FIN), then close.
    if (!this.#writing) this.#closeSocket();
    else this.#endAfterWrites = true;
  }

  #closeSocket(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.room();
    try {
      this.sock?.close();
    } catch { /* already closed */ }
  }

  async #writeLoop(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#writes.length > 0 && !this.#closed && this.sock !== null) {
        const chunk = this.#writes.shift()!;
        for (let done = 0; done < chunk.length;) done += await this.sock.write(chunk.subarray(done));
        this.conn.hostWritten(chunk.length);
      }
      if (this.#endAfterWrites && !this.#closed && this.sock !== null) {
        if (this.conn.state === CLOSED) this.#closeSocket();
        else await this.sock.closeWrite();
      }
    } catch (e) {
      if (!this.#closed) {
        debug(`user network: TCP ${this.key}: write: ${hostErrorReason(e)}`);
        this.conn.hostReset();
        this.#closeSocket();
      }
    } finally {
      this.#writing = false;
    }
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(READ_CHUNK_BYTES);
    const sock = this.sock;
    if (sock === null) return;
    try {
      while (!this.#closed) {
        const room = this.conn.sendRoom;
        if (room === 0) {
          if (this.conn.state === CLOSED) return;
          await new Promise<void>((resolve) => this.#wakeReader = resolve);
          continue;
        }
        const n = await sock.read(buf.subarray(0, Math.min(room, READ_CHUNK_BYTES)));
        if (n === null) {
          this.conn.hostEof();
          return;
        }
        this.conn.hostData(buf.subarray(0, n));
      }
    } catch (e) {
      if (!this.#closed) {
        debug(`user network: TCP ${this.key}: read: ${hostErrorReason(e)}`);
        this.conn.hostReset();
        this.#closeSocket();
      }
    }
  }
}

export class UserNetTcp {
  readonly #net: UserNet;
  readonly #flows = new Map<string, TcpFlow>();
  readonly #listeners: Deno.TcpListener[] = [];
  readonly #accepting: Promise<void>[] = [];
  readonly counters: TcpCounters = { retransmits: 0, outOfOrder: 0, rejected: 0 };
  connectionsOpened = 0;
  refused = 0;
  #nextForwardPort = 0;
  #issSeed = 0x1234_5678;

  constructor(net: UserNet) {
    this.#net = net;
  }

  get connectionCount(): number {
    return this.#flows.size;
  }

  /** A segment from the guest (already checked) for its connection, or a new one on SYN. */
  segment(p: Ipv4Packet, seg: TcpSegment): void {
    const key = `${seg.srcPort}>${formatIpv4(p.dst)}:${seg.dstPort}`;
    const flow = this.#flows.get(key);
    if (flow !== undefined) return flow.conn.segment(seg);
    if ((seg.flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) === TCP_SYN) return this.#open(key, p, seg);
    if (seg.flags & TCP_RST) return;
    // No such connection: reset (RFC 9293 §3.10.7.1).
    this.#net.drop("TCP for no connection");
    const ep = this.#endpoints(p.dst, seg.dstPort, seg.srcPort);
    const len = seg.payload.length + ((seg.flags & TCP_FIN) ? 1 : 0);
    const frame = (seg.flags & TCP_ACK)
      ? buildTcpFrame(ep, TCP_RST, seg.ack, 0, 0, 0, 0, null, this.#net.nextIpId())
      : buildTcpFrame(ep, TCP_RST | TCP_ACK, 0, (seg.seq + len) >>> 0, 0, 0, 0, null, this.#net.nextIpId());
    this.#net.toGuest(frame);
  }

  #endpoints(remoteAddr: number, remotePort: number, guestPort: number) {
    return {
      guestMac: this.#net.link.guestMac,
      routerMac: this.#net.link.routerMac,
      guestAddr: USER_NET_GUEST,
      guestPort,
      remoteAddr,
      remotePort,
    };
  }

  #newFlow(key: string, remoteAddr: number, remotePort: number, guestPort: number): TcpFlow {
    const flow = new TcpFlow(this, key);
    // Initial sequence numbers need only differ between connections here: the router is the
    // only one on its segment who could be spoofed, and it trusts nobody's sequence numbers.
    this.#issSeed = (Math.imul(this.#issSeed, 1103515245) + 12345 + this.connectionsOpened) >>> 0;
    flow.conn = new TcpConnection(this.#endpoints(remoteAddr, remotePort, guestPort), flow, {
      iss: this.#issSeed,
      timers: this.#net.timers,
      output: (f) => this.#net.toGuest(f),
      nextIpId: () => this.#net.nextIpId(),
      counters: this.counters,
    });
    this.#flows.set(key, flow);
    this.connectionsOpened++;
    return flow;
  }

  #open(key: string, p: Ipv4Packet, syn: TcpSegment): void {
    const hostname = this.#net.hostFor(p.dst);
    const full = this.#flows.size >= MAX_TCP_CONNECTIONS;
    if (hostname === null || full) {
      this.refused++;
      debug(
        `user network: TCP to ${formatIpv4(p.dst)}:${syn.dstPort} refused (${
          full ? "too many connections" : "not allowed"
        })`,
      );
      const ep = this.#endpoints(p.dst, syn.dstPort, syn.srcPort);
      this.#net.toGuest(
        buildTcpFrame(ep, TCP_RST | TCP_ACK, 0, (syn.seq + 1) >>> 0, 0, 0, 0, null, this.#net.nextIpId()),
      );
      return;
    }
    const flow = this.#newFlow(key, p.dst, syn.dstPort, syn.srcPort);
    flow.conn.acceptSyn(syn);
    debug(`user network: TCP ${key}: connecting to ${hostname}:${syn.dstPort}`);
    Deno.connect({ hostname, port: syn.dstPort, transport: "tcp" }).then(
      (sock) => {
        if (flow.conn.state === CLOSED) {
          sock.close();
          return;
        }
        flow.sock = sock;
        flow.conn.hostConnected();
      },
      (e) => {
        debug(`user network: TCP ${key}: ${hostErrorReason(e)}`);
        flow.conn.hostConnectFailed();
      },
    );
  }

  /** Starts a hostfwd listener (synchronously, so a busy port is a LaunchError at start). */
  forward(f: HostForward): void {
    let listener: Deno.TcpListener;
    try {
      listener = Deno.listen({ hostname: f.hostAddr, port: f.hostPort, transport: "tcp" });
    } catch (e) {
      throw new LaunchError(`Cannot forward tcp:${f.hostAddr}:${f.hostPort}: ${hostErrorReason(e)}`);
    }
    this.#listeners.push(listener);
    debug(`user network: forwarding tcp ${f.hostAddr}:${f.hostPort} to the guest's port ${f.guestPort}`);
    this.#accepting.push(this.#acceptLoop(listener, f));
  }

  /** The port a hostfwd listener got (useful with port 0), by rule index among TCP rules. */
  listenerPort(i: number): number {
    return (this.#listeners[i].addr as Deno.NetAddr).port;
  }

  async #acceptLoop(listener: Deno.TcpListener, f: HostForward): Promise<void> {
    for (;;) {
      let sock: Deno.TcpConn;
      try {
        sock = await listener.accept();
      } catch {
        return; // closed
      }
      if (this.#flows.size >= MAX_TCP_CONNECTIONS) {
        warn(
          `user network: hostfwd tcp:${f.hostPort}: refused a client, ${MAX_TCP_CONNECTIONS} connections open`,
        );
        sock.close();
        continue;
      }
      let port = 0;
      let key = "";
      for (let tries = 0; tries < FORWARD_PORT_COUNT; tries++) {
        port = FORWARD_PORT_FIRST + (this.#nextForwardPort++ % FORWARD_PORT_COUNT);
        key = `${f.guestPort}>${formatIpv4(USER_NET_GATEWAY)}:${port}`;
        if (!this.#flows.has(key)) break;
      }
      const flow = this.#newFlow(key, USER_NET_GATEWAY, port, f.guestPort);
      flow.sock = sock;
      debug(`user network: hostfwd tcp:${f.hostPort}: client connected, opening ${key}`);
      flow.conn.connect();
    }
  }

  forget(flow: TcpFlow): void {
    if (this.#flows.get(flow.key) === flow) this.#flows.delete(flow.key);
  }

  describe(): string {
    const lines = [
      `  tcp: ${this.#flows.size} connections (${this.connectionsOpened} opened, ${this.refused} refused), ` +
      `${this.counters.retransmits} retransmissions, ${this.counters.outOfOrder} out-of-order segments`,
    ];
    for (const [k, f] of this.#flows) lines.push(`    ${k}: ${f.conn.describe()}`);
    return lines.join("\n");
  }

  async close(): Promise<void> {
    for (const l of this.#listeners) {
      try {
        l.close();
      } catch { /* already closed */ }
    }
    await Promise.all(this.#accepting);
    for (const f of [...this.#flows.values()]) {
      f.conn.abandon();
      f.reset();
    }
    this.#flows.clear();
  }
}
