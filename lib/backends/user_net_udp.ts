/**
 * The user-mode router's UDP: each guest flow (source port, destination) gets a host socket
 * (lib/backends/udp_socket.ts) bound to an ephemeral port, and replies from that destination come
 * back as datagrams from it (the gateway when it was the host's 127.0.0.1); flows idle for
 * UDP_IDLE_MS are closed, and at most MAX_UDP_FLOWS exist (the oldest makes way). A hostfwd rule
 * listens on a host port and relays each host client's datagrams to the guest's port from a
 * gateway port of its own, and the guest's answers back to that client.
 */
import type { Ipv4Packet } from "../net/ipv4.ts";
import { formatIpv4 } from "../net/ipv4.ts";
import type { NetTimer } from "../net/net_timers.ts";
import { buildUdpFrame, type UdpDatagram } from "../net/udp.ts";
import { LaunchError } from "../support/errors.ts";
import { debug } from "../support/log.ts";
import { hostErrorReason } from "./file_disk.ts";
import { UdpSocket } from "./udp_socket.ts";
import { type HostForward, USER_NET_GATEWAY, USER_NET_GUEST, type UserNet } from "./user_net.ts";

export const MAX_UDP_FLOWS = 64;
const UDP_IDLE_MS = 60_000;
/** Datagrams held while a flow's socket is being bound. */
const MAX_QUEUED_WHILE_OPENING = 16;
const FORWARD_PORT_FIRST = 30000;
const FORWARD_PORT_COUNT = 10000;

interface UdpFlow {
  key: string;
  guestPort: number;
  remoteAddr: number;
  remotePort: number;
  hostname: string;
  sock: UdpSocket | null;
  queued: Uint8Array[];
  idle: NetTimer;
}

/** A host client of a hostfwd rule, seen by the guest as gateway:port. */
interface ForwardClient {
  sock: UdpSocket;
  hostname: string;
  hostPort: number;
  gatewayPort: number;
  guestPort: number;
  idle: NetTimer;
}

export class UserNetUdp {
  readonly #net: UserNet;
  readonly #flows = new Map<string, UdpFlow>();
  readonly #listeners: UdpSocket[] = [];
  /** hostfwd clients by the gateway port the guest answers to, and by host address. */
  readonly #clientsByGatewayPort = new Map<number, ForwardClient>();
  readonly #clientsByHost = new Map<string, ForwardClient>();
  #nextForwardPort = 0;
  datagramsFromGuest = 0;
  datagramsToGuest = 0;
  refused = 0;

  constructor(net: UserNet) {
    this.#net = net;
  }

  get flowCount(): number {
    return this.#flows.size;
  }

  datagram(p: Ipv4Packet, d: UdpDatagram): void {
    this.datagramsFromGuest++;
    if (p.dst === USER_NET_GATEWAY) {
      const client = this.#clientsByGatewayPort.get(d.dstPort);
      if (client !== undefined && client.guestPort === d.srcPort) {
        client.idle.arm(UDP_IDLE_MS);
        client.sock.send(d.payload.slice(), client.hostname, client.hostPort);
        return;
      }
    }
    const hostname = this.#net.hostFor(p.dst);
    if (hostname === null) {
      this.refused++;
      return this.#net.drop("UDP to a destination not allowed");
    }
    const key = `${d.srcPort}>${formatIpv4(p.dst)}:${d.dstPort}`;
    let flow = this.#flows.get(key);
    if (flow === undefined) flow = this.#open(key, p.dst, d, hostname);
    flow.idle.arm(UDP_IDLE_MS);
    if (flow.sock !== null) flow.sock.send(d.payload.slice(), hostname, d.dstPort);
    else if (flow.queued.length < MAX_QUEUED_WHILE_OPENING) flow.queued.push(d.payload.slice());
    else this.#net.drop("UDP while its socket opens");
  }

