/**
 * User-mode networking (`--net=user`): a virtual router in TypeScript between the Guest and the
 * host's sockets, with QEMU's addresses (guest 10.0.2.15, gateway 10.0.2.2 = the host's 127.0.0.1,
 * DNS 10.0.2.3), so no root, TAP or helper is needed. The router answers ARP for its addresses,
 * hands out the guest's address by DHCP, answers pings to itself, forwards DNS questions to the
 * host's resolver, terminates the guest's TCP (lib/net/tcp_connection.ts) and UDP and carries the
 * bytes on host sockets (user_net_tcp.ts, user_net_udp.ts), and forwards host ports to the guest
 * (hostfwd). Every guest frame is untrusted: whatever fails a check is dropped and counted by
 * reason. The guest reaches only what the user allows: `restrict` turns outbound connections
 * (and DNS) off, and the host's own addresses are reachable only through the gateway's mapping.
 */
import { answerDhcp, DHCP_CLIENT_PORT, DHCP_SERVER_PORT } from "../net/dhcp_server.ts";
import {
  buildDnsReply,
  DNS_PORT,
  DNS_TYPE_A,
  DNS_TYPE_AAAA,
  type DnsQuery,
  parseDnsQuery,
  RCODE_NOERROR,
  RCODE_NOTIMP,
  RCODE_NXDOMAIN,
  RCODE_SERVFAIL,
} from "../net/dns_message.ts";
import {
  BROADCAST_MAC,
  ETH_HEADER_BYTES,
  ETH_SRC,
  etherType,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  macEquals,
} from "../net/ethernet.ts";
import { buildArpReply, parseArpRequest } from "../net/arp.ts";
import { buildEchoReply } from "../net/icmp.ts";
import {
  formatIpv4,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_BROADCAST,
  type Ipv4Packet,
  parseIpv4,
  parseIpv4Address,
} from "../net/ipv4.ts";
import { type NetClock, NetTimers } from "../net/net_timers.ts";
import { parseTcp } from "../net/tcp_segment.ts";
import { buildUdpFrame, parseUdp } from "../net/udp.ts";
import { debug } from "../support/log.ts";
import type { NetBackend } from "../virtio/net.ts";
import { UserNetTcp } from "./user_net_tcp.ts";
import { UserNetUdp } from "./user_net_udp.ts";

export const USER_NET_NETWORK = 0x0A00_0200; // 10.0.2.0/24
export const USER_NET_NETMASK = 0xFFFF_FF00;
export const USER_NET_GATEWAY = 0x0A00_0202; // 10.0.2.2: the host's 127.0.0.1
export const USER_NET_DNS = 0x0A00_0203; // 10.0.2.3
export const USER_NET_GUEST = 0x0A00_020F; // 10.0.2.15
/** The router's MAC, QEMU's for its gateway. */
export const USER_NET_ROUTER_MAC: Uint8Array = new Uint8Array([0x52, 0x55, 0x0A, 0x00, 0x02, 0x02]);
/** DNS questions waiting for the host's resolver; more are answered SERVFAIL. */
const MAX_PENDING_DNS = 32;

/** A `hostfwd=` rule: connections to hostAddr:hostPort go to the guest's guestPort. */
export interface HostForward {
  protocol: "tcp" | "udp";
  hostAddr: string;
  hostPort: number;
  guestPort: number;
}

export interface UserNetOptions {
  hostForwards?: HostForward[];
  /** Refuse every connection the guest starts (and DNS): only hostfwd traffic flows. */
  restrict?: boolean;
  /** The machine's clock, for TCP timers (a host-time VirtualClock when absent). */
  clock: NetClock;
  /** Wakes a halted machine when a host event armed a timer. */
  wake?: () => void;
  /** The host's resolver (Deno.resolveDns by default); tests may pass their own. */
  resolve?: (name: string, type: "A" | "AAAA") => Promise<string[]>;
}

/** The two MACs on the router's segment: the guest's (learned from its frames) and ours. */
export interface RouterLink {
  guestMac: Uint8Array;
  routerMac: Uint8Array;
}

export class UserNet implements NetBackend {
  readonly link: RouterLink = { guestMac: BROADCAST_MAC.slice(), routerMac: USER_NET_ROUTER_MAC };
  /** Frames from the guest dropped, by reason. */
  readonly drops = new Map<string, number>();
  framesFromGuest = 0;
  framesToGuest = 0;
  readonly restrict: boolean;
  readonly timers: NetTimers;
  readonly tcp: UserNetTcp;
  readonly udp: UserNetUdp;
  #receiver: (frame: Uint8Array) => void = () => {};
  #ipId = 0;
  #pendingDns = 0;
  #closed = false;
  readonly #resolve: (name: string, type: "A" | "AAAA") => Promise<string[]>;
  /** The host's own addresses, unreachable from the guest except 127.0.0.1 through the gateway. */
  readonly #hostAddrs: Set<number>;

