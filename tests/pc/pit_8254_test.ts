/**
 * The 8254 and port 0x61 on a deterministic clock, programmed as Linux's i8253 clockevent,
 * pit_calibrate_tsc() and quick_pit_calibrate() (arch/x86/kernel/tsc.c) programme them.
 */
import { assert, assertEquals } from "../assert.ts";
import { PortBus } from "../../lib/machine/bus.ts";
import { Pic8259Pair } from "../../lib/pc/pic_8259.ts";
import { Pit8254, PIT_HZ } from "../../lib/pc/pit_8254.ts";
import { VirtualClock } from "../../lib/machine/clock.ts";
import { SystemControlPort } from "../../lib/pc/system_control_port.ts";
import { FakeIrqSink } from "./fake_irq_sink.ts";
import { SteppedClock } from "./stepped_clock.ts";

const PIT_CH0 = 0x40;
const PIT_CH2 = 0x42;
const PIT_MODE = 0x43;
/** Linux's LATCH for HZ=100 and for pit_calibrate_tsc's 10 ms. */
const LATCH_10MS = Math.round(PIT_HZ / 100);
const NS_PER_TICK = 1e9 / PIT_HZ;

function setup() {
  const time = new SteppedClock();
  const irq = new FakeIrqSink();
  const ports = new PortBus();
  const pit = new Pit8254(time.clock, irq);
  pit.register(ports);
  const portB = new SystemControlPort(pit, time.clock);
  portB.register(ports);
  return { time, irq, ports, pit };
}

/** The PIT ticks counted by virtual time `ns`, as the PIT sees them. */
function ticksAt(ns: number): number {
  return Math.floor((ns * PIT_HZ) / 1e9);
}

Deno.test("Pit8254 mode 2 on channel 0 raises IRQ0 every LATCH ticks (Linux's periodic tick)", () => {
  const time = new SteppedClock();
  const ports = new PortBus();
  const pic = new Pic8259Pair();
  pic.register(ports);
  new Pit8254(time.clock, pic).register(ports);
  // init_8259A with everything masked; the BIOS tick runs meanwhile.
  for (const [port, value] of [[0x20, 0x11], [0x21, 0x30], [0x21, 4], [0x21, 1], [0x21, 0xFF]]) {
    ports.write(port, 1, value);
  }
  time.advanceNs(30e6);
  // pit_set_periodic: outb_p(0x34, PIT_MODE); outb_p(LATCH & 0xff, PIT_CH0); outb_p(LATCH >> 8, PIT_CH0).
  ports.write(PIT_MODE, 1, 0x34);
  ports.write(PIT_CH0, 1, LATCH_10MS & 0xFF);
  ports.write(PIT_CH0, 1, LATCH_10MS >> 8);
  ports.write(0x21, 1, 0xFE); // request_irq(0): unmask IRQ0
  // The BIOS's 18.2 Hz tick may have left an edge latched while IRQ0 was masked (as on hardware).
  if (pic.hasInterrupt()) {
    pic.acknowledge();
    ports.write(0x20, 1, 0x60);
  }
  const start = time.nowNs();
  const stepNs = 10_000;
  const seen: number[] = [];
  while (time.nowNs() - start < 1.0001e9) {
    time.advanceNs(stepNs);
    while (pic.hasInterrupt()) {
      assertEquals(pic.acknowledge(), 0x30);
      seen.push(time.nowNs() - start);
      ports.write(0x20, 1, 0x60); // specific EOI
    }
  }
  assertEquals(seen.length, 100);
  const periodNs = LATCH_10MS * NS_PER_TICK;
  for (let i = 0; i < seen.length; i++) {
    const expected = (i + 1) * periodNs;
    assert(seen[i] >= expected - NS_PER_TICK && seen[i] <= expected + stepNs, `tick ${i} at ${seen[i]} ns`);
  }
});

Deno.test("Pit8254 latch command reads a count consistent with the clock", () => {
  const { time, ports } = setup();
  ports.write(PIT_MODE, 1, 0x34);
  ports.write(PIT_CH0, 1, LATCH_10MS & 0xFF);
  ports.write(PIT_CH0, 1, LATCH_10MS >> 8);
  const loadTick = ticksAt(time.nowNs());
  for (const stepNs of [1_000, 123_457, 5_000_000, 9_000_000]) {
    time.advanceNs(stepNs);
    ports.write(PIT_MODE, 1, 0x00); // latch channel 0 (pit_read's sequence)
    const latchedAt = ticksAt(time.nowNs());
    time.advanceNs(50_000); // the latch holds while time passes
    const count = ports.read(PIT_CH0, 1) | (ports.read(PIT_CH0, 1) << 8);
    assertEquals(count, LATCH_10MS - ((latchedAt - loadTick) % LATCH_10MS));
  }
});

