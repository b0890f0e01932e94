/**
 * One TCP connection between the guest and the user-mode router (RFC 9293 §3.10's event
 * processing), the router playing the far end while a host socket carries the bytes on. It opens
 * passively (the guest's SYN, answered once the host socket is connected) or actively (a hostfwd
 * client arrived: we send the SYN). Sliding windows both ways: we never send past the guest's
 * advertised window and advertise only the room left in our bounded buffers, so a slow host
 * socket slows the guest, never grows memory. Retransmission on timers of the machine's clock
 * (RFC 6298 estimator, Karn's rule, exponential backoff, go-back-N from the oldest unacknowledged
 * byte, fast retransmit on three duplicate ACKs, zero-window probes); out-of-order segments are
 * kept within the window; FIN and RST both ways; MSS from the guest's SYN. Left out: window
 * scaling, SACK, timestamps, congestion control (the link is memory, not a shared wire), urgent
 * data, simultaneous open.
 */
import type { NetTimer, NetTimers } from "./net_timers.ts";
import {
  buildTcpFrame,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  type TcpEndpoints,
  type TcpSegment,
} from "./tcp_segment.ts";

// States (RFC 9293 §3.3.2), plus SYN_PENDING: the guest's SYN is held until the host connects.
export const SYN_PENDING = 0;
export const SYN_SENT = 1;
export const SYN_RECEIVED = 2;
export const ESTABLISHED = 3;
export const FIN_WAIT_1 = 4;
export const FIN_WAIT_2 = 5;
export const CLOSE_WAIT = 6;
export const CLOSING = 7;
export const LAST_ACK = 8;
export const TIME_WAIT = 9;
export const CLOSED = 10;
export const TCP_STATE_NAMES = [
  "SYN-PENDING",
  "SYN-SENT",
  "SYN-RECEIVED",
  "ESTABLISHED",
  "FIN-WAIT-1",
  "FIN-WAIT-2",
  "CLOSE-WAIT",
  "CLOSING",
  "LAST-ACK",
  "TIME-WAIT",
  "CLOSED",
];

/** Our MSS: a 1500-byte Ethernet MTU less the IPv4 and TCP headers. */
export const OUR_MSS = 1460;
/** RFC 9293's default when the guest sends no MSS option. */
const DEFAULT_MSS = 536;
/** Bytes from the host held for the guest (sent or not, until acknowledged). */
export const SEND_BUFFER_BYTES = 256 << 10;
/** Our receive window: bytes from the guest not yet written to the host, at most (no window scaling). */
export const RECEIVE_WINDOW_BYTES = 65535;
const MAX_OUT_OF_ORDER_SEGMENTS = 64;
const INITIAL_RTO_MS = 1000;
const MIN_RTO_MS = 200;
const MAX_RTO_MS = 60_000;
/** Retransmissions of one segment before the connection is given up (reset both ways). */
const MAX_RETRIES = 12;
/** TIME-WAIT lasts 2 × MSL; a short MSL, as the router has no old duplicates wandering a WAN. */
const TIME_WAIT_MS = 2000;

/** What the connection asks of the host socket behind it. */
export interface TcpHostSide {
  /** In-order bytes from the guest (a copy the callee may keep); call hostWritten() once written. */
  data(bytes: Uint8Array): void;
  /** The guest sent FIN: after the data, shut the host socket's write side. */
  end(): void;
  /** The guest reset the connection, or it failed: close the host socket at once. */
  reset(): void;
  /** The handshake with the guest completed: start reading the host socket. */
  established(): void;
  /** Room opened in the send buffer: read more from the host. */
  room(): void;
  /** The connection is over; forget it. */
  closed(): void;
}

export interface TcpCounters {
  retransmits: number;
  outOfOrder: number;
  rejected: number;
}

/** Sequence-space comparisons modulo 2^32. */
function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}
function seqLe(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}
function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}
function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

