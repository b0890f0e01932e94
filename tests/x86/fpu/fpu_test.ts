/**
 * Unit tests for the x87 FPU through its CPU-facing contract (fpu.ts header): `execute` results,
 * the fault rule (no state change before the last memory access), pending #MF, state images and
 * the pointer registers. Arithmetic is checked against the host x87 in fpu_differential_test.ts.
 */

import { assert, assertEquals } from "../../assert.ts";
import { FAKE_FAULT, FakeFpuHost } from "./fake_fpu_host.ts";
import {
  Fpu,
  FPU_DONE,
  FPU_EFLAGS_MASK,
  FPU_INVALID_OPCODE,
  FPU_WROTE_AX,
  FPU_WROTE_EFLAGS,
  fpuInstructionWaits,
} from "../../../lib/x86/fpu/fpu.ts";

/** ModRM for a memory form with reg field `reg` (the address comes separately). */
function m(reg: number): number {
  return (reg << 3) | 6;
}

const OPERAND = 0x100, SCRATCH = 0x200, IMAGE = 0x400, SNAPSHOT = 0xC00;

function setup(): { host: FakeFpuHost; fpu: Fpu; x: (op: number, modrm: number, addr?: number) => number } {
  const host = new FakeFpuHost(4096);
  const fpu = new Fpu(host);
  const x = (op: number, modrm: number, addr = OPERAND) =>
    fpu.execute(op, modrm, addr, false, 0x1000, 0x23, addr, 0x2B);
  return { host, fpu, x };
}

/** Pushes `v` with FLD m64. */
function fld(t: ReturnType<typeof setup>, v: number): void {
  t.host.view.setFloat64(SCRATCH, v, true);
  t.x(0xDD, m(0), SCRATCH);
}

/** FSTP m64 into SCRATCH; returns the value. */
function fstp(t: ReturnType<typeof setup>): number {
  t.x(0xDD, m(3), SCRATCH);
  return t.host.view.getFloat64(SCRATCH, true);
}

function fldcw(t: ReturnType<typeof setup>, cw: number): void {
  t.host.view.setUint16(SCRATCH + 32, cw, true);
  t.x(0xD9, m(5), SCRATCH + 32);
}

/** Every bit of FPU state, as FXSAVE writes it, plus the full tag word (optionally without FOP). */
function snapshot(t: ReturnType<typeof setup>, withFop = true): string {
  t.fpu.fxsave(SNAPSHOT);
  if (!withFop) t.host.view.setUint16(SNAPSHOT + 6, 0, true);
  return Array.from(t.host.bytes.subarray(SNAPSHOT, SNAPSHOT + 160)).join(",") + `/${t.fpu.tagWord()}`;
}

Deno.test("Fpu.reset gives the FNINIT state", () => {
  const t = setup();
  fld(t, 1);
  fldcw(t, 0x0C7F);
  t.fpu.reset();
  assertEquals(t.fpu.controlWord(), 0x037F);
  assertEquals(t.fpu.statusWord(), 0);
  assertEquals(t.fpu.tagWord(), 0xFFFF);
});

Deno.test("Fpu.execute returns FPU_INVALID_OPCODE for reserved and SSE3 encodings and changes nothing", () => {
  const t = setup();
  fld(t, 2.5);
  fld(t, -1);
  const before = snapshot(t);
  const invalid = [
    [0xD9, m(1)],
    [0xDB, m(1)], // FISTTP m32 (SSE3)
    [0xDD, m(1)], // FISTTP m64
    [0xDF, m(1)], // FISTTP m16
    [0xDB, m(4)],
    [0xDB, m(6)],
    [0xDD, m(5)],
    [0xD9, 0xD1],
    [0xD9, 0xE2],
    [0xD9, 0xE3],
    [0xD9, 0xE6],
    [0xD9, 0xE7],
    [0xD9, 0xEF],
    [0xDA, 0xE0],
    [0xDA, 0xE8],
    [0xDA, 0xF0],
    [0xDB, 0xE5],
    [0xDB, 0xF8],
    [0xDD, 0xF0],
    [0xDE, 0xD8],
    [0xDE, 0xDA],
    [0xDF, 0xE1],
    [0xDF, 0xF8],
  ];
  for (const [op, modrm] of invalid) {
    assertEquals(t.x(op, modrm), FPU_INVALID_OPCODE, `${op.toString(16)} ${modrm.toString(16)}`);
  }
  assertEquals(snapshot(t), before);
});