Deno.test("Pit8254 channel 2 counts down in step with the clock, as quick_pit_calibrate reads it", () => {
  const { time, ports } = setup();
  // Set the gate high, disable the speaker; counter 2, mode 0, binary; start at 0xffff.
  ports.write(0x61, 1, (ports.read(0x61, 1) & ~0x02) | 0x01);
  ports.write(PIT_MODE, 1, 0xB0);
  ports.write(PIT_CH2, 1, 0xFF);
  ports.write(PIT_CH2, 1, 0xFF);
  const loadTick = ticksAt(time.nowNs());
  // pit_expect_msb() loop: read LSB then MSB, take a TSC sample; ~30 instructions per round.
  const readsPerMsb = new Map<number, number>();
  let previousMsb = 0xFF;
  for (let round = 0; round < 20_000; round++) {
    const lsb = ports.read(PIT_CH2, 1);
    const msb = ports.read(PIT_CH2, 1);
    const expected = (0xFFFF - (ticksAt(time.nowNs()) - loadTick)) & 0xFFFF;
    assertEquals(lsb | (msb << 8), expected);
    assert(msb === previousMsb || msb === previousMsb - 1, `MSB went ${previousMsb} -> ${msb}`);
    previousMsb = msb;
    readsPerMsb.set(msb, (readsPerMsb.get(msb) ?? 0) + 1);
    time.advanceNs(300);
  }
  assert(previousMsb < 0xFF - 20, "counted through many MSB values");
  // Each MSB value lasts 256 ticks (214.5 us): plenty of reads for "count > 5" in pit_expect_msb.
  for (const [msb, reads] of readsPerMsb) {
    if (msb !== 0xFF && msb !== previousMsb) {
      assert(reads > 500, `MSB 0x${msb.toString(16)} seen ${reads} times`);
    }
  }
});

Deno.test("Pit8254 channel 2 mode 0 sets port 0x61 bit 5 after the count, as pit_calibrate_tsc polls it", () => {
  const { time, ports } = setup();
  ports.write(0x61, 1, (ports.read(0x61, 1) & ~0x02) | 0x01);
  ports.write(PIT_MODE, 1, 0xB0);
  ports.write(PIT_CH2, 1, LATCH_10MS & 0xFF);
  ports.write(PIT_CH2, 1, LATCH_10MS >> 8);
  const start = time.nowNs();
  let polls = 0;
  while ((ports.read(0x61, 1) & 0x20) === 0) {
    polls++;
    time.advanceNs(100);
  }
  const elapsed = time.nowNs() - start;
  const expected = LATCH_10MS * NS_PER_TICK;
  assert(
    Math.abs(elapsed - expected) <= NS_PER_TICK + 100,
    `OUT2 rose after ${elapsed} ns, expected ${expected}`,
  );
  assert(polls >= 1000, "pit_calibrate_tsc wants at least loopmin polls");
  assertEquals(ports.read(0x61, 1) & 0x23, 0x21, "gate on, speaker off, OUT2 high");
});

Deno.test("Pit8254 gate low suspends channel 2 in mode 0", () => {
  const { time, ports, pit } = setup();
  ports.write(0x61, 1, 0x01);
  ports.write(PIT_MODE, 1, 0xB0);
  ports.write(PIT_CH2, 1, 0x00);
  ports.write(PIT_CH2, 1, 0x10); // 0x1000 ticks
  time.advanceNs(0x100 * NS_PER_TICK + 1);
  ports.write(0x61, 1, 0x00);
  assert(!pit.gate(2));
  ports.write(PIT_MODE, 1, 0x80); // latch
  const frozen = ports.read(PIT_CH2, 1) | (ports.read(PIT_CH2, 1) << 8);
  time.advanceNs(1e6);
  ports.write(PIT_MODE, 1, 0x80);
  assertEquals(ports.read(PIT_CH2, 1) | (ports.read(PIT_CH2, 1) << 8), frozen);
  ports.write(0x61, 1, 0x01);
  time.advanceNs(0x10 * NS_PER_TICK + 1);
  ports.write(PIT_MODE, 1, 0x80);
  const resumed = ports.read(PIT_CH2, 1) | (ports.read(PIT_CH2, 1) << 8);
  assert(frozen - resumed >= 0x10 && frozen - resumed <= 0x11, `resumed at 0x${resumed.toString(16)}`);
});