export class TcpConnection {
  readonly ep: TcpEndpoints;
  state: number;
  readonly #host: TcpHostSide;
  readonly #output: (frame: Uint8Array) => void;
  readonly #nextIpId: () => number;
  readonly #counters: TcpCounters;
  readonly #timers: NetTimers;
  readonly #timer: NetTimer;
  // Send side (towards the guest).
  readonly #iss: number;
  #sndUna: number;
  #sndNxt: number;
  /** Highest sequence number sent so far (sndNxt goes back on a retransmission timeout). */
  #sndMax: number;
  #sndWnd = 0;
  #mss = DEFAULT_MSS;
  readonly #sendBuf = new Uint8Array(SEND_BUFFER_BYTES);
  #sendHead = 0;
  #sendLen = 0;
  #finQueued = false;
  #finAcked = false;
  #dupAcks = 0;
  #retries = 0;
  #rtoMs = INITIAL_RTO_MS;
  #srttMs = -1;
  #rttvarMs = 0;
  #timingSeq = -1;
  #timingStartNs = 0;
  // Receive side (from the guest).
  #rcvNxt = 0;
  #unwritten = 0;
  #lastAdvertised = 0;
  #ooo: { seq: number; data: Uint8Array; fin: boolean }[] = [];
  #oooBytes = 0;
  #ackNeeded = false;
  #ackScheduled = false;

  constructor(
    ep: TcpEndpoints,
    host: TcpHostSide,
    params: {
      iss: number;
      timers: NetTimers;
      output: (frame: Uint8Array) => void;
      nextIpId: () => number;
      counters: TcpCounters;
    },
  ) {
    this.ep = ep;
    this.#host = host;
    this.#output = params.output;
    this.#nextIpId = params.nextIpId;
    this.#counters = params.counters;
    this.#iss = params.iss >>> 0;
    this.#sndUna = this.#sndNxt = this.#sndMax = this.#iss;
    this.#timers = params.timers;
    this.#timer = params.timers.create(() => this.#onTimer());
    this.state = CLOSED;
  }

  // ---- Opening ----

  /** The guest's SYN: remember it and wait for hostConnected() or hostConnectFailed(). */
  acceptSyn(syn: TcpSegment): void {
    this.state = SYN_PENDING;
    this.#rcvNxt = seqAdd(syn.seq, 1);
    this.#sndWnd = syn.window;
    this.#setMss(syn.mss);
  }

  /** The host socket connected: answer the guest's SYN. */
  hostConnected(): void {
    if (this.state !== SYN_PENDING) return;
    this.state = SYN_RECEIVED;
    this.#sendSyn();
  }

  /** The host refused: the guest's connect fails with a reset, as from a closed port. */
  hostConnectFailed(): void {
    if (this.state !== SYN_PENDING) return;
    this.#emitRaw(TCP_RST | TCP_ACK, 0, this.#rcvNxt, 0, 0, 0);
    this.#close();
  }

  /** Active open towards the guest (a hostfwd client connected). */
  connect(): void {
    this.state = SYN_SENT;
    this.#sendSyn();
  }

