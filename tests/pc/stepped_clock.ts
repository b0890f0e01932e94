/** A deterministic VirtualClock driven by a fake instruction counter the test advances. */
import { VirtualClock } from "../../lib/machine/clock.ts";

const NS_PER_INSTRUCTION = 10;

export class SteppedClock {
  readonly clock = new VirtualClock("deterministic", NS_PER_INSTRUCTION);
  instructions = 0;

  constructor() {
    this.clock.setInstructionCounter(() => this.instructions);
  }

  nowNs(): number {
    return this.clock.nowNs();
  }

  /** Retires enough instructions for `ns` of virtual time, then fires the due timers as the run loop would. */
  advanceNs(ns: number): void {
    this.instructions += Math.ceil(ns / NS_PER_INSTRUCTION);
    this.clock.runDue();
  }
}