Deno.test("Fpu.execute leaves the FPU unchanged when its last memory access faults", () => {
  // (opcode, modrm, setup of memory at OPERAND) for instructions reading or writing several pieces.
  const cases: [string, number, number, number][] = [
    ["fld m64", 0xDD, m(0), 4],
    ["fld m80", 0xDB, m(5), 8],
    ["fadd m64", 0xDC, m(0), 4],
    ["fild m64", 0xDF, m(5), 4],
    ["fbld", 0xDF, m(4), 8],
    ["fstp m64", 0xDD, m(3), 4],
    ["fstp m80", 0xDB, m(7), 8],
    ["fistp m64", 0xDF, m(7), 4],
    ["fbstp", 0xDF, m(6), 8],
    ["fldenv", 0xD9, m(4), 24],
    ["frstor", 0xDD, m(4), 100],
    ["fnsave", 0xDD, m(6), 100],
    ["fnstenv", 0xD9, m(6), 24],
  ];
  for (const [name, op, modrm, lastOffset] of cases) {
    const t = setup();
    fld(t, 3.75);
    fld(t, -0.5);
    t.x(0xDB, 0xE2); // FNCLEX
    const before = snapshot(t);
    t.host.faultFrom = OPERAND + lastOffset;
    let thrown: unknown;
    try {
      t.x(op, modrm);
    } catch (e) {
      thrown = e;
    }
    t.host.faultFrom = Infinity;
    assert(thrown === FAKE_FAULT, `${name}: the fault propagates`);
    assertEquals(snapshot(t), before, `${name}: state unchanged`);
  }
});

Deno.test("Fpu.execute returns FPU_WROTE_AX for FNSTSW AX, with AX = statusWord()", () => {
  const t = setup();
  fld(t, 1);
  assertEquals(t.x(0xDF, 0xE0), FPU_WROTE_AX);
  assertEquals(t.fpu.statusWord(), 0x3800); // TOP = 7
});

Deno.test("Fpu.execute returns FPU_WROTE_EFLAGS for the FCOMI family, eflagsOut holding ZF PF CF", () => {
  const t = setup();
  const table: [number, number, number][] = [[2, 1, 0], [1, 2, 0x01], [1, 1, 0x40], [NaN, 1, 0x45]];
  for (const [a, b, flags] of table) {
    t.x(0xDB, 0xE3);
    fld(t, b);
    fld(t, a);
    assertEquals(t.x(0xDB, 0xE9), FPU_WROTE_EFLAGS); // FUCOMI ST(1)
    assert(t.fpu.eflagsWritten);
    assertEquals(t.fpu.eflagsOut, flags, `${a} vs ${b}`);
    assertEquals(t.fpu.eflagsOut & ~FPU_EFLAGS_MASK, 0);
  }
  assertEquals(t.x(0xDF, 0xF1), FPU_WROTE_EFLAGS); // FCOMIP pops
  assert(t.fpu.isEmpty(1), "FCOMIP popped");
  assertEquals(t.x(0xD8, 0xD1), FPU_DONE); // FCOM: condition codes only
  assert(!t.fpu.eflagsWritten);
});

Deno.test("Fpu FCMOVcc moves ST(i) to ST(0) when eflagsIn satisfies the condition", () => {
  const t = setup();
  fld(t, 7);
  fld(t, 1);
  t.fpu.eflagsIn = 0x02; // CF = 0
  t.x(0xDA, 0xC1); // FCMOVB: not taken
  assertEquals(t.fpu.st(0), 1);
  t.x(0xDB, 0xC1); // FCMOVNB: taken
  assertEquals(t.fpu.st(0), 7);
  t.x(0xDB, 0xE3);
  fld(t, 7);
  fld(t, 1);
  t.fpu.eflagsIn = 0x46; // ZF, PF
  t.x(0xDA, 0xD9); // FCMOVU
  assertEquals(t.fpu.st(0), 7);
});

Deno.test("fpuInstructionWaits is false exactly for the FN* control instructions", () => {
  const nonWaiting = [
    [0xD9, m(6)],
    [0xD9, m(7)],
    [0xDD, m(6)],
    [0xDD, m(7)],
    [0xDB, 0xE2],
    [0xDB, 0xE3],
    [
      0xDF,
      0xE0,
    ],
    [0xDB, 0xE0],
    [0xDB, 0xE1],
    [0xDB, 0xE4],
  ];
  for (const [op, modrm] of nonWaiting) {
    assert(!fpuInstructionWaits(op, modrm), `${op.toString(16)} ${modrm}`);
  }
  const waiting = [[0xD9, m(5)], [0xD9, m(4)], [0xDD, m(4)], [0xD8, 0xC1], [0xD9, 0xD0], [0xDF, m(7)], [
    0xDB,
    0xE8,
  ]];
  for (const [op, modrm] of waiting) assert(fpuInstructionWaits(op, modrm), `${op.toString(16)} ${modrm}`);
});