  #sendSyn(): void {
    this.#sndNxt = this.#sndMax = seqAdd(this.#iss, 1);
    const flags = this.state === SYN_SENT ? TCP_SYN : TCP_SYN | TCP_ACK;
    this.#emitRaw(flags, this.#iss, this.state === SYN_SENT ? 0 : this.#rcvNxt, OUR_MSS, 0, 0);
    this.#timer.arm(this.#rtoMs);
  }

  #setMss(guestMss: number): void {
    this.#mss = Math.max(64, Math.min(OUR_MSS, guestMss === 0 ? DEFAULT_MSS : guestMss));
  }

  // ---- The host side's events ----

  /** Bytes the host socket can still hand over (SEND_BUFFER_BYTES less what waits for the guest). */
  get sendRoom(): number {
    return this.#finQueued || this.state === CLOSED ? 0 : SEND_BUFFER_BYTES - this.#sendLen;
  }

  /** Bytes read from the host socket, at most sendRoom of them. */
  hostData(bytes: Uint8Array): void {
    const n = Math.min(bytes.length, this.sendRoom);
    let tail = (this.#sendHead + this.#sendLen) % SEND_BUFFER_BYTES;
    const first = Math.min(n, SEND_BUFFER_BYTES - tail);
    this.#sendBuf.set(bytes.subarray(0, first), tail);
    this.#sendBuf.set(bytes.subarray(first, n), 0);
    tail += n;
    this.#sendLen += n;
    this.#pump();
  }

  /** The host socket reached end of file: FIN after the data. */
  hostEof(): void {
    if (this.#finQueued || this.state === CLOSED) return;
    this.#finQueued = true;
    this.#pump();
  }

  /** The host socket failed: reset the guest's side. */
  hostReset(): void {
    if (this.state === CLOSED) return;
    if (this.state !== SYN_PENDING && this.state !== TIME_WAIT) {
      this.#emitRaw(TCP_RST | TCP_ACK, this.#sndNxt, this.#rcvNxt, 0, 0, 0);
    }
    this.#close();
  }

  /** `n` bytes handed over by data() reached the host socket: the window opens again. */
  hostWritten(n: number): void {
    this.#unwritten = Math.max(0, this.#unwritten - n);
    const w = this.#window();
    // Tell the guest when the window has grown enough to matter (RFC 9293 §3.8.6.2.2's receiver SWS rule).
    if (
      w - this.#lastAdvertised >= Math.min(RECEIVE_WINDOW_BYTES >> 1, 2 * this.#mss) && this.#synchronized()
    ) {
      this.#scheduleAck();
    }
  }

  /** Drops the connection without a word to anyone (the router is shutting down). */
  abandon(): void {
    this.#timer.cancel();
    this.state = CLOSED;
  }

  describe(): string {
    return `${TCP_STATE_NAMES[this.state]} snd.una+${seqDiff(this.#sndNxt, this.#sndUna)} in flight, ` +
      `${this.#sendLen} buffered, guest window ${this.#sndWnd}, our window ${this.#window()}, rto ${this.#rtoMs} ms`;
  }

  // ---- Segments from the guest ----

  segment(seg: TcpSegment): void {
    const flags = seg.flags;
    switch (this.state) {
      case CLOSED:
        return;
      case SYN_PENDING:
        // Retransmitted SYNs wait with the first; a reset abandons the attempt.
        if (flags & TCP_RST) {
          this.#host.reset();
          this.#close();
        }
        return;
      case SYN_SENT:
        return this.#segmentInSynSent(seg);
    }
    const window = this.#window();
    const segLen = seg.payload.length + ((flags & TCP_SYN) ? 1 : 0) + ((flags & TCP_FIN) ? 1 : 0);
    const acceptable = this.#acceptable(seg.seq, segLen, window);
    if (flags & TCP_RST) {
      if (acceptable) {
        this.#host.reset();
        this.#close();
      }
      return;
    }
    if (flags & TCP_SYN) {
      // A SYN on a synchronized connection: a challenge ACK (RFC 5961 §4), nothing else.
      this.#ackNow();
      return;
    }
    if (!(flags & TCP_ACK)) return;
    if (this.state === SYN_RECEIVED) {
      if (seqLt(this.#sndUna, seg.ack) && seqLe(seg.ack, this.#sndMax)) {
        this.state = ESTABLISHED;
        this.#sndUna = seg.ack;
        this.#sndWnd = seg.window;
        this.#timer.cancel();
        this.#retries = 0;
        this.#host.established();
      } else {
        this.#emitRaw(TCP_RST, seg.ack, 0, 0, 0, 0);
        return;
      }
    } else {
      this.#processAck(seg);
      if (this.state === CLOSED) return;
    }
    if (!acceptable) {
      this.#counters.rejected++;
      this.#ackNow();
      return;
    }
    this.#processData(seg);
    this.#pump();
  }

  #segmentInSynSent(seg: TcpSegment): void {
    const expected = seqAdd(this.#iss, 1);
    if ((seg.flags & TCP_ACK) && seg.ack !== expected) {
      if (!(seg.flags & TCP_RST)) this.#emitRaw(TCP_RST, seg.ack, 0, 0, 0, 0);
      return;
    }
    if (seg.flags & TCP_RST) {
      if (seg.flags & TCP_ACK) {
        this.#host.reset(); // the guest refused: nothing listens on that port
        this.#close();
      }
      return;
    }
    if (!(seg.flags & TCP_SYN) || !(seg.flags & TCP_ACK)) return;
    this.#rcvNxt = seqAdd(seg.seq, 1);
    this.#sndUna = expected;
    this.#sndWnd = seg.window;
    this.#setMss(seg.mss);
    this.state = ESTABLISHED;
    this.#timer.cancel();
    this.#retries = 0;
    this.#ackNow();
    this.#host.established();
    this.#pump();
  }

  /** RFC 9293 §3.10.7.4's acceptability test. */
  #acceptable(seq: number, segLen: number, window: number): boolean {
    const rel = seqDiff(seq, this.#rcvNxt);
    if (segLen === 0) return window === 0 ? rel === 0 : rel >= 0 && rel < window;
    if (window === 0) return false;
    const endRel = rel + segLen - 1;
    return (rel >= 0 && rel < window) || (endRel >= 0 && endRel < window);
  }

  #processAck(seg: TcpSegment): void {
    const ack = seg.ack;
    if (seqLt(this.#sndMax, ack)) {
      // Acknowledges something never sent.
      this.#ackNow();
      return;
    }
    if (seqLt(this.#sndUna, ack)) {
      let acked = seqDiff(ack, this.#sndUna);
      if (this.#finQueued && !this.#finAcked && ack === seqAdd(this.#finSeq(), 1)) {
        this.#finAcked = true;
        acked--;
      }
      const freed = Math.min(acked, this.#sendLen);
      this.#sendHead = (this.#sendHead + freed) % SEND_BUFFER_BYTES;
      this.#sendLen -= freed;
      this.#sndUna = ack;
      if (seqLt(this.#sndNxt, ack)) this.#sndNxt = ack;
      this.#dupAcks = 0;
      this.#retries = 0;
      if (this.#timingSeq !== -1 && seqLe(this.#timingSeq, ack)) {
        this.#rttSample((this.#timers.nowNs() - this.#timingStartNs) / 1e6);
        this.#timingSeq = -1;
      }
      this.#sndWnd = seg.window;
      if (this.#sndUna === this.#sndMax) this.#timer.cancel();
      else this.#timer.arm(this.#rtoMs);
      if (freed > 0 && !this.#finQueued) this.#host.room();
      if (this.#finAcked) this.#onFinAcked();
    } else if (ack === this.#sndUna) {
      const outstanding = this.#sndMax !== this.#sndUna;
      if (
        outstanding && seg.payload.length === 0 && !(seg.flags & TCP_FIN) && seg.window === this.#sndWnd
      ) {
        if (++this.#dupAcks === 3) this.#fastRetransmit();
      }
      this.#sndWnd = seg.window;
    }
  }

  #onFinAcked(): void {
    switch (this.state) {
      case FIN_WAIT_1:
        this.state = FIN_WAIT_2;
        break;
      case CLOSING:
        this.#enterTimeWait();
        break;
      case LAST_ACK:
        this.#close();
        break;
    }
  }

  #processData(seg: TcpSegment): void {
    if (this.state !== ESTABLISHED && this.state !== FIN_WAIT_1 && this.state !== FIN_WAIT_2) {
      if (seg.payload.length > 0 || (seg.flags & TCP_FIN)) this.#scheduleAck();
      return;
    }
    let seq = seg.seq;
    let data = seg.payload;
    let fin = (seg.flags & TCP_FIN) !== 0;
    // Trim what we already have and what lies beyond the window.
    const skip = seqDiff(this.#rcvNxt, seq);
    if (skip > 0) {
      if (skip > data.length) fin = false; // an old FIN, already counted
      data = data.subarray(Math.min(skip, data.length));
      seq = this.#rcvNxt;
    }
    const room = this.#window() - seqDiff(seq, this.#rcvNxt);
    if (data.length > room) {
      data = data.subarray(0, Math.max(0, room));
      fin = false;
    }
    if (data.length === 0 && !fin) {
      if (seg.payload.length > 0) this.#scheduleAck();
      return;
    }
    if (seq !== this.#rcvNxt) {
      this.#storeOutOfOrder(seq, data, fin);
      this.#ackNow(); // a duplicate ACK tells the guest what is missing
      return;
    }
    this.#deliver(data, fin);
    this.#drainOutOfOrder();
    this.#scheduleAck();
  }

  #deliver(data: Uint8Array, fin: boolean): void {
    if (data.length > 0) {
      this.#rcvNxt = seqAdd(this.#rcvNxt, data.length);
      this.#unwritten += data.length;
      this.#host.data(data.slice());
    }
    if (!fin) return;
    this.#rcvNxt = seqAdd(this.#rcvNxt, 1);
    this.#ooo = [];
    this.#oooBytes = 0;
    this.#host.end();
    switch (this.state) {
      case ESTABLISHED:
        this.state = CLOSE_WAIT;
        break;
      case FIN_WAIT_1:
        this.state = CLOSING;
        break;
      case FIN_WAIT_2:
        this.#enterTimeWait();
        break;
    }
  }

  #storeOutOfOrder(seq: number, data: Uint8Array, fin: boolean): void {
    this.#counters.outOfOrder++;
    if (this.#ooo.length >= MAX_OUT_OF_ORDER_SEGMENTS) return;
    if (this.#ooo.some((s) => s.seq === seq && s.data.length >= data.length)) return;
    this.#ooo.push({ seq, data: data.slice(), fin });
    this.#oooBytes += data.length;
    this.#ooo.sort((a, b) => seqDiff(a.seq, b.seq));
  }

  #drainOutOfOrder(): void {
    while (this.#ooo.length > 0 && seqLe(this.#ooo[0].seq, this.#rcvNxt)) {
      const s = this.#ooo.shift()!;
      this.#oooBytes -= s.data.length;
      const skip = seqDiff(this.#rcvNxt, s.seq);
      if (skip < s.data.length || (skip === s.data.length && s.fin)) {
        this.#deliver(s.data.subarray(skip), s.fin);
        if (s.fin) return;
      }
    }
  }

  // ---- Sending ----

  /** Our receive window: what the host socket has not yet taken, out-of-order bytes included. */
  #window(): number {
    return Math.max(0, RECEIVE_WINDOW_BYTES - this.#unwritten - this.#oooBytes);
  }

  #finSeq(): number {
    // Invariant while the FIN is unacknowledged: acknowledging bytes moves sndUna and sendLen alike.
    return seqAdd(this.#sndUna, this.#sendLen);
  }

  #synchronized(): boolean {
    return this.state >= ESTABLISHED && this.state <= TIME_WAIT;
  }

  /** Sends what the guest's window allows, then the FIN once everything before it has gone. */
  #pump(force = false): void {
    if (
      this.state !== ESTABLISHED && this.state !== CLOSE_WAIT && this.state !== FIN_WAIT_1 &&
      this.state !== LAST_ACK && this.state !== CLOSING
    ) return;
    for (;;) {
      const offset = seqDiff(this.#sndNxt, this.#sndUna);
      const available = this.#sendLen - offset;
      let room = seqDiff(seqAdd(this.#sndUna, this.#sndWnd), this.#sndNxt);
      if (force && room <= 0 && available > 0 && offset === 0) room = 1; // a zero-window probe
      const n = Math.min(available, room, this.#mss);
      if (n <= 0) break;
      force = false;
      if (this.#timingSeq === -1 && this.#sndNxt === this.#sndMax) {
        this.#timingSeq = seqAdd(this.#sndNxt, n);
        this.#timingStartNs = this.#timers.nowNs();
      }
      this.#emitData(this.#sndNxt, offset, n, n === available);
      this.#sndNxt = seqAdd(this.#sndNxt, n);
      if (seqLt(this.#sndMax, this.#sndNxt)) this.#sndMax = this.#sndNxt;
    }
    if (this.#finQueued && !this.#finAcked && this.#sndNxt === this.#finSeq()) {
      this.#emitRaw(TCP_FIN | TCP_ACK, this.#sndNxt, this.#rcvNxt, 0, this.#window(), 0);
      this.#sndNxt = seqAdd(this.#sndNxt, 1);
      if (seqLt(this.#sndMax, this.#sndNxt)) this.#sndMax = this.#sndNxt;
      if (this.state === ESTABLISHED) this.state = FIN_WAIT_1;
      else if (this.state === CLOSE_WAIT) this.state = LAST_ACK;
    }
    if (this.#sndNxt !== this.#sndUna) {
      if (!this.#timer.armed) this.#timer.arm(this.#rtoMs);
    } else if (this.#sendLen > 0 && this.#sndWnd === 0 && !this.#timer.armed) {
      this.#timer.arm(this.#rtoMs); // persist: probe the closed window
    }
  }

  #fastRetransmit(): void {
    this.#counters.retransmits++;
    this.#timingSeq = -1;
    const n = Math.min(this.#sendLen, this.#mss);
    if (n > 0) this.#emitData(this.#sndUna, 0, n, false);
  }

  #onTimer(): void {
    switch (this.state) {
      case TIME_WAIT:
        this.#close();
        return;
      case CLOSED:
      case SYN_PENDING:
        return;
    }
    const probing = this.#sndNxt === this.#sndUna || this.#sndWnd === 0;
    if (!probing && ++this.#retries > MAX_RETRIES) {
      this.#host.reset();
      this.hostReset();
      return;
    }
    this.#counters.retransmits++;
    this.#rtoMs = Math.min(MAX_RTO_MS, this.#rtoMs * 2);
    this.#timingSeq = -1;
    if (this.state === SYN_SENT || this.state === SYN_RECEIVED) {
      this.#sendSyn();
      return;
    }
    this.#sndNxt = this.#sndUna;
    this.#pump(true);
    if (!this.#timer.armed && (this.#sndNxt !== this.#sndUna || this.#sendLen > 0)) {
      this.#timer.arm(this.#rtoMs);
    }
  }

  #rttSample(ms: number): void {
    if (this.#srttMs < 0) {
      this.#srttMs = ms;
      this.#rttvarMs = ms / 2;
    } else {
      this.#rttvarMs = 0.75 * this.#rttvarMs + 0.25 * Math.abs(this.#srttMs - ms);
      this.#srttMs = 0.875 * this.#srttMs + 0.125 * ms;
    }
    this.#rtoMs = Math.min(MAX_RTO_MS, Math.max(MIN_RTO_MS, Math.round(this.#srttMs + 4 * this.#rttvarMs)));
  }

  #enterTimeWait(): void {
    this.state = TIME_WAIT;
    this.#timer.arm(TIME_WAIT_MS);
  }

  #close(): void {
    if (this.state === CLOSED) return;
    this.state = CLOSED;
    this.#timer.cancel();
    this.#host.closed();
  }

  #scheduleAck(): void {
    this.#ackNeeded = true;
    if (this.#ackScheduled) return;
    this.#ackScheduled = true;
    // One ACK for a burst of segments handled in the same turn of the event loop.
    queueMicrotask(() => {
      this.#ackScheduled = false;
      if (this.#ackNeeded && this.state !== CLOSED) this.#ackNow();
    });
  }

  #ackNow(): void {
    this.#emitRaw(TCP_ACK, this.#sndNxt, this.#rcvNxt, 0, this.#window(), 0);
  }

  #emitData(seq: number, offset: number, n: number, push: boolean): void {
    const start = (this.#sendHead + offset) % SEND_BUFFER_BYTES;
    const buf = this.#sendBuf;
    this.#emitRaw(TCP_ACK | (push ? TCP_PSH : 0), seq, this.#rcvNxt, 0, this.#window(), n, (frame, at) => {
      const first = Math.min(n, SEND_BUFFER_BYTES - start);
      frame.set(buf.subarray(start, start + first), at);
      if (first < n) frame.set(buf.subarray(0, n - first), at + first);
    });
  }

  #emitRaw(
    flags: number,
    seq: number,
    ack: number,
    mss: number,
    window: number,
    n: number,
    fill: ((frame: Uint8Array, at: number) => void) | null = null,
  ): void {
    if (flags & TCP_ACK) {
      this.#ackNeeded = false;
      this.#lastAdvertised = window;
    }
    const w = (flags & TCP_SYN) ? this.#window() : window;
    this.#output(buildTcpFrame(this.ep, flags, seq, ack, w, mss, n, fill, this.#nextIpId()));
  }
}
