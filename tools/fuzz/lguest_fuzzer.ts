/**
 * A seeded fuzzer for the lguest host side (issue #8 §5, "as they arrive, lguest hypercalls"): a
 * ring-1 Guest whose code is one `int $0x1F` makes random hypercalls (mostly valid numbers, then
 * any) with arguments aimed at RAM, its last bytes, just past it and anywhere, after random writes
 * to the async hypercall ring and the other lguest_data fields the host reads. Each life starts with
 * a valid LHCALL_LGUEST_INIT most of the time, so the calls get past the INIT check; a Guest the
 * host kills (as lguest's kill_guest would) is replaced by a fresh one. Counted: exceptions out of
 * the CPU or the host, reads or writes the host made of guest memory outside RAM, operations over
 * SLOW_OP_MS of CPU, and heap growth. The same seed replays the same Guests.
 */
import { Machine } from "../../lib/machine/machine.ts";
import { LguestHost } from "../../lib/lguest/lguest_host.ts";
import {
  HCALL_ARGS_SIZE,
  LGUEST_DATA,
  LGUEST_DATA_SIZE,
  SYSCALL_VECTOR,
} from "../../lib/lguest/lguest_data.ts";
import {
  HYPERCALL_LIMIT,
  HYPERCALLS,
  LHCALL_LGUEST_INIT,
  LHCALL_RING_SIZE,
  LHCALL_SHUTDOWN,
} from "../../lib/lguest/hypercalls.ts";
import { EAX, EBX, ECX, EDX, ESI, ST_EIP } from "../../lib/x86/cpu.ts";
import { setLogSink } from "../../lib/support/log.ts";
import { cpuMs } from "./cpu_time.ts";
import { emptyReport, type FuzzReport, Rng, SLOW_OP_MS } from "./virtio_fuzzer.ts";

const RAM_BYTES = 4 << 20;
const CODE_ADDR = 0x1000;
const DATA_ADDR = 0x2000;
/** Instructions per operation: the hypercall and the jump back (or the first of a handler's). */
const STEPS = 2;
const LIVES_PER_MACHINE = 32;

/** An argument a hostile Guest might pass: in RAM, at its end, just past it, or anywhere at all. */
function argument(rng: Rng): number {
  switch (rng.below(8)) {
    case 0:
      return 0;
    case 1:
      return RAM_BYTES - 1 - rng.below(16);
    case 2:
      return RAM_BYTES + rng.below(0x2000) - 0x1000;
    case 3:
      return 0xFFFF_FFFF - rng.below(64);
    case 4:
      return rng.u32();
    case 5:
      return rng.below(64); // small numbers: vectors, GDT entries, reasons, counts
    default:
      return rng.below(RAM_BYTES) & ~(rng.chance(0.5) ? 0xFFF : 0);
  }
}

/** Hypercalls that leave a Guest alive when its arguments are right (not INIT, SHUTDOWN or unknown). */
const SURVIVABLE = HYPERCALLS.map((h) => h.nr).filter((nr) =>
  nr !== LHCALL_LGUEST_INIT && nr !== LHCALL_SHUTDOWN
);

/** Mostly a call a live Guest makes; now and then INIT again, SHUTDOWN, or any number at all. */
function hypercallNumber(rng: Rng): number {
  const p = rng.below(100);
  if (p < 2) return LHCALL_LGUEST_INIT;
  if (p < 3) return LHCALL_SHUTDOWN;
  if (p < 5) return rng.chance(0.5) ? rng.below(HYPERCALL_LIMIT + 2) : rng.u32();
  return rng.pick(SURVIVABLE);
}

