/**
 * The ACPI fixed registers on a deterministic clock, accessed as ACPICA accesses them
 * (drivers/acpi/acpica/hwregs.c, hwsleep.c, evevent.c) and as Linux's acpi_pm clocksource reads the
 * timer (drivers/clocksource/acpi_pm.c).
 */
import { assert, assertEquals } from "../assert.ts";
import { PortBus } from "../../lib/machine/bus.ts";
import {
  ACPI_PM1A_CNT_BLK,
  ACPI_PM1A_EVT_BLK,
  ACPI_PM_TMR_BLK,
  ACPI_SCI_IRQ,
  ACPI_SLP_TYP_S5,
  AcpiPm,
  GBL_EN,
  PM_TIMER_HZ,
  PWRBTN_EN,
  PWRBTN_STS,
  RTC_EN,
  SCI_EN,
  SLP_EN,
  SLP_TYP_SHIFT,
  TMR_EN,
  TMR_STS,
} from "../../lib/pc/acpi_pm.ts";
import { Pit8254, PIT_HZ } from "../../lib/pc/pit_8254.ts";
import { SystemControlPort } from "../../lib/pc/system_control_port.ts";
import { setLogSink } from "../../lib/support/log.ts";
import { FakeIrqSink } from "./fake_irq_sink.ts";
import { SteppedClock } from "./stepped_clock.ts";

const PM1_STS = ACPI_PM1A_EVT_BLK;
const PM1_EN = ACPI_PM1A_EVT_BLK + 2;
const PM1_CNT = ACPI_PM1A_CNT_BLK;
const PM_TMR = ACPI_PM_TMR_BLK;
const NS_PER_TICK = 1e9 / PM_TIMER_HZ;

function setup() {
  const time = new SteppedClock();
  const irq = new FakeIrqSink();
  const ports = new PortBus();
  let powerOffs = 0;
  const pm = new AcpiPm(time.clock, irq, { onPowerOff: () => powerOffs++ });
  pm.register(ports);
  return { time, irq, ports, pm, powerOffs: () => powerOffs };
}

Deno.test("AcpiPm timer counts 3579545 ticks per virtual second, 24 bits wide", () => {
  const { time, ports } = setup();
  time.advanceNs(123_456_789);
  const t0 = ports.read(PM_TMR, 4);
  time.advanceNs(1e9);
  const t1 = ports.read(PM_TMR, 4);
  assert(Math.abs(((t1 - t0) & 0xFF_FFFF) - PM_TIMER_HZ) <= 1, `${t1 - t0} ticks in 1 s`);
  assertEquals(t1 >>> 24, 0, "bits 31-24 read zero without TMR_VAL_EXT");
  // The counter wraps every 2^24 ticks (4.69 s), as acpi_pm's 24-bit mask expects.
  time.advanceNs(2 ** 24 * NS_PER_TICK);
  assert(Math.abs((ports.read(PM_TMR, 4) - t1) & 0xFF_FFFF) <= 1, "wrapped to the same count");
  // Byte reads see the same counter (little-endian lanes).
  const t = ports.read(PM_TMR, 4);
  assertEquals(ports.read(PM_TMR + 2, 1), (t >>> 16) & 0xFF);
});

Deno.test("AcpiPm timer passes acpi_pm's monotonicity check: reads never go back, and move", () => {
  // init_acpi_pm_clocksource reads until the value changes, at most ACPI_PM_READ_CHECKS (10000) times.
  const { time, ports } = setup();
  let last = ports.read(PM_TMR, 4);
  let changes = 0;
  for (let i = 0; i < 10_000; i++) {
    time.advanceNs(30); // a few instructions per inl
    const v = ports.read(PM_TMR, 4);
    assert(v >= last, "monotonic");
    if (v !== last) changes++;
    last = v;
  }
  assert(changes > 1000, `${changes} changes in 300 us`);
});

