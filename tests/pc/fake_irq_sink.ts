/** A stand-in for the 8259 pair: records each IRQ line's level and counts its rising edges. */
import type { IrqSink } from "../../lib/machine/irq.ts";

export class FakeIrqSink implements IrqSink {
  readonly levels: boolean[] = new Array(16).fill(false);
  readonly risingEdges: number[] = new Array(16).fill(0);

  setIrq(line: number, level: boolean): void {
    if (level && !this.levels[line]) this.risingEdges[line]++;
    this.levels[line] = level;
  }
}
