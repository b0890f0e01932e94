/**
 * From parsed options to a running Guest: build the Machine, load the firmware or the kernel,
 * attach the PC platform and its Backends, run until the Guest stops, and turn how it stopped
 * into an exit code (0 powered off, 3 halted for good, 1 crashed).
 */
import { hostErrorReason } from "../backends/file_disk.ts";
import type { TerminalSize } from "../backends/terminal.ts";
import { Machine, type RunResult } from "../machine/machine.ts";
import { PcPlatform } from "../machine/pc_platform.ts";
import { ACPI_RSDP_PHYS_ADDR, type PciIrqRoute, writeAcpiTables } from "../pc/acpi_tables.ts";
import { DEFAULT_BAR_BASE, type PciHostBridge } from "../pci/pci_host_bridge.ts";
import { LaunchError } from "../support/errors.ts";
import { debug } from "../support/log.ts";
import { BOOT_CS, BOOT_DS, BOOT_GDT_LIMIT, BOOT_GDT_PHYS_ADDR, writeBootGdt } from "./boot_gdt.ts";
import { writeBootParams } from "./boot_params.ts";
import { checkFirmwareImage } from "./firmware_image.ts";
import { checkKernelHeader, loadKernelImage } from "./kernel_image.ts";
import { attachVirtioDevices, LaunchBackends } from "./virtio_devices.ts";
import { decompressBzImagePayload } from "./bzimage_payload.ts";
import { PanicWatch } from "./panic_watch.ts";
import { EBP, EBX, EDI, ESI, ST_GDT_BASE, ST_GDT_LIMIT } from "../x86/registers.ts";
import type { LaunchOptions } from "./options.ts";
import { bootLguest, chooseBootStyle } from "./lguest_launch.ts";
import { startTrace } from "./start_trace.ts";
import { type BootResult, LaunchSession } from "./launch_session.ts";

/**
 * Checks that `path` names a readable file before any slow work starts, so that every file
 * argument is reported alike (`Cannot open initrd "x": is a directory`) and at once.
 */
async function checkFile(path: string, what: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    throw new LaunchError(`Cannot open ${what} "${path}": ${hostErrorReason(e)}`);
  }
  if (info.isDirectory) throw new LaunchError(`Cannot open ${what} "${path}": is a directory`);
}

async function readFileOrFail(path: string, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new LaunchError(`Cannot open ${what} "${path}": ${hostErrorReason(e)}`);
  }
}

/** Runs the Guest described by `opts`; resolves to the process exit code. */
export async function launch(opts: LaunchOptions): Promise<number> {
  if (opts.boot.kind === "firmware") {
    await checkFile(opts.boot.path, "firmware");
    return await launchFirmware(opts, opts.boot.path);
  }
  await checkFile(opts.boot.path, "kernel");
  if (opts.initrdPath !== undefined) await checkFile(opts.initrdPath, "initrd");
  for (const b of opts.blocks) await checkFile(b.path, "block file");
  const rawKernel = await readFileOrFail(opts.boot.path, "kernel");
  const initrd = opts.initrdPath === undefined ? undefined : await readFileOrFail(opts.initrdPath, "initrd");
  checkKernelHeader(rawKernel, opts.boot.path);
  const kernelBytes = await kernelToLoad(opts, rawKernel);
  const style = await chooseBootStyle(opts, rawKernel, kernelBytes);
  // Disks, links, captures and shared folders outlive guest reboots.
  const backends = await LaunchBackends.open(opts);
  try {
    const session = new LaunchSession();
    const cmdline = withTerminalSize(opts.boot.cmdline, session.terminal.size());
    const boot = style.lguest
      ? () => bootLguest(opts, session, backends, cmdline, kernelBytes, initrd, style.pae)
      : () => bootLinux(opts, session, backends, cmdline, kernelBytes, initrd);
    return await session.run(boot, opts.noReboot, debug);
  } finally {
    await backends.close();
  }
}

/**
 * The kernel command line with `lguest_tty=COLSxROWS` added when the console is a terminal: the
 * reference guest's init sets its serial console to that size (a serial line cannot carry it).
 */