  #open(key: string, remoteAddr: number, d: UdpDatagram, hostname: string): UdpFlow {
    if (this.#flows.size >= MAX_UDP_FLOWS) {
      const oldest = this.#flows.values().next().value!;
      this.#closeFlow(oldest);
    }
    const flow: UdpFlow = {
      key,
      guestPort: d.srcPort,
      remoteAddr,
      remotePort: d.dstPort,
      hostname,
      sock: null,
      queued: [],
      idle: this.#net.timers.create(() => this.#closeFlow(flow)),
    };
    this.#flows.set(key, flow);
    UdpSocket.open(hostname === "127.0.0.1" ? "127.0.0.1" : "0.0.0.0", 0).then(
      (sock) => {
        if (this.#flows.get(key) !== flow) {
          sock.close();
          return;
        }
        flow.sock = sock;
        sock.onMessage((data, from, fromPort) => {
          // Only the destination's answers come back, as through a NAT's port mapping.
          if (from !== flow.hostname || fromPort !== flow.remotePort) return;
          flow.idle.arm(UDP_IDLE_MS);
          this.#toGuest(flow.remoteAddr, flow.remotePort, flow.guestPort, data);
        });
        for (const q of flow.queued.splice(0)) sock.send(q, hostname, flow.remotePort);
      },
      (e) => {
        debug(`user network: UDP ${key}: ${hostErrorReason(e)}`);
        this.#closeFlow(flow);
      },
    );
    return flow;
  }

  #closeFlow(flow: UdpFlow): void {
    flow.idle.cancel();
    flow.sock?.close();
    if (this.#flows.get(flow.key) === flow) this.#flows.delete(flow.key);
  }

  #toGuest(src: number, srcPort: number, guestPort: number, data: Uint8Array): void {
    this.datagramsToGuest++;
    const link = this.#net.link;
    this.#net.toGuest(buildUdpFrame(
      { dst: link.guestMac, src: link.routerMac },
      src,
      srcPort,
      USER_NET_GUEST,
      guestPort,
      data,
      this.#net.nextIpId(),
    ));
  }

  /** Starts a hostfwd listener. */
  async forward(f: HostForward): Promise<void> {
    let sock: UdpSocket;
    try {
      sock = await UdpSocket.open(f.hostAddr, f.hostPort);
    } catch (e) {
      throw new LaunchError(`Cannot forward udp:${f.hostAddr}:${f.hostPort}: ${hostErrorReason(e)}`);
    }
    this.#listeners.push(sock);
    debug(`user network: forwarding udp ${f.hostAddr}:${f.hostPort} to the guest's port ${f.guestPort}`);
    sock.onMessage((data, hostname, hostPort) => {
      const id = `${hostname}:${hostPort}>${f.guestPort}`;
      let client = this.#clientsByHost.get(id);
      if (client === undefined) {
        if (this.#clientsByHost.size >= MAX_UDP_FLOWS) {
          const oldest = this.#clientsByHost.values().next().value!;
          this.#forgetClient(oldest);
        }
        let gatewayPort = 0;
        for (let i = 0; i < FORWARD_PORT_COUNT; i++) {
          gatewayPort = FORWARD_PORT_FIRST + (this.#nextForwardPort++ % FORWARD_PORT_COUNT);
          if (!this.#clientsByGatewayPort.has(gatewayPort)) break;
        }
        const c: ForwardClient = {
          sock,
          hostname,
          hostPort,
          gatewayPort,
          guestPort: f.guestPort,
          idle: this.#net.timers.create(() => this.#forgetClient(c)),
        };
        client = c;
        this.#clientsByHost.set(id, c);
        this.#clientsByGatewayPort.set(gatewayPort, c);
      }
      client.idle.arm(UDP_IDLE_MS);
      this.#toGuest(USER_NET_GATEWAY, client.gatewayPort, f.guestPort, data);
    });
  }

  /** The port the i-th UDP hostfwd listener got (useful with port 0). */
  listenerPort(i: number): number {
    return this.#listeners[i].localPort;
  }

  #forgetClient(c: ForwardClient): void {
    c.idle.cancel();
    this.#clientsByGatewayPort.delete(c.gatewayPort);
    this.#clientsByHost.delete(`${c.hostname}:${c.hostPort}>${c.guestPort}`);
  }

  describe(): string {
    return `  udp: ${this.#flows.size} flows, ${this.#clientsByHost.size} hostfwd clients; ` +
      `${this.datagramsFromGuest} datagrams from the guest, ${this.datagramsToGuest} to it, ${this.refused} refused`;
  }

  close(): Promise<void> {
    for (const f of [...this.#flows.values()]) this.#closeFlow(f);
    for (const c of [...this.#clientsByHost.values()]) this.#forgetClient(c);
    for (const l of this.#listeners) l.close();
    return Promise.resolve();
  }
}
