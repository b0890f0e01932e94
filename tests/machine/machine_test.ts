/**
 * Machine.run in deterministic mode (issue #10): host I/O a slice starts (Machine.trackHostIo), and
 * what the device does once it completes, reach the guest before the next slice, however slow the
 * host was and however many promise turns the device's continuation takes; so the guest sees the
 * result at the same instruction on every run.
 */
import { assert, assertEquals } from "../assert.ts";
import { IDLE_BATCH_MS, Machine } from "../../lib/machine/machine.ts";

const CODE = 0x100000, FLAG = 0x2000, PORT = 0x80;

const ROUNDS = 20;

/**
 * ROUNDS times: starts I/O with one OUT, counts in ECX until the device sets FLAG, clears it. Then
 * HLT (IF clear: the run ends). ECX says at which instructions the completions became visible.
 */
const PROGRAM = [
  0x66,
  0xBA,
  PORT,
  0x00, //                mov dx, PORT
  0xBB,
  ROUNDS,
  0x00,
  0x00,
  0x00, //                mov ebx, ROUNDS
  0xEE, //             R: out dx, al
  0x41, //             L: inc ecx
  0x83,
  0x3D,
  FLAG & 0xFF,
  (FLAG >> 8) & 0xFF,
  0x00,
  0x00,
  0x00, //                cmp dword [FLAG], 0
  0x74,
  0xF6, //                je L
  0xC7,
  0x05,
  FLAG & 0xFF,
  (FLAG >> 8) & 0xFF,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00, //                mov dword [FLAG], 0
  0x4B, //                dec ebx
  0x75,
  0xE8, //                jnz R
  0xF4, //                hlt
];

/** Boots PROGRAM; its device completes after `delayMs` of host time and `turns` more promise turns. */
async function run(delayMs: number, turns: number, jit: boolean): Promise<number> {
  const machine = new Machine({ memBytes: 4 << 20, clock: "deterministic", jit });
  machine.mem.u8.set(PROGRAM, CODE);
  machine.ports.register(PORT, 1, "slow-device", {
    read: () => 0xFF,
    write: () => {
      const io = machine.trackHostIo(new Promise<void>((resolve) => setTimeout(resolve, delayMs)));
      void (async () => {
        await io;
        for (let i = 0; i < turns; i++) await null;
        machine.mem.writeU32(FLAG, 1);
      })();
    },
  });
  machine.cpu.enterProtectedFlat(CODE);
  // The launcher's stdin reader keeps the event loop alive; a timer stands in for it here.
  const keepAlive = setInterval(() => {}, 1000);
  const result = await machine.run().finally(() => clearInterval(keepAlive));
  assertEquals(result.kind, "halt", result.reason);
  return machine.cpu.regs[1];
}

Deno.test("Machine (deterministic) shows a device's host I/O completion at the same instruction whatever the host's timing", async () => {
  const expected = await run(0, 0, false);
  for (const jit of [false, true]) {
    for (const [delayMs, turns] of [[0, 0], [0, 40], [3, 3], [6, 200]]) {
      assertEquals(
        await run(delayMs, turns, jit),
        expected,
        `host delay ${delayMs} ms, ${turns} turns, jit ${jit}`,
      );
    }
  }
});

/** `sti; hlt; jmp $-3`: halts for good with interrupts on, so only the machine's timers run. */
const IDLE_LOOP = [0xFB, 0xF4, 0xEB, 0xFD];

function idleMachine(idleBatchMs?: number): Machine {
  const machine = new Machine({ memBytes: 4 << 20, clock: "host", idleBatchMs });
  machine.mem.u8.set(IDLE_LOOP, CODE);
  machine.cpu.enterProtectedFlat(CODE);
  return machine;
}

Deno.test("Machine host clock: a halted guest's timers come in batches, each fired in order at its own deadline", async () => {
  const machine = idleMachine(IDLE_BATCH_MS);
  const PERIOD_NS = 1e6, TICKS = 200;
  const firedAt: number[] = [];
  // A periodic timer re-armed from its callback, as the PIT's and lguest's clock events are.
  let next = PERIOD_NS;
  const ticker = machine.clock.timer("ticker", (nowNs) => {
    firedAt.push(nowNs - next);
    next += PERIOD_NS;
    if (firedAt.length === TICKS) machine.stop("halt", "done");
    else ticker.arm(next);
  });
  ticker.arm(next);
  const keepAlive = setInterval(() => {}, 1000);
  const result = await machine.run().finally(() => clearInterval(keepAlive));
  assertEquals(result.reason, "done");
  // The guest's view: every timer fired at its deadline on the virtual clock, not a batch window later.
  assertEquals(firedAt.filter((late) => late !== 0), [], "virtual ns after the deadline at each firing");
  // The host's: 200 ms of 1 ms timers took about 10 waits of 20 ms, not 200.
  assert(machine.idleWaits <= TICKS / 5, `${machine.idleWaits} host waits for ${TICKS} timers`);
});

Deno.test("Machine host clock: a timer a host event arms while the guest halts is not held back by the batch", async () => {
  // An hour's batch: if the batch applied to it, the run would not end for an hour.
  const machine = idleMachine(3_600_000);
  const guestTimer = machine.clock.timer("guest timer", () => {});
  guestTimer.arm(1e6);
  let answeredAt = -1;
  const answer = machine.clock.timer("host-armed", (nowNs) => {
    answeredAt = nowNs;
    machine.stop("halt", "answered");
  });
  // A host event 30 ms in, after the guest timer's wait (which starts the batch window), arms a
  // timer 20 ms ahead and wakes the machine (as a network backend's timers do).
  const event = setTimeout(() => {
    answer.arm(machine.clock.hostNs() + 20e6);
    machine.wake();
  }, 30);
  const keepAlive = setInterval(() => {}, 1000);
  const result = await machine.run().finally(() => {
    clearInterval(keepAlive);
    clearTimeout(event);
  });
  assertEquals(result.reason, "answered");
  assert(answeredAt > 0);
});