Deno.test("AcpiPm timer agrees with the PIT, as verify_pmtmr_rate checks", () => {
  // drivers/clocksource/acpi_pm.c: count PM ticks while PIT channel 2 counts CALIBRATE_LATCH down in
  // mode 0, and refuse the timer if the rate is off by more than 10%. Ours should be exact.
  const time = new SteppedClock();
  const ports = new PortBus();
  const pit = new Pit8254(time.clock, new FakeIrqSink());
  pit.register(ports);
  new SystemControlPort(pit, time.clock).register(ports);
  new AcpiPm(time.clock, new FakeIrqSink(), { onPowerOff: () => {} }).register(ports);
  const CALIBRATE_LATCH = 0xFFFF;
  ports.write(0x61, 1, (ports.read(0x61, 1) & ~0x02) | 0x01);
  ports.write(0x43, 1, 0xB0);
  ports.write(0x42, 1, CALIBRATE_LATCH & 0xFF);
  ports.write(0x42, 1, CALIBRATE_LATCH >> 8);
  const pm0 = ports.read(PM_TMR, 4);
  while ((ports.read(0x61, 1) & 0x20) === 0) time.advanceNs(200);
  const counted = (ports.read(PM_TMR, 4) - pm0) & 0xFF_FFFF;
  const expected = (CALIBRATE_LATCH * PM_TIMER_HZ) / PIT_HZ;
  assert(Math.abs(counted - expected) <= 2, `${counted} PM ticks, expected ${expected}`);
});

Deno.test("AcpiPm PM1_CNT reads SCI_EN set: ACPI mode without SMI_CMD", () => {
  const { ports } = setup();
  assertEquals(ports.read(PM1_CNT, 2) & SCI_EN, SCI_EN);
  ports.write(PM1_CNT, 2, 0); // an OS cannot leave ACPI mode this way either
  assertEquals(ports.read(PM1_CNT, 2), SCI_EN);
});

Deno.test("AcpiPm powers off on ACPICA's two-write S5 sequence, and only on the second", () => {
  const { ports, powerOffs } = setup();
  // acpi_hw_legacy_sleep: read PM1_CNT, clear SLP_TYP/SLP_EN, write SLP_TYP, then SLP_TYP | SLP_EN.
  const cnt = ports.read(PM1_CNT, 2) & ~(SLP_EN | (7 << SLP_TYP_SHIFT));
  ports.write(PM1_CNT, 2, cnt | (ACPI_SLP_TYP_S5 << SLP_TYP_SHIFT));
  assertEquals(powerOffs(), 0);
  assertEquals(ports.read(PM1_CNT, 2), SCI_EN | (ACPI_SLP_TYP_S5 << SLP_TYP_SHIFT), "SLP_TYP reads back");
  ports.write(PM1_CNT, 2, cnt | (ACPI_SLP_TYP_S5 << SLP_TYP_SHIFT) | SLP_EN);
  assertEquals(powerOffs(), 1);
  assertEquals(ports.read(PM1_CNT, 2) & SLP_EN, 0, "SLP_EN is write-only");
});

Deno.test("AcpiPm takes SLP_EN in a byte write to the high half of PM1_CNT", () => {
  const { ports, powerOffs } = setup();
  ports.write(PM1_CNT + 1, 1, ((ACPI_SLP_TYP_S5 << SLP_TYP_SHIFT) | SLP_EN) >> 8);
  assertEquals(powerOffs(), 1);
});

Deno.test("AcpiPm logs and ignores sleep types other than S5", () => {
  const { ports, powerOffs } = setup();
  const lines: string[] = [];
  const old = setLogSink((line) => lines.push(line));
  try {
    ports.write(PM1_CNT, 2, (1 << SLP_TYP_SHIFT) | SLP_EN);
  } finally {
    setLogSink(old);
  }
  assertEquals(powerOffs(), 0);
  assertEquals(lines.length, 1);
  assert(lines[0].includes("sleep type 1"), lines[0]);
});