/** Runs `ops` hypercall operations from `seed`; never throws for what it finds. */
export async function fuzzLguest(seed: number, ops: number, pae: boolean): Promise<FuzzReport> {
  const rng = new Rng(seed);
  const report = emptyReport(pae ? "lguest-pae" : "lguest", seed, ops);
  const fail = (what: string) => {
    report.firstFailure ??= what;
  };
  const oldSink = setLogSink(() => {});
  const started = performance.now();
  const heapBefore = Deno.memoryUsage().heapUsed;
  let life: { machine: Machine; host: LguestHost } | null = null;
  // A Machine serves LIVES_PER_MACHINE Guests in turn (making one costs ~20 ms: its TLB tables),
  // its RAM cleared between them through the write path, so the decode cache forgets the old code.
  const zeroRam = new Uint8Array(RAM_BYTES);
  let shared: { machine: Machine; lives: number } | null = null;
  const newLife = () => {
    if (shared === null || shared.lives >= LIVES_PER_MACHINE) {
      shared = {
        machine: new Machine({ memBytes: RAM_BYTES, clock: "deterministic", jit: rng.chance(0.5) }),
        lives: 0,
      };
      const mem = shared.machine.mem;
      // Every host access of guest memory is checked against RAM (the host must check first).
      const guard =
        <A extends unknown[], R>(f: (addr: number, ...rest: A) => R, len: (...rest: A) => number) =>
        (addr: number, ...rest: A): R => {
          if (!mem.contains(addr, len(...rest))) {
            report.outsideRam++;
            fail(`host access of ${len(...rest)} bytes at 0x${(addr >>> 0).toString(16)} outside RAM`);
          }
          return f.call(mem, addr, ...rest);
        };
      mem.readU32 = guard(mem.readU32, () => 4);
      mem.readU8 = guard(mem.readU8, () => 1);
      mem.writeU32 = guard(mem.writeU32, () => 4);
      mem.writeU8 = guard(mem.writeU8, () => 1);
      mem.readView = guard(mem.readView, (len: number) => len);
    } else shared.machine.mem.write(0, zeroRam);
    shared.lives++;
    const machine = shared.machine;
    const mem = machine.mem;
    const host = new LguestHost(machine, { pae, startTimeMs: 0 });
    mem.write(CODE_ADDR, new Uint8Array([0xCD, 0x1F, 0xEB, 0xFC])); // int $0x1F; jmp back
    mem.writeU32(DATA_ADDR + LGUEST_DATA.syscall_vec, rng.chance(0.95) ? SYSCALL_VECTOR : rng.below(256));
    mem.u8.fill(
      0xFF,
      DATA_ADDR + LGUEST_DATA.hcall_status,
      DATA_ADDR + LGUEST_DATA.hcall_status + LHCALL_RING_SIZE,
    );
    host.start(CODE_ADDR);
    const r = machine.cpu.regs;
    r[EAX] = rng.chance(0.9) ? LHCALL_LGUEST_INIT : rng.below(HYPERCALL_LIMIT + 2);
    r[EBX] = rng.chance(0.9) ? DATA_ADDR : argument(rng);
    life = { machine, host };
    return life;
  };
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    report.exceptions++;
    fail(`unhandled rejection: ${e.reason}`);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  try {
    for (let i = 0; i < ops; i++) {
      // A new Guest (a Machine with its RAM) is made outside the timed part: only the host's work counts.
      let current: { machine: Machine; host: LguestHost };
      try {
        current = life ?? newLife();
      } catch (e) {
        report.exceptions++;
        fail(`exception starting a Guest: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
        life = null;
        continue;
      }
      const t0 = performance.now();
      const c0 = cpuMs();
      try {
        const { machine, host } = current;
        const mem = machine.mem;
        const view = new DataView(mem.u8.buffer, mem.u8.byteOffset, mem.u8.byteLength);
        const u32Write = (at: number, v: number) => view.setUint32(at, v >>> 0, true);
        const cpu = machine.cpu;
        if (host.dataPhysAddr >= 0 && rng.chance(0.3)) {
          // Queue async hypercalls in the ring, or scribble on a field the host reads.
          const base = host.dataPhysAddr;
          if (rng.chance(0.7)) {
            for (let n = rng.below(LHCALL_RING_SIZE + 2); n > 0; n--) {
              const slot = rng.below(LHCALL_RING_SIZE);
              mem.u8[base + LGUEST_DATA.hcall_status + slot] = rng.chance(0.8) ? 0 : rng.below(256);
              const at = base + LGUEST_DATA.hcalls + slot * HCALL_ARGS_SIZE;
              u32Write(at, hypercallNumber(rng));
              for (let k = 1; k < 5; k++) u32Write(at + 4 * k, argument(rng));
            }
          } else {
            u32Write(base + (rng.below(LGUEST_DATA_SIZE) & ~3), rng.chance(0.5) ? argument(rng) : rng.u32());
          }
        }
        const r = cpu.regs;
        if (host.dataPhysAddr >= 0) {
          r[EAX] = hypercallNumber(rng);
          r[EBX] = argument(rng);
          r[ECX] = argument(rng);
          r[EDX] = argument(rng);
          r[ESI] = argument(rng);
        }
        cpu.halted = false;
        // Mostly back at the `int` (a handler the Guest's IDT sent it to returns, as it were).
        if (rng.chance(0.9)) cpu.st[ST_EIP] = CODE_ADDR;
        cpu.execute(STEPS);
        if (host.deadReason !== null || cpu.stopReason !== "") {
          report.needsReset++; // the host stopped this Guest; the next one starts afresh
          life = null;
        } else report.completions++;
        if (rng.chance(0.002)) life = null; // a fresh Guest now and then, whatever happened
      } catch (e) {
        report.exceptions++;
        fail(`exception: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
        life = null;
      }
      const wall = performance.now() - t0;
      const cpu = cpuMs() - c0;
      report.slowestMs = Math.max(report.slowestMs, wall);
      report.slowestCpuMs = Math.max(report.slowestCpuMs, cpu);
      if (wall > SLOW_OP_MS) report.slowWallOps++;
      if (cpu > SLOW_OP_MS) {
        report.slowOps++;
        fail(`op ${i} used ${cpu.toFixed(0)} ms of CPU`);
      }
      if ((i & 1023) === 0) await new Promise((r) => setTimeout(r, 0));
    }
  } finally {
    globalThis.removeEventListener("unhandledrejection", onRejection);
    setLogSink(oldSink);
  }
  (globalThis as { gc?: () => void }).gc?.();
  report.heapGrowthBytes = Math.max(0, Deno.memoryUsage().heapUsed - heapBefore);
  report.seconds = (performance.now() - started) / 1000;
  return report;
}