Deno.test("Fpu.checkPendingException follows an unmasked exception until FNCLEX", () => {
  const t = setup();
  fldcw(t, 0x037B); // unmask #Z
  fld(t, 0);
  fld(t, 5);
  assert(!t.fpu.checkPendingException());
  t.x(0xD8, 0xF1); // FDIV ST(0), ST(1): 5 / 0
  assert(t.fpu.checkPendingException(), "ES set");
  assert(t.fpu.pendingUnmaskedException());
  assertEquals(t.fpu.statusWord() & 0x8084, 0x8084); // B, ES, ZE
  assertEquals(t.fpu.st(0), 5, "destination unchanged");
  t.x(0xDB, 0xE2); // FNCLEX
  assert(!t.fpu.checkPendingException());
  assertEquals(t.fpu.statusWord() & 0x80FF, 0);
});

Deno.test("Fpu FLDCW unmasking an already raised exception sets ES, masking it again clears ES", () => {
  const t = setup();
  fld(t, 0);
  fld(t, 1);
  t.x(0xD8, 0xF1); // masked #Z
  assert(!t.fpu.checkPendingException());
  fldcw(t, 0x037B);
  assert(t.fpu.checkPendingException());
  fldcw(t, 0x037F);
  assert(!t.fpu.checkPendingException());
  assertEquals(t.fpu.controlWord(), 0x037F);
  fldcw(t, 0xFFFF);
  assertEquals(t.fpu.controlWord(), 0x1F7F, "reserved bits as on the host");
});

Deno.test("Fpu masked stack overflow pushes the indefinite and sets C1; underflow clears C1", () => {
  const t = setup();
  for (let k = 0; k < 8; k++) fld(t, k);
  fld(t, 99);
  assertEquals(t.fpu.statusWord() & 0x0241, 0x0241); // C1, SF, IE
  assertEquals(t.fpu.stBits(0), [0xFFFF, 0xC0000000, 0]);
  t.x(0xDB, 0xE3);
  t.x(0xD9, 0xE1); // FABS on an empty stack
  assertEquals(t.fpu.statusWord() & 0x0241, 0x0041);
});

Deno.test("Fpu records FIP FCS FOP FDP FDS for non-control instructions only", () => {
  const t = setup();
  t.host.view.setFloat64(SCRATCH, 2, true);
  t.fpu.execute(0xDD, 0x86, SCRATCH, false, 0x1234, 0x1B, 0x5678, 0x33); // FLD m64 [esi+disp32]
  t.fpu.execute(0xD9, m(7), SCRATCH, false, 0x9999, 0x99, 0x9999, 0x99); // FNSTCW: control
  t.fpu.execute(0xD9, 0xE0, 0, false, 0x2000, 0x1B, 0, 0); // FCHS: register form keeps FDP/FDS
  t.fpu.execute(0xD9, m(6), IMAGE, false, 0, 0, 0, 0); // FNSTENV
  const dv = t.host.view;
  assertEquals(dv.getUint32(IMAGE + 12, true), 0x2000); // FIP
  assertEquals(dv.getUint32(IMAGE + 16, true), 0x1B | (0x1E0 << 16)); // FCS, FOP = D9 E0
  assertEquals(dv.getUint32(IMAGE + 20, true), 0x5678); // FDP
  assertEquals(dv.getUint32(IMAGE + 24, true), 0xFFFF0033); // FDS
});

