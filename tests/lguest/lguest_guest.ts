/**
 * The lguest tests' harness: a Machine with the lguest host (lib/lguest/lguest_host.ts), the PCI host
 * bridge and a virtio console at 00:01.0, running a Guest assembled by NASM at test time from
 * testdata/lguest/lguest_guest.inc plus the test's `test_main`. The clock is deterministic and a
 * wall-clock guard stops a Guest that never finishes.
 */
import { Machine, type RunResult } from "../../lib/machine/machine.ts";
import { LguestHost } from "../../lib/lguest/lguest_host.ts";
import { PciHostBridge } from "../../lib/pci/pci_host_bridge.ts";
import { ConsoleDevice } from "../../lib/virtio/console.ts";
import { VirtioPci } from "../../lib/virtio/virtio_pci.ts";
import { assemble, nasmUnavailableReason } from "../x86/system/asm.ts";

const INCLUDE = new URL("../../testdata/lguest/", import.meta.url).pathname;

const skipReason = nasmUnavailableReason();
if (skipReason !== null) console.warn(`lguest tests ignored: ${skipReason}`);

/** Deno.test for an lguest Guest program: ignored when nasm is missing. */
export function lguestTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: skipReason !== null, fn, sanitizeOps: false, sanitizeResources: false });
}

export interface GuestRun {
  result: RunResult;
  host: LguestHost;
  machine: Machine;
  symbols: Map<string, number>;
  /** Everything the Guest wrote to the virtio console (early console included). */
  console: string;
  /** results[i] as an unsigned number. */
  r(index: number): number;
}

export interface GuestOptions {
  pae?: boolean;
  /** NASM %defines. */
  defines?: string[];
  memBytes?: number;
  /** Host-clock instead of deterministic time. */
  hostClock?: boolean;
}

/** Assembles the lguest guest with `body`, as a flat image at GUEST_BASE. */
export function assembleGuest(
  body: string,
  options: GuestOptions = {},
): { bytes: Uint8Array; symbols: Map<string, number> } {
  const defs = [...(options.pae ? ["PAE"] : []), ...(options.defines ?? [])]
    .map((d) => `%define ${d.replace("=", " ")}`).join("\n");
  return assemble(`${defs}\n%include "${INCLUDE}lguest_guest.inc"\n${body}`);
}

/** Runs the Guest until it stops (or 60 s of wall time pass). */
export function runGuest(body: string, options: GuestOptions = {}): Promise<GuestRun> {
  return runGuestWith(body, options, () => {});
}

/** runGuest, with `setup` called on the Machine and host just before the Guest starts. */
export async function runGuestWith(
  body: string,
  options: GuestOptions,
  setup: (machine: Machine, host: LguestHost) => void,
): Promise<GuestRun> {
  const { bytes, symbols } = assembleGuest(body, options);
  const machine = new Machine({
    memBytes: options.memBytes ?? 64 << 20,
    clock: options.hostClock ? "host" : "deterministic",
  });
  const host = new LguestHost(machine, { pae: options.pae ?? false, startTimeMs: 1_000_000_000_000 });
  const base = symbols.get("image_start")!;
  machine.mem.write(base, bytes);
  let console = "";
  const bridge = new PciHostBridge(machine.ports, machine.mmio);
  const transport = new VirtioPci({
    device: new ConsoleDevice({
      write: (b) => console += new TextDecoder().decode(b),
      onInput: () => {},
    }),
    mem: machine.mem,
    mmio: machine.mmio,
    irq: host.irqs,
    irqLine: 5,
    name: "virtio-console",
    wake: () => machine.wake(),
  });
  bridge.attach(transport.pci);
  host.start(base);
  setup(machine, host);
  const guard = setTimeout(() => machine.stop("killed", "test guard: 60 s of wall time"), 60_000);
  let result: RunResult;
  try {
    result = await machine.run();
  } finally {
    clearTimeout(guard);
  }
  const results = symbols.get("results")!;
  return {
    result,
    host,
    machine,
    symbols,
    console,
    r: (i) => machine.mem.readU32(results + i * 4),
  };
}