function withTerminalSize(cmdline: string, size: TerminalSize | null): string {
  if (size === null || /(?:^|\s)lguest_tty=/.test(cmdline)) return cmdline;
  return `${cmdline} lguest_tty=${size.columns}x${size.rows}`.trim();
}
/**
 * The image to load for the kernel file's `bytes`: a bzImage's vmlinux decompressed on the host (the
 * fast path), or the file as it is (an ELF, `--guest-decompress`, or a payload we cannot decode).
 */
async function kernelToLoad(opts: LaunchOptions, bytes: Uint8Array): Promise<Uint8Array> {
  if (opts.guestDecompress) return bytes;
  const started = performance.now();
  const result = await decompressBzImagePayload(bytes);
  if ("reason" in result) {
    if (result.reason !== "not a bzImage") debug(`bzImage left to its own decompressor: ${result.reason}`);
    return bytes;
  }
  debug(
    `bzImage payload (${result.format}) decompressed on the host in ${
      (performance.now() - started).toFixed(0)
    } ms: ${result.elf.length} bytes of ELF vmlinux`,
  );
  return result.elf;
}

/** Boots a Linux kernel the way the x86 32-bit boot protocol describes, on the PC platform. */
async function bootLinux(
  opts: LaunchOptions,
  session: LaunchSession,
  backends: LaunchBackends,
  cmdline: string,
  kernelBytes: Uint8Array,
  initrd: Uint8Array | undefined,
): Promise<BootResult> {
  const kernelPath = opts.boot.path;
  const machine = new Machine({
    memBytes: opts.memBytes,
    clock: opts.deterministic ? "deterministic" : "host",
    // A network peer answers in wall-clock time: a deterministic guest with a link idles in it too.
    idleInHostTime: opts.nets.length > 0,
    jit: !opts.noJit,
  });
  const kernel = loadKernelImage(machine.mem, kernelBytes, kernelPath);
  const info = writeBootParams(machine.mem, kernel, {
    style: "native",
    cmdline,
    initrd,
    initrdName: opts.initrdPath,
    acpiRsdpPhysAddr: ACPI_RSDP_PHYS_ADDR,
  });
  writeBootGdt(machine.mem);
  const cpu = machine.cpu;
  cpu.enterProtectedFlat(kernel.entryPhysAddr, BOOT_CS, BOOT_DS);
  cpu.st[ST_GDT_BASE] = BOOT_GDT_PHYS_ADDR;
  cpu.st[ST_GDT_LIMIT] = BOOT_GDT_LIMIT;
  cpu.regs[ESI] = info.bootParamsPhysAddr;
  cpu.regs[EBP] = cpu.regs[EDI] = cpu.regs[EBX] = 0;
  debug(
    `${kernel.kind} kernel "${kernelPath}" at 0x${kernel.loadPhysAddr.toString(16)}, entry 0x${
      kernel.entryPhysAddr.toString(16)
    }, boot_params at 0x${info.bootParamsPhysAddr.toString(16)}` +
      (info.initrdSizeBytes
        ? `, initrd ${info.initrdSizeBytes} bytes at 0x${info.initrdPhysAddr.toString(16)}`
        : ""),
  );
  const terminal = session.terminal;
  // Keyboard input goes to the console the kernel uses: the last console= wins, as in Linux.
  const consoles = [...cmdline.matchAll(/(?:^|\s)console=(\S+)/g)].map((m) => m[1]);
  const inputToHvc = consoles.length > 0 && consoles[consoles.length - 1].startsWith("hvc");
  let hvcInput: ((bytes: Uint8Array) => void) | null = null;
  let unwatchResize = () => {};
  const panicWatch = new PanicWatch((reason) => machine.stop("panic", reason));
  // Both consoles (COM1 and hvc0) reach the terminal and are watched for a kernel panic.
  const consoleOutput = (bytes: Uint8Array) => {
    terminal.write(bytes);
    panicWatch.write(bytes);
  };
  const pc: PcPlatform = new PcPlatform(machine, {
    serial: { write: consoleOutput },
    startTimeMs: opts.rtcBaseMs,
    onReset: () => machine.stop("reboot", "the guest reset the machine"),
  });
  const devices = await attachVirtioDevices(machine, pc.pic, opts, backends, {
    write: consoleOutput,
    onInput: (cb) => hvcInput = cb,
    size: () => terminal.size(),
    onResize: (cb) => unwatchResize = terminal.onResize(cb),
  });
  // ACPI last: the DSDT's _PRT names the INTx lines the devices were just given.
  const acpi = writeAcpiTables(machine.mem, {
    reset: { port: 0xCF9, value: 0x06 }, // the PIIX reset control register the host bridge decodes
    pciHostBridge: {
      memWindowBase: DEFAULT_BAR_BASE,
      memWindowEnd: 0xFEC0_0000,
      routes: pciIrqRoutes(devices.bridge),
    },
  });
  debug(`ACPI tables at 0x${acpi.basePhysAddr.toString(16)}, RSDP at 0x${acpi.rsdpPhysAddr.toString(16)}`);
  session.attach(
    machine,
    (bytes) => {
      if (inputToHvc && hvcInput !== null) hvcInput(bytes);
      else pc.uart.receive(bytes);
    },
    () =>
      `${machine.describe()}\n${pc.pic.describe()}\n${pc.uart.describe()}` +
      (opts.nets.length > 0 ? `\n${devices.describe()}` : ""),
  );
  const started = performance.now();
  const trace = startTrace(machine, opts);
  try {
    return { result: await machine.run(), exitStatus: pc.debugPorts.exitStatus };
  } finally {
    trace?.close();
    session.detach();
    unwatchResize();
    await devices.close();
    const seconds = (performance.now() - started) / 1000;
    const n = machine.cpu.instructionsRetired();
    debug(`guest ran ${n} instructions in ${seconds.toFixed(1)} s (${(n / seconds / 1e6).toFixed(1)} MIPS)`);
    debug(machine.cpu.jit.describe());
  }
}