Deno.test("Pit8254 read-back latches status before count", () => {
  const { time, ports } = setup();
  ports.write(PIT_MODE, 1, 0x34);
  ports.write(PIT_CH0, 1, 0x00);
  ports.write(PIT_CH0, 1, 0x10);
  time.advanceNs(0x20 * NS_PER_TICK + 1);
  ports.write(PIT_MODE, 1, 0xC2); // read-back: count and status of channel 0
  assertEquals(ports.read(PIT_CH0, 1), 0x80 | 0x34, "OUT high, lohi, mode 2, binary");
  const count = ports.read(PIT_CH0, 1) | (ports.read(PIT_CH0, 1) << 8);
  assert(count <= 0x1000 - 0x20 && count >= 0x1000 - 0x21, `count 0x${count.toString(16)}`);
  ports.write(PIT_MODE, 1, 0x30); // mode 0, count not yet written
  ports.write(PIT_MODE, 1, 0xE2); // status only
  assertEquals(ports.read(PIT_CH0, 1), 0x40 | 0x30, "OUT low, null count");
});

Deno.test("Pit8254 mode 4 (Linux's oneshot clockevent) pulses IRQ0 once", () => {
  const { time, ports, irq } = setup();
  // pit_set_oneshot: 0x38; pit_next_event: the delta lo/hi.
  ports.write(PIT_MODE, 1, 0x38);
  ports.write(PIT_CH0, 1, 100);
  ports.write(PIT_CH0, 1, 0);
  const before = irq.risingEdges[0];
  time.advanceNs(100 * NS_PER_TICK);
  assertEquals(irq.risingEdges[0], before, "not before the count has run out");
  time.advanceNs(2 * NS_PER_TICK);
  assertEquals(irq.risingEdges[0], before + 1);
  time.advanceNs(1e8);
  assertEquals(irq.risingEdges[0], before + 1, "one shot only");
});

Deno.test("Pit8254 mode 4: a short count whose edge passes during the write itself still fires", () => {
  // Host-clock mode: time moves on between any two clock reads (a preempted host can lose
  // milliseconds there). Each read here advances the clock by 5,000 PIT ticks, more than the count.
  let instructions = 0;
  const clock = new VirtualClock("deterministic", 10);
  clock.setInstructionCounter(() => instructions += Math.ceil(5000 * NS_PER_TICK / 10));
  const irq = new FakeIrqSink();
  const ports = new PortBus();
  new Pit8254(clock, irq).register(ports);
  ports.write(PIT_MODE, 1, 0x38);
  const before = irq.risingEdges[0];
  ports.write(PIT_CH0, 1, 0xEA); // 0x0AEA = 2794 ticks, what Linux wrote when it went wrong
  ports.write(PIT_CH0, 1, 0x0A);
  clock.runDue();
  assertEquals(irq.risingEdges[0], before + 1, "the one-shot edge was lost");
});

Deno.test("Pit8254 mode 4: reprogramming after an edge's time but before the run loop fired it keeps the edge", () => {
  const { time, ports, irq } = setup();
  ports.write(PIT_MODE, 1, 0x38);
  ports.write(PIT_CH0, 1, 100);
  ports.write(PIT_CH0, 1, 0);
  const before = irq.risingEdges[0];
  // The guest runs on past the edge within one CPU slice (no runDue), then writes a new count.
  time.instructions += Math.ceil((200 * NS_PER_TICK) / 10);
  ports.write(PIT_CH0, 1, 50);
  ports.write(PIT_CH0, 1, 0);
  assertEquals(irq.risingEdges[0], before + 1, "the first count's edge happened on time on hardware");
  time.advanceNs(60 * NS_PER_TICK);
  assertEquals(irq.risingEdges[0], before + 2, "and the second count fires too");
});