Deno.test("Fpu FNSTENV and FLDENV round-trip in the protected- and real-mode layouts", () => {
  for (const real of [false, true]) {
    for (const opsize16 of [false, true]) {
      const t = setup();
      t.fpu.realModeFormat = real;
      fld(t, Infinity);
      fld(t, 0);
      fld(t, 1.5);
      fldcw(t, 0x0F7B);
      t.fpu.execute(0xD8, 0xF1, 0, false, 0x0010, 0x0700, 0, 0); // FDIV by 0: raises #Z (unmasked)
      t.fpu.execute(0xDC, m(0), SCRATCH, false, 0x0123, 0x0800, 0x0456, 0x0900); // FADD m64 (records FDP)
      const sw = t.fpu.statusWord(), cw = t.fpu.controlWord(), tw = t.fpu.tagWord();
      assertEquals(sw & 0x80BF, 0x8084, "#Z pending");
      assertEquals(tw, 0x93FF, "R7 special, R6 zero, R5 valid, the rest empty");
      const size = opsize16 ? 14 : 28;
      t.fpu.execute(0xD9, m(6), IMAGE, opsize16, 0, 0, 0, 0);
      const image = t.host.bytes.slice(IMAGE, IMAGE + size);
      assertEquals(t.fpu.controlWord(), cw | 0x3F, "FNSTENV masks all exceptions");
      const dv = t.host.view;
      if (!real && !opsize16) {
        assertEquals(dv.getUint32(IMAGE + 12, true), 0x0123);
        assertEquals(dv.getUint32(IMAGE + 16, true), 0x0800 | (0x406 << 16)); // FOP of DC 06
      } else if (!real) {
        assertEquals(dv.getUint16(IMAGE + 6, true), 0x0123);
        assertEquals(dv.getUint16(IMAGE + 8, true), 0x0800);
        assertEquals(dv.getUint16(IMAGE + 10, true), 0x0456);
        assertEquals(dv.getUint16(IMAGE + 12, true), 0x0900);
      } else if (opsize16) {
        // Real mode: 20-bit linear pointers, FOP beside FIP[19:16].
        assertEquals(dv.getUint16(IMAGE + 6, true), 0x8123 & 0xFFFF);
        assertEquals(dv.getUint16(IMAGE + 8, true), 0x0406);
        assertEquals(dv.getUint16(IMAGE + 10, true), 0x9456 & 0xFFFF);
      } else {
        assertEquals(dv.getUint32(IMAGE + 12, true), 0xFFFF8123);
        assertEquals(dv.getUint32(IMAGE + 16, true), 0x0406);
        assertEquals(dv.getUint32(IMAGE + 20, true), 0xFFFF9456);
      }
      t.x(0xDB, 0xE3); // FNINIT, then load it back
      t.fpu.execute(0xD9, m(4), IMAGE, opsize16, 0, 0, 0, 0);
      assertEquals(t.fpu.statusWord(), sw);
      assertEquals(t.fpu.controlWord(), cw, "the image holds the CW from before the masking");
      assertEquals(t.fpu.tagWord(), tw);
      t.fpu.execute(0xD9, m(6), IMAGE + 64, opsize16, 0, 0, 0, 0);
      assertEquals(
        t.host.bytes.slice(IMAGE + 64, IMAGE + 64 + size),
        image,
        `layout real=${real} 16=${opsize16}`,
      );
    }
  }
});

Deno.test("Fpu FNSAVE reinitialises and FRSTOR restores registers bit for bit, SNaN payloads included", () => {
  const t = setup();
  // An 80-bit SNaN whose only payload bit lies below binary64's reach.
  t.host.view.setUint32(SCRATCH + 16, 0x00000001, true);
  t.host.view.setUint32(SCRATCH + 20, 0x80000000, true);
  t.host.view.setUint16(SCRATCH + 24, 0x7FFF, true);
  fld(t, -0);
  t.x(0xDB, m(5), SCRATCH + 16); // FLD m80: no #I, the SNaN stays signaling
  fld(t, 1e-310);
  const before = snapshot(t, false);
  for (const opsize16 of [false, true]) { // (the 16-bit image has no FOP)
    t.fpu.execute(0xDD, m(6), IMAGE, opsize16, 0, 0, 0, 0);
    assertEquals(t.fpu.tagWord(), 0xFFFF, "FNSAVE reinitialises");
    t.fpu.execute(0xDD, m(4), IMAGE, opsize16, 0, 0, 0, 0);
    assertEquals(snapshot(t, false), before);
  }
  t.x(0xD9, 0xC9); // FXCH ST(1): the SNaN to the top
  assertEquals(t.fpu.stBits(0), [0x7FFF, 0x80000000, 1], "all 80 bits kept");
  t.x(0xDD, m(3), SCRATCH); // FSTP m64 of an SNaN: #I, stores the quieted NaN (payload truncated)
  assertEquals(t.host.view.getUint32(SCRATCH + 4, true), 0x7FF80000);
  assertEquals(t.host.view.getUint32(SCRATCH, true), 0);
  assertEquals(t.fpu.statusWord() & 1, 1);
});

