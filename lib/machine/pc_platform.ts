/**
 * The minimal PC around the CPU, wired onto a Machine: the 8259 pair, the 8254 PIT with port 0x61,
 * the CMOS RTC, a 16550A UART on COM1, the i8042 (for its reset line), the ACPI PM registers
 * (soft-off and the PM timer; the tables describing them are the launcher's), the POST/debug-console
 * ports. One chip per file lives in lib/pc/; this file only connects them (ports, IRQ lines,
 * clock, CPU interrupt input) so the launcher stays readable.
 */
import { AcpiPm } from "../pc/acpi_pm.ts";
import { DebugPorts } from "../pc/debug_ports.ts";
import { I8042 } from "../pc/i8042.ts";
import { Pic8259Pair } from "../pc/pic_8259.ts";
import { Pit8254 } from "../pc/pit_8254.ts";
import { RtcCmos } from "../pc/rtc_cmos.ts";
import { SystemControlPort } from "../pc/system_control_port.ts";
import { type SerialBackend, Uart16550 } from "../pc/uart_16550.ts";
import type { Machine } from "./machine.ts";

export interface PcPlatformOptions {
  /** Where COM1's output goes. */
  serial: SerialBackend;
  /** The guest pulsed the reset line (i8042 command 0xFE). */
  onReset: () => void;
  /** The guest entered ACPI S5 (soft-off); default: stop the machine with kind "poweroff". */
  onPowerOff?: () => void;
  /** RTC time at virtual time zero (ms since the epoch); default the host's now (a fixed date if deterministic). */
  startTimeMs?: number;
  /**
   * Chips as at power-on (firmware runs from the reset vector): the 8259s uninitialized and the
   * 8254 unprogrammed. Default: as a BIOS leaves them for a kernel.
   */
  powerOn?: boolean;
}

export class PcPlatform {
  readonly pic: Pic8259Pair;
  readonly pit: Pit8254;
  readonly rtc: RtcCmos;
  readonly uart: Uart16550;
  readonly i8042: I8042;
  readonly acpiPm: AcpiPm;
  readonly debugPorts = new DebugPorts();

  constructor(machine: Machine, options: PcPlatformOptions) {
    const ports = machine.ports;
    const powerOn = options.powerOn === true;
    this.pic = new Pic8259Pair({ powerOn });
    this.pic.register(ports);
    this.pic.onChange = () => machine.wake();
    machine.cpu.interrupts = this.pic;
    this.pit = new Pit8254(machine.clock, this.pic, 0, { powerOn });
    this.pit.register(ports);
    new SystemControlPort(this.pit, machine.clock).register(ports);
    this.rtc = new RtcCmos(machine.clock, this.pic, {
      memSizeBytes: machine.mem.sizeBytes,
      startTimeMs: options.startTimeMs,
    });
    this.rtc.register(ports);
    this.uart = new Uart16550(this.pic, options.serial);
    this.uart.register(ports);
    this.i8042 = new I8042(this.pic, options.onReset);
    this.i8042.register(ports);
    this.acpiPm = new AcpiPm(machine.clock, this.pic, {
      onPowerOff: options.onPowerOff ?? (() => machine.stop("poweroff", "the guest powered off (ACPI S5)")),
    });
    this.acpiPm.register(ports);
    this.debugPorts.register(ports);
  }
}