  private constructor(options: UserNetOptions) {
    this.restrict = options.restrict ?? false;
    this.timers = new NetTimers(options.clock, "user-net", options.wake);
    this.#resolve = options.resolve ??
      ((name, type) => Deno.resolveDns(name, type) as Promise<string[]>);
    this.#hostAddrs = hostAddresses();
    this.tcp = new UserNetTcp(this);
    this.udp = new UserNetUdp(this);
  }

  /** Opens the router and its hostfwd listeners (a busy host port is a LaunchError). */
  static async open(options: UserNetOptions): Promise<UserNet> {
    const net = new UserNet(options);
    try {
      for (const f of options.hostForwards ?? []) {
        if (f.protocol === "tcp") net.tcp.forward(f);
        else await net.udp.forward(f);
      }
    } catch (e) {
      await net.close();
      throw e;
    }
    return net;
  }

  onFrame(cb: (frame: Uint8Array) => void): void {
    this.#receiver = cb;
  }

  /** Total frames from the guest dropped. */
  get droppedFrames(): number {
    let n = 0;
    for (const v of this.drops.values()) n += v;
    return n;
  }

  /** The next IPv4 identification field. */
  nextIpId(): number {
    this.#ipId = (this.#ipId + 1) & 0xFFFF;
    return this.#ipId;
  }

