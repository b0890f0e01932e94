/**
 * A learning Ethernet switch (IEEE 802.1D's forwarding process without spanning tree): it learns
 * which port each source MAC address arrived on, sends a frame to the port owning its destination,
 * and floods broadcasts, multicasts and unknown destinations to every other port. Ports are small
 * integers chosen by the caller (socket_net.ts makes the Guest port 0 and each peer a port); the
 * table is bounded, and forgets everything when full, as a switch under MAC flooding would.
 */

/** Most MAC addresses remembered; a full table is cleared rather than grown. */
export const MAX_LEARNED_MACS = 4096;

/** Where a frame goes: one port, every port but the one it came in on, or nowhere. */
export const TO_NOWHERE = -1;
export const TO_ALL = -2;

export class EthernetSwitch {
  /** MAC (48 bits as a number) → port. */
  readonly #table = new Map<number, number>();

  /**
   * Learns the frame's source on `inPort` and returns the port to send it to, TO_ALL to flood
   * it, or TO_NOWHERE (a runt, or a destination on the port it came from). The caller checks
   * nothing: a frame shorter than an Ethernet header is refused here.
   */
  forward(frame: Uint8Array, inPort: number): number {
    if (frame.length < 14) return TO_NOWHERE;
    const src = macAt(frame, 6);
    // A group address is never a source (802.3 §3.2.3); do not learn one.
    if ((frame[6] & 1) === 0 && this.#table.get(src) !== inPort) {
      if (this.#table.size >= MAX_LEARNED_MACS) this.#table.clear();
      this.#table.set(src, inPort);
    }
    if ((frame[0] & 1) !== 0) return TO_ALL;
    const out = this.#table.get(macAt(frame, 0));
    if (out === undefined) return TO_ALL;
    return out === inPort ? TO_NOWHERE : out;
  }

  /** Forgets the addresses learned on a port that went away. */
  forgetPort(port: number): void {
    for (const [mac, p] of this.#table) if (p === port) this.#table.delete(mac);
  }

  /** Number of addresses learned. */
  get size(): number {
    return this.#table.size;
  }
}

function macAt(frame: Uint8Array, at: number): number {
  return frame[at] * 2 ** 40 + frame[at + 1] * 2 ** 32 + frame[at + 2] * 2 ** 24 + frame[at + 3] * 2 ** 16 +
    frame[at + 4] * 2 ** 8 + frame[at + 5];
}