Deno.test("AcpiPm PM1_EN bits stick, as ACPICA checks when enabling GBL and the power button", () => {
  const { ports } = setup();
  ports.write(PM1_EN, 2, GBL_EN | PWRBTN_EN | RTC_EN | 0x0002); // bit 1 is reserved
  assertEquals(ports.read(PM1_EN, 2), GBL_EN | PWRBTN_EN | RTC_EN);
  // The whole block read as one dword: status low, enable high.
  assertEquals(ports.read(PM1_STS, 4) >>> 16, GBL_EN | PWRBTN_EN | RTC_EN);
  // A byte write to the enable register's high byte leaves its low byte alone.
  ports.write(PM1_EN + 1, 1, 0);
  assertEquals(ports.read(PM1_EN, 2), GBL_EN);
});

Deno.test("AcpiPm power button sets PWRBTN_STS, raises the SCI when enabled, write 1 clears both", () => {
  const { ports, pm, irq } = setup();
  pm.pressPowerButton();
  assertEquals(ports.read(PM1_STS, 2) & PWRBTN_STS, PWRBTN_STS);
  assertEquals(irq.levels[ACPI_SCI_IRQ], false, "not enabled yet");
  ports.write(PM1_EN, 2, PWRBTN_EN);
  assertEquals(irq.levels[ACPI_SCI_IRQ], true, "level-triggered SCI while status & enable");
  ports.write(PM1_STS, 2, 0); // writing zeros clears nothing
  assertEquals(irq.levels[ACPI_SCI_IRQ], true);
  ports.write(PM1_STS, 2, PWRBTN_STS);
  assertEquals(ports.read(PM1_STS, 2) & PWRBTN_STS, 0);
  assertEquals(irq.levels[ACPI_SCI_IRQ], false);
  assertEquals(irq.risingEdges[ACPI_SCI_IRQ], 1);
});

Deno.test("AcpiPm sets TMR_STS when timer bit 23 toggles, and with TMR_EN raises the SCI on time", () => {
  const { time, ports, irq } = setup();
  const halfPeriodNs = 2 ** 23 * NS_PER_TICK; // 2.34 s
  time.advanceNs(halfPeriodNs - 1e6);
  assertEquals(ports.read(PM1_STS, 2) & TMR_STS, 0);
  time.advanceNs(2e6);
  assertEquals(ports.read(PM1_STS, 2) & TMR_STS, TMR_STS);
  ports.write(PM1_STS, 2, TMR_STS);
  assertEquals(ports.read(PM1_STS, 2) & TMR_STS, 0, "write 1 clears");
  ports.write(PM1_EN, 2, TMR_EN);
  assertEquals(irq.levels[ACPI_SCI_IRQ], false);
  // The next toggle is at 2 x 2^23 ticks; the armed timer raises the SCI without any register read.
  time.advanceNs(halfPeriodNs - 2e6);
  assertEquals(irq.levels[ACPI_SCI_IRQ], false);
  time.advanceNs(2e6);
  assertEquals(irq.levels[ACPI_SCI_IRQ], true);
  ports.write(PM1_STS, 2, TMR_STS);
  assertEquals(irq.levels[ACPI_SCI_IRQ], false);
  ports.write(PM1_EN, 2, 0);
  time.advanceNs(3 * halfPeriodNs);
  assertEquals(irq.levels[ACPI_SCI_IRQ], false, "no SCI with TMR_EN clear");
  assertEquals(ports.read(PM1_STS, 2) & TMR_STS, TMR_STS, "but the status is still set");
});

Deno.test("AcpiPm reads past the end of a block as all ones and ignores timer writes", () => {
  const { ports } = setup();
  assertEquals(ports.read(PM1_CNT, 4) >>> 16, 0xFFFF);
  const t = ports.read(PM_TMR, 4);
  ports.write(PM_TMR, 4, 0);
  assert(ports.read(PM_TMR, 4) >= t);
});