  /** Hands a frame to the guest. */
  toGuest(frame: Uint8Array): void {
    if (this.#closed) return;
    this.framesToGuest++;
    this.#receiver(frame);
  }

  /** Counts a dropped guest frame under `reason`. */
  drop(reason: string): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1);
  }

  /**
   * The host name a guest connection to `addr` goes to, or null if the guest may not go there:
   * the gateway is the host's 127.0.0.1; our own subnet, loopback, link-local, multicast and the
   * host's own addresses are refused, and with `restrict` everything is.
   */
  hostFor(addr: number): string | null {
    if (this.restrict) return null;
    if (addr === USER_NET_GATEWAY) return "127.0.0.1";
    const a = addr >>> 24;
    if (
      (addr & USER_NET_NETMASK) === USER_NET_NETWORK || a === 0 || a === 127 || a >= 224 ||
      (addr >>> 16) === 0xA9FE || this.#hostAddrs.has(addr)
    ) return null;
    return formatIpv4(addr);
  }

  /** The guest address a host address appears as (127.0.0.1 is the gateway). */
  guestViewOf(hostname: string): number | undefined {
    if (hostname === "127.0.0.1") return USER_NET_GATEWAY;
    return parseIpv4Address(hostname);
  }

  /** State and counters for `kill -USR2`. */
  describe(): string {
    const drops = [...this.drops].map(([k, v]) => `${k} ${v}`).join(", ") || "none";
    return `user network (guest ${formatIpv4(USER_NET_GUEST)}, gateway ${formatIpv4(USER_NET_GATEWAY)}` +
      `${this.restrict ? ", restricted" : ""}): guest sent ${this.framesFromGuest} frames, received ` +
      `${this.framesToGuest}; dropped: ${drops}\n${this.tcp.describe()}\n${this.udp.describe()}`;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([this.tcp.close(), this.udp.close()]);
  }

  // ---- Frames from the guest ----

  send(frame: Uint8Array): void {
    this.framesFromGuest++;
    if (this.#closed) return;
    if (frame.length < ETH_HEADER_BYTES) return this.drop("runt frame");
    if ((frame[ETH_SRC] & 1) === 0) this.link.guestMac.set(frame.subarray(ETH_SRC, ETH_SRC + 6));
    const toUs = macEquals(frame, 0, this.link.routerMac) || macEquals(frame, 0, BROADCAST_MAC);
    switch (etherType(frame)) {
      case ETHERTYPE_ARP:
        return this.#arp(frame);
      case ETHERTYPE_IPV4:
        if (!toUs) return this.drop("not addressed to the router");
        return this.#ipv4(frame);
      case ETHERTYPE_IPV6:
        return this.drop("IPv6");
      default:
        return this.drop("unknown EtherType");
    }
  }

  #arp(frame: Uint8Array): void {
    const req = parseArpRequest(frame);
    if (typeof req === "string") return this.drop(`ARP ${req}`);
    if (req.targetAddr !== USER_NET_GATEWAY && req.targetAddr !== USER_NET_DNS) {
      return this.drop("ARP for an address not ours");
    }
    this.toGuest(buildArpReply(this.link.routerMac, req.targetAddr, req.senderMac, req.senderAddr));
  }

  #ipv4(frame: Uint8Array): void {
    const p = parseIpv4(frame, ETH_HEADER_BYTES);
    if (typeof p === "string") return this.drop(`IPv4 ${p}`);
    switch (p.protocol) {
      case IPPROTO_ICMP:
        return this.#icmp(frame, p);
      case IPPROTO_UDP:
        return this.#udp(frame, p);
      case IPPROTO_TCP: {
        const seg = parseTcp(frame, p);
        if (typeof seg === "string") return this.drop(`TCP ${seg}`);
        if (p.src !== USER_NET_GUEST) return this.drop("TCP from an address not the guest's");
        return this.tcp.segment(p, seg);
      }
      default:
        return this.drop("IP protocol not carried");
    }
  }

  #icmp(frame: Uint8Array, p: Ipv4Packet): void {
    if (p.dst !== USER_NET_GATEWAY && p.dst !== USER_NET_DNS) return this.drop("ICMP beyond the router");
    const reply = buildEchoReply(
      frame,
      p,
      { guest: this.link.guestMac, router: this.link.routerMac },
      this.nextIpId(),
    );
    if (typeof reply === "string") return this.drop(`ICMP ${reply}`);
    this.toGuest(reply);
  }

  #udp(frame: Uint8Array, p: Ipv4Packet): void {
    const d = parseUdp(frame, p);
    if (typeof d === "string") return this.drop(`UDP ${d}`);
    if (d.dstPort === DHCP_SERVER_PORT && (p.dst === IPV4_BROADCAST || p.dst === USER_NET_GATEWAY)) {
      return this.#dhcp(d.payload);
    }
    if (p.src !== USER_NET_GUEST) return this.drop("UDP from an address not the guest's");
    if (p.dst === USER_NET_DNS && d.dstPort === DNS_PORT) return this.#dns(d.srcPort, d.payload);
    this.udp.datagram(p, d);
  }

  #dhcp(payload: Uint8Array): void {
    const r = answerDhcp(payload, {
      serverAddr: USER_NET_GATEWAY,
      guestAddr: USER_NET_GUEST,
      netmask: USER_NET_NETMASK,
      router: USER_NET_GATEWAY,
      dns: USER_NET_DNS,
      leaseSeconds: 86400,
    });
    if ("drop" in r) return this.drop(`DHCP ${r.drop}`);
    debug(`user network: DHCP ${r.type} of ${formatIpv4(USER_NET_GUEST)}`);
    this.toGuest(buildUdpFrame(
      { dst: BROADCAST_MAC, src: this.link.routerMac },
      USER_NET_GATEWAY,
      DHCP_SERVER_PORT,
      IPV4_BROADCAST,
      DHCP_CLIENT_PORT,
      r.reply,
      this.nextIpId(),
    ));
  }

  #dns(guestPort: number, payload: Uint8Array): void {
    const q = parseDnsQuery(payload);
    if ("error" in q) {
      this.drop(`DNS ${q.error}`);
      if (q.reply !== undefined) this.#dnsReply(guestPort, q.reply);
      return;
    }
    if (this.restrict) return this.#dnsReply(guestPort, buildDnsReply(q, 5)); // REFUSED
    if (q.type !== DNS_TYPE_A && q.type !== DNS_TYPE_AAAA) {
      return this.#dnsReply(guestPort, buildDnsReply(q, RCODE_NOTIMP));
    }
    if (this.#pendingDns >= MAX_PENDING_DNS || q.name === "") {
      return this.#dnsReply(guestPort, buildDnsReply(q, RCODE_SERVFAIL));
    }
    this.#pendingDns++;
    this.#lookUp(q).then((reply) => {
      this.#pendingDns--;
      this.#dnsReply(guestPort, reply);
    });
  }

  async #lookUp(q: DnsQuery): Promise<Uint8Array> {
    try {
      const addrs = await this.#resolve(q.name, q.type === DNS_TYPE_A ? "A" : "AAAA");
      return buildDnsReply(q, RCODE_NOERROR, addrs);
    } catch (e) {
      const notFound = e instanceof Deno.errors.NotFound ||
        (e instanceof Error && /no records|not found|NXDomain/i.test(e.message));
      return buildDnsReply(q, notFound ? RCODE_NXDOMAIN : RCODE_SERVFAIL);
    }
  }

  #dnsReply(guestPort: number, reply: Uint8Array): void {
    this.toGuest(buildUdpFrame(
      { dst: this.link.guestMac, src: this.link.routerMac },
      USER_NET_DNS,
      DNS_PORT,
      USER_NET_GUEST,
      guestPort,
      reply,
      this.nextIpId(),
    ));
  }
}

/** The IPv4 addresses of the host's interfaces (none if the host will not say). */
function hostAddresses(): Set<number> {
  const out = new Set<number>();
  try {
    for (const i of Deno.networkInterfaces()) {
      const a = parseIpv4Address(i.address);
      if (a !== undefined) out.add(a);
    }
  } catch {
    // Without --allow-sys the list is unknown; loopback is refused anyway.
  }
  return out;
}
