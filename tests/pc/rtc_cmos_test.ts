/** The MC146818 RTC and CMOS, read as Linux's mc146818_get_time() and rtc-cmos driver read them. */
import { assert, assertEquals } from "../assert.ts";
import { PortBus } from "../../lib/machine/bus.ts";
import { DETERMINISTIC_RTC_BASE_MS, RtcCmos } from "../../lib/pc/rtc_cmos.ts";
import { VirtualClock } from "../../lib/machine/clock.ts";
import { FakeIrqSink } from "./fake_irq_sink.ts";
import { SteppedClock } from "./stepped_clock.ts";

const MiB = 1024 * 1024;
/** Sunday 2023-12-31 23:59:58.000 UTC. */
const NEW_YEARS_EVE = Date.UTC(2023, 11, 31, 23, 59, 58);

function setup(startTimeMs?: number, memSizeBytes = 128 * MiB) {
  const time = new SteppedClock();
  const irq = new FakeIrqSink();
  const ports = new PortBus();
  new RtcCmos(time.clock, irq, { memSizeBytes, startTimeMs }).register(ports);
  const cmos = (index: number) => {
    ports.write(0x70, 1, index);
    return ports.read(0x71, 1);
  };
  const setCmos = (index: number, value: number) => {
    ports.write(0x70, 1, index);
    ports.write(0x71, 1, value);
  };
  const now = () => readTime(cmos, () => time.advanceNs(100_000));
  return { time, irq, ports, cmos, setCmos, now };
}

function bcd(value: number): number {
  return (value >> 4) * 10 + (value & 0xF);
}

/**
 * mc146818_get_time(), BCD 24-hour mode, without the century byte (Linux has no FADT here).
 * While UIP is set Linux waits (udelay), which retires instructions: `wait` stands for that.
 */
function readTime(cmos: (index: number) => number, wait: () => void): Date {
  for (;;) {
    if (cmos(0x0A) & 0x80) {
      wait();
      continue;
    }
    const seconds = cmos(0x00), minutes = cmos(0x02), hours = cmos(0x04);
    const day = cmos(0x07), month = cmos(0x08), year = cmos(0x09);
    if (seconds !== cmos(0x00)) continue;
    const fullYear = bcd(year) + (bcd(year) < 70 ? 2000 : 1900);
    return new Date(Date.UTC(fullYear, bcd(month) - 1, bcd(day), bcd(hours), bcd(minutes), bcd(seconds)));
  }
}

Deno.test("RtcCmos on a deterministic clock starts at a fixed date, BCD and 24-hour (issue #10)", () => {
  const { cmos, now } = setup();
  assertEquals(now().getTime(), DETERMINISTIC_RTC_BASE_MS);
  assertEquals(now().toISOString(), "2026-01-01T00:00:00.000Z");
  assertEquals(cmos(0x0B) & 0x06, 0x02, "BCD, 24-hour");
  assertEquals(cmos(0x0D), 0x80, "valid RAM and time");
});

Deno.test("RtcCmos on the host clock starts at the host's UTC time", () => {
  const clock = new VirtualClock("host");
  const ports = new PortBus();
  new RtcCmos(clock, new FakeIrqSink(), { memSizeBytes: 128 * MiB }).register(ports);
  const cmos = (index: number) => {
    ports.write(0x70, 1, index);
    return ports.read(0x71, 1);
  };
  const guest = readTime(cmos, () => {}).getTime();
  assert(Math.abs(guest - Date.now()) < 3000, `guest ${new Date(guest).toISOString()} vs host`);
});

Deno.test("RtcCmos advances with the virtual clock across a year boundary", () => {
  const { time, cmos, now } = setup(NEW_YEARS_EVE);
  assertEquals(now().toISOString(), "2023-12-31T23:59:58.000Z");
  assertEquals(cmos(0x06), 1, "Sunday");
  assertEquals(cmos(0x32), 0x20, "century");
  time.advanceNs(3e9);
  assertEquals(now().toISOString(), "2024-01-01T00:00:01.000Z");
  assertEquals(cmos(0x06), 2, "Monday");
  time.advanceNs(3600e9 * 24 * 60);
  assertEquals(now().toISOString(), "2024-03-01T00:00:01.000Z", "2024 is a leap year");
});

Deno.test("RtcCmos follows register B's binary and 12-hour modes", () => {
  const { time, cmos, setCmos } = setup(Date.UTC(2024, 6, 4, 13, 5, 9));
  setCmos(0x0B, 0x04); // binary, 12-hour
  assertEquals(cmos(0x04), 0x80 | 1, "1 PM");
  assertEquals(cmos(0x02), 5);
  assertEquals(cmos(0x09), 24);
  time.advanceNs(11 * 3600e9);
  assertEquals(cmos(0x04), 12, "midnight is 12 AM");
  setCmos(0x0B, 0x00); // BCD, 12-hour
  time.advanceNs(12 * 3600e9);
  assertEquals(cmos(0x04), 0x80 | 0x12, "noon is 12 PM");
});

