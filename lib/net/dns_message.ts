/**
 * DNS messages (RFC 1035 §4) as the user-mode network's forwarder needs them: a guest's standard
 * query with one question is parsed (names bounded, no compression in the question, as resolvers
 * send them), and the answer is built from addresses the host's resolver gave, each record
 * pointing back at the question's name. Anything else gets NOTIMP or FORMERR, never a throw.
 */

export const DNS_PORT = 53;
const HEADER_BYTES = 12;
export const DNS_TYPE_A = 1;
export const DNS_TYPE_AAAA = 28;
const CLASS_IN = 1;
export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;
const MAX_NAME_BYTES = 255;
/** Answers carried at most; more would not fit a 512-byte UDP reply anyway. */
const MAX_ANSWERS = 16;

export interface DnsQuery {
  id: number;
  /** Recursion desired, copied into the reply. */
  rd: boolean;
  /** The name in dotted form, without the root's trailing dot, lower case. */
  name: string;
  type: number;
  /** The question section's bytes, echoed in the reply. */
  question: Uint8Array;
}

/** Parses a query; a malformed message gives a reason (and, if it had a header, a FORMERR reply to send). */
export function parseDnsQuery(msg: Uint8Array): DnsQuery | { error: string; reply?: Uint8Array } {
  if (msg.length < HEADER_BYTES) return { error: "truncated" };
  const id = (msg[0] << 8) | msg[1];
  const flags = (msg[2] << 8) | msg[3];
  const rd = (flags & 0x0100) !== 0;
  if ((flags & 0x8000) !== 0) return { error: "a response, not a query" };
  const qdcount = (msg[4] << 8) | msg[5];
  const fail = (error: string, rcode: number) => ({ error, reply: header(id, rd, rcode, 0, 0) });
  if (((flags >> 11) & 0xF) !== 0) return fail("not a standard query", RCODE_NOTIMP);
  if (qdcount !== 1) return fail(`${qdcount} questions`, RCODE_FORMERR);
  const labels: string[] = [];
  let at = HEADER_BYTES;
  for (;;) {
    if (at >= msg.length) return fail("name runs past the message", RCODE_FORMERR);
    const len = msg[at++];
    if (len === 0) break;
    if (len > 63) return fail("compressed or oversized label in the question", RCODE_FORMERR);
    if (at + len > msg.length || at - HEADER_BYTES + len > MAX_NAME_BYTES) {
      return fail("name too long", RCODE_FORMERR);
    }
    labels.push(String.fromCharCode(...msg.subarray(at, at + len)).toLowerCase());
    at += len;
  }
  if (at + 4 > msg.length) return fail("question runs past the message", RCODE_FORMERR);
  const type = (msg[at] << 8) | msg[at + 1];
  const qclass = (msg[at + 2] << 8) | msg[at + 3];
  at += 4;
  if (qclass !== CLASS_IN) return fail(`class ${qclass}`, RCODE_NOTIMP);
  return { id, rd, name: labels.join("."), type, question: msg.slice(HEADER_BYTES, at) };
}

/** A reply to `q` with `rcode` and, for A or AAAA, the addresses (dotted or colon text). */
export function buildDnsReply(q: DnsQuery, rcode: number, addresses: string[] = [], ttl = 60): Uint8Array {
  const rdatas: Uint8Array[] = [];
  for (const a of addresses) {
    const bytes = q.type === DNS_TYPE_A ? ipv4Bytes(a) : q.type === DNS_TYPE_AAAA ? ipv6Bytes(a) : undefined;
    if (bytes !== undefined && rdatas.length < MAX_ANSWERS) rdatas.push(bytes);
  }
  const answerBytes = rdatas.reduce((n, r) => n + 12 + r.length, 0);
  const out = new Uint8Array(HEADER_BYTES + q.question.length + answerBytes);
  out.set(header(q.id, q.rd, rcode, 1, rdatas.length));
  out.set(q.question, HEADER_BYTES);
  let at = HEADER_BYTES + q.question.length;
  for (const r of rdatas) {
    out.set([0xC0, HEADER_BYTES, q.type >> 8, q.type & 0xFF, 0, CLASS_IN], at);
    out.set([ttl >>> 24, (ttl >>> 16) & 0xFF, (ttl >>> 8) & 0xFF, ttl & 0xFF, 0, r.length], at + 6);
    out.set(r, at + 12);
    at += 12 + r.length;
  }
  return out;
}

function header(id: number, rd: boolean, rcode: number, qd: number, an: number): Uint8Array {
  // QR=1, opcode 0, RA=1.
  return new Uint8Array([id >> 8, id & 0xFF, 0x80 | (rd ? 1 : 0), 0x80 | rcode, 0, qd, 0, an, 0, 0, 0, 0]);
}

function ipv4Bytes(text: string): Uint8Array | undefined {
  const parts = text.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined;
  return Uint8Array.from(parts);
}

function ipv6Bytes(text: string): Uint8Array | undefined {
  const halves = text.split("::");
  if (halves.length > 2 || text.includes(".")) return undefined;
  const head = halves[0] === "" ? [] : halves[0].split(":");
  const tail = halves.length === 2 && halves[1] !== "" ? halves[1].split(":") : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...Array(Math.max(0, fill)).fill("0"), ...tail];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xFF;
  });
  return out;
}
