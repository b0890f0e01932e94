/**
 * Machine.run in deterministic mode (issue #10): host I/O a slice starts (Machine.trackHostIo), and
 * what the device does once it completes, reach the guest before the next slice, however slow the
 * host was and however many promise turns the device's continuation takes; so the guest sees the
 * result at the same instruction on every run.
 */
import { assertEquals } from "../assert.ts";
import { Machine } from "../../lib/machine/machine.ts";

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