Deno.test("Fpu.fxsave writes the FXSAVE layout and fxrstor restores it", () => {
  const t = setup();
  fld(t, 3);
  fld(t, 0);
  fld(t, -Infinity);
  t.fpu.execute(0xDE, 0xC1, 0, false, 0x4444, 0x1B, 0, 0); // FADDP: -inf
  t.fpu.fxsave(IMAGE);
  const dv = t.host.view;
  assertEquals(dv.getUint16(IMAGE, true), 0x037F);
  assertEquals(dv.getUint16(IMAGE + 2, true), t.fpu.statusWord());
  assertEquals(dv.getUint8(IMAGE + 4), 0b1100_0000, "abridged tag: R6, R7 in use");
  assertEquals(dv.getUint16(IMAGE + 6, true), 0x6C1);
  assertEquals(dv.getUint32(IMAGE + 8, true), 0x4444);
  assertEquals(dv.getUint32(IMAGE + 24, true), 0x1F80);
  assertEquals(dv.getUint16(IMAGE + 32 + 8, true), 0xFFFF, "ST(0) = -inf");
  assertEquals(dv.getUint32(IMAGE + 32 + 20, true), 0xC0000000, "ST(1) = 3");
  const saved = snapshot(t);
  t.x(0xDB, 0xE3);
  t.fpu.fxrstor(IMAGE);
  assertEquals(snapshot(t), saved);
  assertEquals(t.fpu.tagWord(), 0x2FFF, "full tags recomputed: R6 special, R7 valid");
});

Deno.test("Fpu FPREM leaves the quotient's low bits in C0 C3 C1", () => {
  const t = setup();
  fld(t, 2);
  fld(t, 7); // 7 = 3 * 2 + 1: Q = 3 -> C0 = Q2 = 0, C3 = Q1 = 1, C1 = Q0 = 1
  t.x(0xD9, 0xF8);
  assertEquals(t.fpu.st(0), 1);
  assertEquals(t.fpu.statusWord() & 0x4700, 0x4200);
  t.x(0xDB, 0xE3);
  fld(t, 2);
  fld(t, 7); // FPREM1: Q = round(3.5) = 4, remainder -1
  t.x(0xD9, 0xF5);
  assertEquals(t.fpu.st(0), -1);
  assertEquals(t.fpu.statusWord() & 0x4700, 0x0100);
});

Deno.test("Fpu FBSTP and FBLD convert 18-digit packed BCD", () => {
  const t = setup();
  fld(t, -123456789012345680); // nearest double to -123456789012345678
  t.x(0xDF, m(6));
  const bytes = Array.from(
    t.host.bytes.subarray(OPERAND, OPERAND + 10),
    (b) => b.toString(16).padStart(2, "0"),
  );
  assertEquals(bytes.reverse().join(""), "80123456789012345680");
  t.x(0xDF, m(4));
  assertEquals(t.fpu.st(0), -123456789012345680);
});

Deno.test("Fpu FIST stores the integer indefinite under masked #I when out of range", () => {
  const t = setup();
  fld(t, 40000);
  t.x(0xDF, m(2)); // FIST m16
  assertEquals(t.host.view.getUint16(OPERAND, true), 0x8000);
  assertEquals(t.fpu.statusWord() & 1, 1);
  fld(t, -2.5);
  t.x(0xDB, m(3)); // FISTP m32, round to nearest even
  assertEquals(t.host.view.getInt32(OPERAND, true), -2);
});

Deno.test("Fpu FRNDINT and FIST honour the rounding-control field", () => {
  const expected: [number, number[]][] = [[2.5, [2, 2, 3, 2]], [-2.5, [-2, -3, -2, -2]], [-0.4, [
    -0,
    -1,
    -0,
    -0,
  ]]];
  for (const [x, byRc] of expected) {
    for (let rc = 0; rc < 4; rc++) {
      const t = setup();
      fldcw(t, 0x027F | (rc << 10));
      fld(t, x);
      t.x(0xD9, 0xFC);
      assert(Object.is(fstp(t), byRc[rc]), `frndint(${x}) rc=${rc}`);
    }
  }
});

Deno.test("Fpu FSTPNCE (D9 D8+i) stores and pops without a stack-underflow check", () => {
  const t = setup();
  assertEquals(t.x(0xD9, 0xD9), FPU_DONE);
  assertEquals(t.fpu.statusWord(), 0x0800, "no #IS, TOP moved");
  assertEquals(t.fpu.tagWord(), 0xFFFF, "ST(1) took ST(0)'s empty tag");
});