/** Each occupied slot's INTA# and the 8259 line it drives, for the DSDT's _PRT. */
function pciIrqRoutes(bridge: PciHostBridge): PciIrqRoute[] {
  const routes: PciIrqRoute[] = [];
  for (let slot = 1; slot < 32; slot++) {
    const irq = bridge.slot(slot)?.irqLine;
    if (irq !== null && irq !== undefined) routes.push({ slot, pin: 0, irq });
  }
  return routes;
}

async function launchFirmware(opts: LaunchOptions, path: string): Promise<number> {
  const image = checkFirmwareImage(await readFileOrFail(path, "firmware"), path);
  const machine = new Machine({
    memBytes: opts.memBytes,
    clock: opts.deterministic ? "deterministic" : "host",
    jit: !opts.noJit,
  });
  const { rom } = image;
  if (image.lowPhysAddr + rom.length <= machine.mem.sizeBytes) {
    machine.mem.u8.set(rom, image.lowPhysAddr);
    machine.cpu.protectRom(image.lowPhysAddr, rom.length);
  } else {
    throw new LaunchError(`Cannot run firmware "${path}": it needs at least 1 MiB of memory`);
  }
  machine.mmio.register(image.highPhysAddr, rom.length, "firmware", {
    read(offset, size) {
      let v = 0;
      for (let i = 0; i < size; i++) v |= rom[offset + i] << (i * 8);
      return v >>> 0;
    },
    write() {},
  });
  const session = new LaunchSession();
  const terminal = session.terminal;
  const pc: PcPlatform = new PcPlatform(machine, {
    serial: terminal,
    startTimeMs: opts.rtcBaseMs,
    onReset: () => machine.stop("reboot", "the guest reset the machine"),
    powerOn: true,
  });
  session.attach(
    machine,
    (bytes) => pc.uart.receive(bytes),
    () => `${machine.describe()}\n${pc.pic.describe()}\n${pc.uart.describe()}`,
  );
  machine.cpu.reset();
  debug(
    `firmware "${path}" (${rom.length / 1024} KiB) at 0x${image.lowPhysAddr.toString(16)} and 0x${
      image.highPhysAddr.toString(16)
    }`,
  );
  const trace = startTrace(machine, opts);
  session.start();
  let result: RunResult;
  try {
    result = await machine.run();
  } finally {
    trace?.close();
    session.detach();
    session.finish();
  }
  return session.exitCodeFor(result);
}