Deno.test("Pit8254 periodic ticks the host fell behind on each reach IRQ0, one per run-loop turn", () => {
  const { time, ports, irq } = setup();
  const latch = Math.round(PIT_HZ / 250); // Linux's HZ=250 tick: 4 ms
  ports.write(PIT_MODE, 1, 0x34);
  ports.write(PIT_CH0, 1, latch & 0xFF);
  ports.write(PIT_CH0, 1, latch >> 8);
  const before = irq.risingEdges[0];
  // The host stalls for 10 periods (and a bit) without the run loop firing timers.
  time.instructions += Math.ceil((10.2 * latch * NS_PER_TICK) / 10);
  time.advanceNs(0);
  assertEquals(irq.risingEdges[0], before + 1, "one edge at a time");
  for (let i = 0; i < 12; i++) time.advanceNs(100_000);
  assertEquals(irq.risingEdges[0], before + 10, "every lost period is delivered");
  time.advanceNs(latch * NS_PER_TICK);
  assertEquals(irq.risingEdges[0], before + 11, "then back to one per period");
});

Deno.test("Pit8254 mode 0 on channel 0 holds IRQ0 high from the terminal count", () => {
  const { time, ports, irq } = setup();
  // Linux's pit_shutdown: mode 0 with count 0 fires once after 65536 ticks.
  ports.write(PIT_MODE, 1, 0x30);
  assertEquals(irq.levels[0], false);
  const before = irq.risingEdges[0];
  ports.write(PIT_CH0, 1, 0);
  ports.write(PIT_CH0, 1, 0);
  time.advanceNs(65535 * NS_PER_TICK);
  assertEquals(irq.levels[0], false);
  time.advanceNs(2 * NS_PER_TICK);
  assertEquals(irq.levels[0], true);
  assertEquals(irq.risingEdges[0], before + 1);
  time.advanceNs(1e8);
  assertEquals(irq.risingEdges[0], before + 1, "no reload in mode 0");
});

Deno.test("Pit8254 mode 3 square wave on channel 2 shows on port 0x61 bit 5", () => {
  const { time, ports } = setup();
  ports.write(0x61, 1, 0x03);
  ports.write(PIT_MODE, 1, 0xB6); // channel 2, lohi, mode 3
  ports.write(PIT_CH2, 1, 100);
  ports.write(PIT_CH2, 1, 0);
  let highs = 0;
  for (let tick = 0; tick < 1000; tick++) {
    if (ports.read(0x61, 1) & 0x20) highs++;
    time.advanceNs(NS_PER_TICK);
  }
  assert(highs >= 495 && highs <= 505, `high for ${highs} of 1000 ticks`);
});

Deno.test("Pit8254 LSB-only, MSB-only and BCD access", () => {
  const { time, ports } = setup();
  ports.write(PIT_MODE, 1, 0x90); // channel 2, LSB only, mode 0
  ports.write(0x61, 1, 0x01);
  ports.write(PIT_CH2, 1, 0x80);
  assertEquals(ports.read(PIT_CH2, 1), 0x80);
  ports.write(PIT_MODE, 1, 0xA0); // MSB only
  ports.write(PIT_CH2, 1, 0x02);
  assertEquals(ports.read(PIT_CH2, 1), 0x02);
  time.advanceNs(0x101 * NS_PER_TICK);
  assertEquals(ports.read(PIT_CH2, 1), 0x00);
  ports.write(PIT_MODE, 1, 0xB1); // lohi, mode 0, BCD
  ports.write(PIT_CH2, 1, 0x00);
  ports.write(PIT_CH2, 1, 0x10); // 1000 decimal
  time.advanceNs(11 * NS_PER_TICK);
  const count = ports.read(PIT_CH2, 1) | (ports.read(PIT_CH2, 1) << 8);
  assert(count === 0x0989 || count === 0x0990, `BCD count 0x${count.toString(16)}`);
});

Deno.test("SystemControlPort toggles the refresh bit every 15.085 us and keeps bits 0-3", () => {
  const { time, ports } = setup();
  ports.write(0x61, 1, 0xFF);
  assertEquals(ports.read(0x61, 1) & 0xCF, 0x0F, "bits 0-3 writable, 6-7 read 0");
  const first = ports.read(0x61, 1) & 0x10;
  time.advanceNs(15_085);
  assertEquals(ports.read(0x61, 1) & 0x10, first ^ 0x10);
});
