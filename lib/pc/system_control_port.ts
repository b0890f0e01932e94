/**
 * System control port B at 0x61 (IBM PC/AT technical reference; the PIIX "NMI status and control
 * register"): bit 0 gates PIT channel 2, bit 1 enables the speaker, bit 4 toggles with every DRAM
 * refresh (15.085 us), bit 5 reads channel 2's OUT. Linux's TSC calibration polls bits 5 and 0.
 * Left out: the speaker itself, and NMI sources (bits 6-7 read 0; parity/IOCHK never fire).
 */
import type { PortBus } from "../machine/bus.ts";
import type { VirtualClock } from "../machine/clock.ts";
import type { Pit8254 } from "./pit_8254.ts";

/** The refresh request period behind bit 4, in ns. */
const REFRESH_PERIOD_NS = 15_085;

export class SystemControlPort {
  #pit: Pit8254;
  #clock: VirtualClock;
  /** Bits 0-3 as last written: gate 2, speaker data enable, parity check disable, IOCHK disable. */
  #control = 0;

  constructor(pit: Pit8254, clock: VirtualClock) {
    this.#pit = pit;
    this.#clock = clock;
  }

  /** Claims port 0x61. */
  register(ports: PortBus): void {
    ports.register(0x61, 1, "system-control-port", {
      read: (_offset, size) => {
        const value = this.read();
        return size === 1 ? value : size === 2 ? value | 0xFF00 : (value | 0xFFFF_FF00) >>> 0;
      },
      write: (_offset, _size, value) => this.write(value & 0xFF),
    });
  }

  /** The byte the guest reads from 0x61. */
  read(): number {
    const refresh = Math.floor(this.#clock.nowNs() / REFRESH_PERIOD_NS) & 1;
    return this.#control | (refresh << 4) | (this.#pit.output(2) ? 0x20 : 0);
  }

  /** A guest write to 0x61; only bits 0-3 are writable. */
  write(value: number): void {
    this.#control = value & 0x0F;
    this.#pit.setGate(2, (value & 1) !== 0);
  }
}
