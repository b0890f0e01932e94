/**
 * A guest's side of the user-mode network for unit tests: builds the frames a guest would send
 * (ARP, DHCP, ICMP, UDP, TCP, with real checksums) and collects the router's answers, parsed
 * with the same checked parsers the router uses on guest frames.
 */
import { UserNet, type UserNetOptions } from "../../lib/backends/user_net.ts";
import { internetChecksum } from "../../lib/net/checksum.ts";
import { ETH_HEADER_BYTES, etherType, ETHERTYPE_IPV4, writeEthernetHeader } from "../../lib/net/ethernet.ts";
import {
  IPPROTO_ICMP,
  IPV4_HEADER_BYTES,
  type Ipv4Packet,
  parseIpv4,
  writeIpv4Header,
} from "../../lib/net/ipv4.ts";
import { buildTcpFrame, parseTcp, type TcpSegment } from "../../lib/net/tcp_segment.ts";
import { buildUdpFrame, parseUdp, type UdpDatagram } from "../../lib/net/udp.ts";
import { VirtualClock } from "../../lib/machine/clock.ts";

export const GUEST_MAC = new Uint8Array([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
export const ROUTER_MAC = new Uint8Array([0x52, 0x55, 0x0A, 0x00, 0x02, 0x02]);
export const GUEST = 0x0A00020F;
export const GATEWAY = 0x0A000202;
export const DNS = 0x0A000203;

export class RouterGuest {
  readonly net: UserNet;
  readonly clock: VirtualClock;
  readonly frames: Uint8Array[] = [];
  #waiters: (() => void)[] = [];
  #ticker: ReturnType<typeof setInterval>;
  #seen = 0;

  private constructor(net: UserNet, clock: VirtualClock) {
    this.net = net;
    this.clock = clock;
    net.onFrame((f) => {
      this.frames.push(f);
      for (const w of this.#waiters.splice(0)) w();
    });
    // The machine's run loop would fire due timers. Here no CPU retires instructions, so the
    // host-mode clock moves only as a halted machine's does: caught up with host time, then polled.
    this.#ticker = setInterval(() => {
      clock.catchUp(Infinity);
      clock.runDue();
    }, 5);
  }

  static async open(options: Partial<UserNetOptions> = {}): Promise<RouterGuest> {
    const clock = new VirtualClock("host");
    const net = await UserNet.open({ clock, ...options });
    return new RouterGuest(net, clock);
  }

  async close(): Promise<void> {
    clearInterval(this.#ticker);
    await this.net.close();
  }

  /** Waits for the next frame (after the ones already taken) that `pick` accepts; returns pick's value. */
  async next<T>(pick: (f: Uint8Array) => T | undefined, what: string, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.#seen < this.frames.length) {
        const v = pick(this.frames[this.#seen++]);
        if (v !== undefined) return v;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        const id = setTimeout(r, Math.min(left, 50));
        this.#waiters.push(() => {
          clearTimeout(id);
          r();
        });
      });
    }
  }

  /** True if no frame `pick` accepts arrives within `ms`. */
  async quiet(pick: (f: Uint8Array) => unknown, ms: number): Promise<boolean> {
    try {
      await this.next((f) => pick(f) ? true : undefined, "nothing", ms);
      return false;
    } catch {
      return true;
    }
  }

  nextTcp(port: number, what: string, timeoutMs = 5000): Promise<TcpSegment> {
    return this.next(
      (f) => {
        const s = tcpOf(f);
        return s !== undefined && s.dstPort === port ? s : undefined;
      },
      what,
      timeoutMs,
    );
  }

  nextUdp(port: number, what: string): Promise<UdpDatagram & { ip: Ipv4Packet }> {
    return this.next((f) => {
      const p = ipv4Of(f);
      if (p === undefined || p.protocol !== 17) return undefined;
      const d = parseUdp(f, p);
      return typeof d !== "string" && d.dstPort === port ? { ...d, ip: p } : undefined;
    }, what);
  }

  // ---- Sending as the guest ----

  tcp(
    srcPort: number,
    dst: number,
    dstPort: number,
    flags: number,
    seq: number,
    ack: number,
    payload: Uint8Array = new Uint8Array(0),
    window = 65535,
    mss = 0,
  ): void {
    this.net.send(guestTcpFrame(srcPort, dst, dstPort, flags, seq, ack, payload, window, mss));
  }

  udp(srcPort: number, dst: number, dstPort: number, payload: Uint8Array, src = GUEST): void {
    this.net.send(buildUdpFrame({ dst: ROUTER_MAC, src: GUEST_MAC }, src, srcPort, dst, dstPort, payload, 1));
  }

  ping(dst: number, id: number, seq: number, data: Uint8Array): void {
    const icmp = new Uint8Array(8 + data.length);
    icmp.set([8, 0, 0, 0, id >> 8, id & 0xFF, seq >> 8, seq & 0xFF]);
    icmp.set(data, 8);
    const sum = internetChecksum(icmp, 0, icmp.length);
    icmp[2] = sum >> 8;
    icmp[3] = sum & 0xFF;
    this.net.send(ipv4Frame(GUEST, dst, IPPROTO_ICMP, icmp));
  }
}

/** A TCP segment from the guest, built with the router's own builder with the ends swapped. */
export function guestTcpFrame(
  srcPort: number,
  dst: number,
  dstPort: number,
  flags: number,
  seq: number,
  ack: number,
  payload: Uint8Array,
  window: number,
  mss: number,
): Uint8Array {
  const ep = {
    guestMac: ROUTER_MAC,
    routerMac: GUEST_MAC,
    guestAddr: dst,
    guestPort: dstPort,
    remoteAddr: GUEST,
    remotePort: srcPort,
  };
  return buildTcpFrame(
    ep,
    flags,
    seq >>> 0,
    ack >>> 0,
    window,
    mss,
    payload.length,
    (f, at) => f.set(payload, at),
    7,
  );
}

export function ipv4Frame(src: number, dst: number, protocol: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(ETH_HEADER_BYTES + IPV4_HEADER_BYTES + payload.length);
  writeEthernetHeader(f, ROUTER_MAC, GUEST_MAC, ETHERTYPE_IPV4);
  writeIpv4Header(f, ETH_HEADER_BYTES, src, dst, protocol, payload.length, 3);
  f.set(payload, ETH_HEADER_BYTES + IPV4_HEADER_BYTES);
  return f;
}

export function ipv4Of(f: Uint8Array): Ipv4Packet | undefined {
  if (f.length < ETH_HEADER_BYTES || etherType(f) !== ETHERTYPE_IPV4) return undefined;
  const p = parseIpv4(f, ETH_HEADER_BYTES);
  return typeof p === "string" ? undefined : p;
}

export function tcpOf(f: Uint8Array): TcpSegment | undefined {
  const p = ipv4Of(f);
  if (p === undefined || p.protocol !== 6) return undefined;
  const s = parseTcp(f, p);
  return typeof s === "string" ? undefined : { ...s, payload: s.payload.slice() };
}