Deno.test("RtcCmos sets UIP in the 244 us before each update", () => {
  const { time, cmos } = setup(Date.UTC(2024, 0, 1, 0, 0, 0));
  assertEquals(cmos(0x0A) & 0x80, 0);
  time.advanceNs(1e9 - 300_000);
  assertEquals(cmos(0x0A) & 0x80, 0);
  time.advanceNs(100_000);
  assertEquals(cmos(0x0A), 0x80 | 0x26);
  assertEquals(bcd(cmos(0x00)), 0, "the update has not happened yet");
  time.advanceNs(200_000);
  assertEquals(cmos(0x0A) & 0x80, 0);
  assertEquals(bcd(cmos(0x00)), 1);
});

Deno.test("RtcCmos periodic interrupt at 1024 Hz raises IRQ8 until register C is read", () => {
  const { time, irq, cmos, setCmos } = setup();
  cmos(0x0C);
  setCmos(0x0B, cmos(0x0B) | 0x40); // PIE
  let interrupts = 0;
  for (let step = 0; step < 10_000; step++) {
    time.advanceNs(100_000);
    if (irq.levels[8]) {
      assertEquals(cmos(0x0C) & 0xC0, 0xC0, "IRQF and PF");
      assertEquals(irq.levels[8], false, "reading C releases IRQ8");
      interrupts++;
    }
  }
  assert(interrupts >= 1023 && interrupts <= 1025, `${interrupts} periodic interrupts in 1 s`);
  assertEquals(cmos(0x0C), 0, "read clears");
});

Deno.test("RtcCmos reports PF in register C even with the interrupt disabled", () => {
  const { time, irq, cmos } = setup();
  cmos(0x0C);
  time.advanceNs(2e6);
  assertEquals(cmos(0x0C), 0x40, "PF without IRQF");
  assertEquals(irq.risingEdges[8], 0);
});

Deno.test("RtcCmos update-ended and alarm interrupts", () => {
  const { time, irq, cmos, setCmos } = setup(Date.UTC(2024, 0, 1, 10, 20, 30));
  setCmos(0x01, 0x35); // alarm at hh:mm:35 every hour and minute
  setCmos(0x03, 0xFF);
  setCmos(0x05, 0xFF);
  cmos(0x0C);
  setCmos(0x0B, 0x02 | 0x10 | 0x20); // UIE, AIE
  let updates = 0;
  let alarms = 0;
  for (let step = 0; step < 100; step++) {
    time.advanceNs(100e6);
    if (irq.levels[8]) {
      const c = cmos(0x0C);
      if (c & 0x10) updates++;
      if (c & 0x20) {
        alarms++;
        assertEquals(cmos(0x00), 0x35);
      }
    }
  }
  assertEquals(updates, 10);
  assertEquals(alarms, 1);
});

Deno.test("RtcCmos takes a new time written under register B's SET bit", () => {
  const { time, cmos, setCmos, now } = setup(Date.UTC(2024, 0, 1, 0, 0, 0, 250));
  // mc146818_set_time(): SET, write the fields, clear SET.
  setCmos(0x0B, cmos(0x0B) | 0x80);
  setCmos(0x00, 0x59);
  setCmos(0x02, 0x59);
  setCmos(0x04, 0x23);
  setCmos(0x07, 0x28);
  setCmos(0x08, 0x02);
  setCmos(0x09, 0x25);
  time.advanceNs(5e9);
  assertEquals(cmos(0x00), 0x59, "frozen while SET");
  setCmos(0x0B, cmos(0x0B) & ~0x80);
  assertEquals(now().toISOString(), "2025-02-28T23:59:59.000Z");
  time.advanceNs(1e9);
  assertEquals(now().toISOString(), "2025-03-01T00:00:00.000Z");
});

Deno.test("RtcCmos reports the memory size in the AT BIOS fields", () => {
  const { cmos } = setup(undefined, 128 * MiB);
  assertEquals(cmos(0x15) | (cmos(0x16) << 8), 640);
  assertEquals(cmos(0x17) | (cmos(0x18) << 8), 0xFFFF, "capped");
  assertEquals(cmos(0x30) | (cmos(0x31) << 8), 0xFFFF);
  assertEquals(cmos(0x34) | (cmos(0x35) << 8), (128 - 16) * 16);
  const small = setup(undefined, 8 * MiB).cmos;
  assertEquals(small(0x17) | (small(0x18) << 8), 7 * 1024);
  assertEquals(small(0x34) | (small(0x35) << 8), 0);
});

Deno.test("RtcCmos keeps general CMOS RAM and ignores the NMI mask bit", () => {
  const { ports, cmos } = setup();
  ports.write(0x70, 1, 0x80 | 0x40);
  ports.write(0x71, 1, 0xA5);
  assertEquals(cmos(0x40), 0xA5);
  assertEquals(ports.read(0x70, 1), 0xFF, "the index register is write-only");
});
