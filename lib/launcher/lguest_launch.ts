/**
 * Booting a kernel as an lguest Guest, as Linux's `lguest` launcher did (LGUEST.md "How it started a
 * guest", LGUEST-ABI section 3): which kernels boot that way (`chooseBootStyle`), then a Machine with
 * no PC chips at all, only the PCI host bridge and the virtio-pci devices, lguest's zero page at 0
 * and the host side of the ABI (lib/lguest/lguest_host.ts) in the CPU's delivery hook.
 */
import { Machine } from "../machine/machine.ts";
import { LguestHost } from "../lguest/lguest_host.ts";
import { EXIT_STATUS_PORT } from "../pc/debug_ports.ts";
import { detectLguestKernel } from "../lguest/lguest_kernel.ts";
import { debug, warn } from "../support/log.ts";
import { writeBootParams } from "./boot_params.ts";
import { decompressBzImagePayload } from "./bzimage_payload.ts";
import { loadKernelImage } from "./kernel_image.ts";
import type { BootResult, LaunchSession } from "./launch_session.ts";
import type { LaunchOptions } from "./options.ts";
import { PanicWatch } from "./panic_watch.ts";
import { startTrace } from "./start_trace.ts";
import { attachVirtioDevices, type LaunchBackends } from "./virtio_devices.ts";

/** How a kernel boots: as a PC, or as an lguest Guest with or without PAE page tables. */
export interface BootStyleChoice {
  lguest: boolean;
  pae: boolean;
}

/**
 * Picks the boot style: `--pc`/`--lguest` force it; otherwise a kernel containing lguest's Guest
 * entry boots as an lguest Guest. `kernelBytes` is what will be loaded; when that is still a
 * bzImage (`--guest-decompress`), its payload is decompressed here only to be looked at.
 */
export async function chooseBootStyle(
  opts: LaunchOptions,
  fileBytes: Uint8Array,
  kernelBytes: Uint8Array,
): Promise<BootStyleChoice> {
  const path = opts.boot.kind === "kernel" ? opts.boot.path : "";
  if (opts.bootAs === "pc") {
    debug(`booting "${path}" as a PC: --pc`);
    return { lguest: false, pae: false };
  }
  let elf = kernelBytes;
  if (elf === fileBytes) {
    const decoded = await decompressBzImagePayload(fileBytes);
    if (!("reason" in decoded)) elf = decoded.elf;
  }
  const info = detectLguestKernel(elf);
  if (opts.bootAs === "lguest") {
    debug(
      `booting "${path}" as an lguest Guest (${info.pae ? "PAE" : "non-PAE"} page tables): --lguest` +
        (info.lguest ? `; ${info.why}` : `, although ${info.why}`),
    );
    return { lguest: true, pae: info.pae };
  }
  if (info.lguest) {
    debug(`booting "${path}" as an lguest Guest (${info.pae ? "PAE" : "non-PAE"} page tables): ${info.why}`);
  } else debug(`booting "${path}" as a PC: ${info.why}`);
  return { lguest: info.lguest, pae: info.pae };
}

/**
 * Boots `kernelBytes` as an lguest Guest in `session` and runs it until it stops. Each call is a
 * fresh start (lguest's restart_guest re-executed the launcher): new RAM, new Devices, the same
 * Backends (the files and links stay open across the restart).
 */
export async function bootLguest(
  opts: LaunchOptions,
  session: LaunchSession,
  backends: LaunchBackends,
  cmdline: string,
  kernelBytes: Uint8Array,
  initrd: Uint8Array | undefined,
  pae: boolean,
): Promise<BootResult> {
  const kernelPath = opts.boot.path;
  if (/(?:^|\s)console=ttyS/.test(cmdline)) {
    warn("an lguest Guest has no serial port: its console is hvc0 (console=hvc0), not ttyS0");
  }
  const machine = new Machine({
    memBytes: opts.memBytes,
    clock: opts.deterministic ? "deterministic" : "host",
    idleInHostTime: opts.nets.length > 0,
  });
  const kernel = loadKernelImage(machine.mem, kernelBytes, kernelPath);
  const info = writeBootParams(machine.mem, kernel, {
    style: "lguest",
    cmdline,
    initrd,
    initrdName: opts.initrdPath,
  });
  const host = new LguestHost(machine, { pae, startTimeMs: opts.deterministic ? 0 : undefined });
  host.start(kernel.entryPhysAddr);
  debug(
    `${kernel.kind} kernel "${kernelPath}" entered at 0x${kernel.entryPhysAddr.toString(16)} in ring 1` +
      (info.initrdSizeBytes
        ? `, initrd ${info.initrdSizeBytes} bytes at 0x${info.initrdPhysAddr.toString(16)}`
        : ""),
  );
  // The console is hvc0 (virtio-console): there is no UART, so all input goes there.
  const terminal = session.terminal;
  let hvcInput: ((bytes: Uint8Array) => void) | null = null;
  let unwatchResize = () => {};
  const panicWatch = new PanicWatch((reason) => machine.stop("panic", reason));
  const devices = await attachVirtioDevices(machine, host.irqs, opts, backends, {
    write: (bytes) => {
      terminal.write(bytes);
      panicWatch.write(bytes);
    },
    onInput: (cb) => hvcInput = cb,
    size: () => terminal.size(),
    onResize: (cb) => unwatchResize = terminal.onResize(cb),
  });
  session.attach(
    machine,
    (bytes) => hvcInput?.(bytes),
    () =>
      `${machine.describe()}\n${host.describe()}` + (opts.nets.length > 0 ? `\n${devices.describe()}` : ""),
  );
  // The exit-status register (lguest_run=): the one port beyond PCI that an lguest Guest can write.
  let exitStatus = -1;
  machine.ports.register(EXIT_STATUS_PORT, 1, "exit-status", {
    read: () => 0xFF,
    write: (_offset, _size, value) => {
      exitStatus = value & 0xFF;
      debug(`guest exit status ${exitStatus}`);
    },
  });
  const started = performance.now();
  const trace = startTrace(machine, opts);
  try {
    const result = await machine.run();
    if (result.kind === "poweroff") debug(result.reason);
    return { result, exitStatus };
  } finally {
    trace?.close();
    session.detach();
    unwatchResize();
    await devices.close();
    const seconds = (performance.now() - started) / 1000;
    const n = machine.cpu.instructionsRetired();
    debug(
      `lguest guest ran ${n} instructions in ${seconds.toFixed(1)} s (${
        (n / seconds / 1e6).toFixed(1)
      } MIPS)`,
    );
  }
}
