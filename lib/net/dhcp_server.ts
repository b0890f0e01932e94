/**
 * A DHCP server for one client (RFC 2131, options RFC 2132), as QEMU's user-mode network has: any
 * DISCOVER gets an OFFER of the one guest address, a REQUEST for it (or for nothing in particular)
 * an ACK, a REQUEST for another address a NAK, an INFORM an ACK with the options only. The lease
 * carries the subnet mask, router and DNS server. RELEASE and DECLINE need no answer.
 */
import { readAddr, writeAddr } from "./ipv4.ts";

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;
const BOOTP_FIXED_BYTES = 236;
const MAGIC_COOKIE = 0x63825363;
const BOOTREQUEST = 1;
const BOOTREPLY = 2;

// Message types (option 53).
const DHCPDISCOVER = 1;
const DHCPOFFER = 2;
const DHCPREQUEST = 3;
const DHCPACK = 5;
const DHCPNAK = 6;
const DHCPINFORM = 8;

// Options.
const OPT_PAD = 0;
const OPT_SUBNET_MASK = 1;
const OPT_ROUTER = 3;
const OPT_DNS = 6;
const OPT_REQUESTED_ADDR = 50;
const OPT_LEASE_TIME = 51;
const OPT_MESSAGE_TYPE = 53;
const OPT_SERVER_ID = 54;
const OPT_END = 255;

export interface DhcpConfig {
  serverAddr: number;
  guestAddr: number;
  netmask: number;
  router: number;
  dns: number;
  leaseSeconds: number;
}

/** What to do with a client's message: send `reply` (a UDP payload) or nothing, and why. */
export type DhcpResult = { reply: Uint8Array; type: "offer" | "ack" | "nak" } | { drop: string };

/** Answers one DHCP message from the guest; never throws on a malformed one. */
export function answerDhcp(msg: Uint8Array, config: DhcpConfig): DhcpResult {
  if (msg.length < BOOTP_FIXED_BYTES + 4) return { drop: "truncated" };
  if (msg[0] !== BOOTREQUEST || msg[1] !== 1 || msg[2] !== 6) return { drop: "not an Ethernet BOOTREQUEST" };
  if (readAddr(msg, BOOTP_FIXED_BYTES) !== MAGIC_COOKIE) return { drop: "no DHCP magic cookie" };
  let type = -1;
  let requested: number | undefined;
  let serverId: number | undefined;
  for (let at = BOOTP_FIXED_BYTES + 4; at < msg.length;) {
    const code = msg[at++];
    if (code === OPT_PAD) continue;
    if (code === OPT_END) break;
    if (at >= msg.length) return { drop: "option runs past the message" };
    const len = msg[at++];
    if (at + len > msg.length) return { drop: "option runs past the message" };
    if (code === OPT_MESSAGE_TYPE && len === 1) type = msg[at];
    if (code === OPT_REQUESTED_ADDR && len === 4) requested = readAddr(msg, at);
    if (code === OPT_SERVER_ID && len === 4) serverId = readAddr(msg, at);
    at += len;
  }
  const ciaddr = readAddr(msg, 12);
  switch (type) {
    case DHCPDISCOVER:
      return { reply: reply(msg, config, DHCPOFFER, config.guestAddr), type: "offer" };
    case DHCPREQUEST: {
      if (serverId !== undefined && serverId !== config.serverAddr) {
        return { drop: "a REQUEST for another server" };
      }
      const wanted = requested ?? (ciaddr !== 0 ? ciaddr : config.guestAddr);
      if (wanted !== config.guestAddr) return { reply: reply(msg, config, DHCPNAK, 0), type: "nak" };
      return { reply: reply(msg, config, DHCPACK, config.guestAddr), type: "ack" };
    }
    case DHCPINFORM:
      return { reply: reply(msg, config, DHCPACK, 0), type: "ack" };
    case -1:
      return { drop: "no message type" };
    default:
      return { drop: `message type ${type} needs no answer` };
  }
}

function reply(req: Uint8Array, c: DhcpConfig, type: number, yiaddr: number): Uint8Array {
  const out = new Uint8Array(300); // BOOTP's minimum message size, options included
  out[0] = BOOTREPLY;
  out[1] = 1;
  out[2] = 6;
  out.set(req.subarray(4, 8), 4); // xid
  out.set(req.subarray(10, 12), 10); // flags (the broadcast bit)
  writeAddr(out, 16, yiaddr);
  writeAddr(out, 20, type === DHCPNAK ? 0 : c.serverAddr);
  out.set(req.subarray(28, 44), 28); // chaddr
  writeAddr(out, BOOTP_FIXED_BYTES, MAGIC_COOKIE);
  let at = BOOTP_FIXED_BYTES + 4;
  const opt = (code: number, ...values: number[]) => {
    out[at++] = code;
    out[at++] = values.length * 4;
    for (const v of values) {
      writeAddr(out, at, v);
      at += 4;
    }
  };
  out[at++] = OPT_MESSAGE_TYPE;
  out[at++] = 1;
  out[at++] = type;
  opt(OPT_SERVER_ID, c.serverAddr);
  if (type !== DHCPNAK) {
    if (yiaddr !== 0) opt(OPT_LEASE_TIME, c.leaseSeconds);
    opt(OPT_SUBNET_MASK, c.netmask);
    opt(OPT_ROUTER, c.router);
    opt(OPT_DNS, c.dns);
  }
  out[at] = OPT_END;
  return out;
}
