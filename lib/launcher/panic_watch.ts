/**
 * Notices a guest kernel panic on its console. A PC guest has no paravirtual way to tell the host
 * it panicked (lguest's guests made a SHUTDOWN hypercall; the Debian kernel's pvpanic driver is a
 * module), so the Launcher reads the console output for Linux's "Kernel panic - not syncing:" line
 * and stops the guest with that reason instead of letting it spin forever.
 */

const PANIC = "Kernel panic - not syncing: ";
const MAX_LINE = 1024;

export class PanicWatch {
  #line = "";
  #decoder = new TextDecoder();
  #fired = false;
  constructor(readonly onPanic: (reason: string) => void) {}

  /** Feeds console output (any chunking). */
  write(bytes: Uint8Array): void {
    if (this.#fired) return;
    const text = this.#decoder.decode(bytes, { stream: true });
    for (const ch of text) {
      if (ch === "\n") {
        this.#check();
        this.#line = "";
      } else if (this.#line.length < MAX_LINE) this.#line += ch;
    }
  }

  #check(): void {
    const i = this.#line.indexOf(PANIC);
    if (i < 0) return;
    this.#fired = true;
    this.onPanic(this.#line.slice(i).replace(/\r$/, ""));
  }
}
