/**
 * The Launcher's command line: lguest's `lguest [options] <mem> <kernel> [kernel args...]`, plus our
 * socket networking, firmware mode and determinism switches. Pure: it parses strings and never opens
 * a file (opening the kernel, disks and sockets is the Launcher's job), so every check here is about
 * spelling; a file that does not exist is reported when it is opened.
 */

import { LaunchError } from "../support/errors.ts";
import type { HostForward } from "../backends/user_net.ts";

/** A `--block=FILE[,ro]` disk: one virtio-blk device each, in command-line order. */
export interface BlockOption {
  path: string;
  readOnly: boolean;
  /** Writes go to a temporary copy-on-write layer; FILE is never modified (`,snapshot`, `--snapshot`). */
  snapshot?: boolean;
  /** Writes go to this persistent copy-on-write overlay file; FILE is never modified. */
  overlay?: string;
}

/** A `--share=HOSTDIR[,tag=NAME][,ro]` folder: one virtio-9p device each, in order. */
export interface ShareOption {
  path: string;
  /** The mount tag the guest names: `mount -t 9p -o trans=virtio TAG /mnt`. */
  tag: string;
  readOnly: boolean;
}

/**
 * A `--net=listen:...`, `--net=connect:...` or `--net=user...` network: one virtio-net device each,
 * in order.
 */
export interface NetOption {
  mode: "listen" | "connect" | "user";
  /** Host name or address; for `listen` without a host, the loopback address 127.0.0.1 ("" for user). */
  host: string;
  /** The socket link's port (0 for user). */
  port: number;
  /** The guest's MAC address, six bytes; absent means "let the device choose". */
  mac?: Uint8Array;
  /** `pcap=FILE`: capture the link's frames, both ways, in a pcap file. */
  pcap?: string;
  /** `hostfwd=` rules of a user network, in order. */
  hostForwards?: HostForward[];
  /** `restrict=on`: a user network makes no outbound connection. */
  restrict?: boolean;
}

/** What the Guest boots: a Linux kernel (bzImage or ELF vmlinux) or a raw firmware ROM. */
export type BootSource =
  | { kind: "kernel"; path: string; cmdline: string }
  | { kind: "firmware"; path: string };

/** Everything the Launcher needs to start a Guest, as the user asked for it. */
export interface LaunchOptions {
  verbose: boolean;
  /** Guest RAM in bytes: a whole number of MiB. */
  memBytes: number;
  boot: BootSource;
  initrdPath?: string;
  blocks: BlockOption[];
  nets: NetOption[];
  shares: ShareOption[];
  rng: boolean;
  /** Fixed clock and entropy so two runs of the same Guest do the same thing. */
  deterministic: boolean;
  /**
   * `--rtc-base`: the RTC's wall-clock time at power-on, ms since the Unix epoch (UTC); absent means
   * the host's time, or a fixed date with --deterministic (rtc_cmos.ts).
   */
  rtcBaseMs?: number;
  /** `--no-jit`: run guest code in the interpreter only (also LGUEST_NO_JIT=1). */
  noJit: boolean;
  /** On a Guest reboot, exit instead of starting the Guest again. */
  noReboot: boolean;
  /** Leave a bzImage's payload to the kernel's own decompressor instead of decompressing it on the host. */
  guestDecompress: boolean;
  /** `--lguest` / `--pc`: boot the kernel that way whatever it looks like (default: detect). */
  bootAs?: "lguest" | "pc";
  /** `--trace=FILE`: write one line per executed instruction there. */
  tracePath?: string;
  /** Non-fatal remarks about the command line; main.ts prints them before launching. */
  warnings: string[];
  /** The arguments as given, so a Guest reboot can start over with the same ones. */
  argv: string[];
}

const MiB = 1024 * 1024;
/** Smallest RAM a Linux Guest gets: below this no kernel we know of boots. */
export const MIN_KERNEL_MEM_BYTES = 16 * MiB;
/** Smallest RAM for `--firmware`: the ROM itself lives above RAM, so 1 MiB is plenty for real mode. */
export const MIN_FIRMWARE_MEM_BYTES = 1 * MiB;
/** Default RAM for `--firmware` when `<mem>` is not given. */
export const DEFAULT_FIRMWARE_MEM_BYTES = 16 * MiB;
/** Largest RAM: a 32-bit Guest also needs address space for device memory above RAM. */
export const MAX_MEM_BYTES = 2048 * MiB;

/** The `--help` text, grouped like a manual page (kvmtool style). */
export const USAGE = `Usage: lguest [options] <mem> <kernel> [kernel args...]
       lguest [options] --firmware=FILE [<mem>]

Runs a 32-bit x86 Linux Guest in an interpreter, the way Linux's lguest launcher did.
Launcher options may come before <mem> or after <kernel> (as lguest's getopt allowed): words after
<kernel> that are launcher options are taken as such, the others form the kernel command line in
order; after a "--" everything goes to the kernel.

Basic:
  <mem>                    Guest RAM: megabytes (256), or with a unit (256m, 512M, 1g); 16m to 2g
                           (Debian's 686 kernel loads at 16 MiB and needs 33m to load; the
                           reference guest runs in 40m)
  <kernel>                 a 32-bit bzImage (like /boot/vmlinuz-*-686) or a 32-bit ELF vmlinux;
                           64-bit kernels are refused
  --initrd=FILE            load FILE as the initial ramdisk (initramfs)
  --firmware=FILE          run a 64 or 128 KiB ROM from the reset vector instead of a kernel;
                           <mem> is then optional (default 16m)

Storage:
  --block=FILE[,ro|,rw|,snapshot|,overlay=OVERLAY]
                           add a virtio disk backed by FILE (repeatable; ",ro" makes it read-only;
                           a comma in FILE is written ",,"). The size should be a multiple of 512
                           bytes (a partial last sector is left out, with a warning). A read-write
                           image is locked: a second writer is refused, ",ro" users may share it.
                           ",snapshot": writes go to a temporary layer, FILE is never modified;
                           ",overlay=OVERLAY": writes go to a persistent copy-on-write file
                           (created if missing; deno task overlay commit|discard OVERLAY)
  --snapshot               ",snapshot" for every disk that is not ",ro"

Networking:
  --net=listen:[HOST:]PORT[,mac=XX:XX:XX:XX:XX:XX]
                           add a virtio network card that waits for peers on HOST:PORT, up to
                           16 at once on one switched Ethernet (HOST: 127.0.0.1; repeatable)
  --net=connect:HOST:PORT[,mac=XX:XX:XX:XX:XX:XX]
                           add a virtio network card that connects to a peer listening on HOST:PORT
  --net=user[,hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT]...[,restrict=on][,mac=...]
                           add a virtio network card on a built-in router (no root): DHCP gives the
                           guest 10.0.2.15, the gateway 10.0.2.2 is the host's 127.0.0.1, DNS is
                           10.0.2.3; hostfwd forwards a host port (HOSTADDR: 127.0.0.1) to the
                           guest; restrict=on makes no outbound connection
  --net=...,pcap=FILE      also capture the card's frames, both ways, in a pcap file (any --net)
  --tunnet=...             not supported: TAP devices need root; use --net instead

Host folders:
  --share=HOSTDIR[,tag=NAME][,ro]
                           share a host folder over virtio-9p (repeatable); in the Guest:
                           mount -t 9p -o trans=virtio NAME /mnt (NAME defaults to "share").
                           The Guest cannot reach outside HOSTDIR; ",ro" refuses every change

Other devices:
  --rng                    add a virtio random-number generator fed from the host

Running:
  --deterministic          fixed clock and entropy: the same inputs give the same run
                           (time counts instructions; the RTC starts at --rtc-base or at
                           2026-01-01T00:00:00Z; --rng gives a fixed-seed stream; block I/O
                           completes at the end of the slice that asked for it; console input
                           and --net frames still arrive in host time)
  --rtc-base=DATE          the RTC's date and time at power-on, UTC: 2026-01-01 or
                           2026-01-01T12:00:00 (like QEMU's -rtc base=); default: the host's now
  --no-jit                 run guest code in the interpreter only (no translation of hot code;
                           also LGUEST_NO_JIT=1), for comparison and bug reports
  --no-reboot              exit when the Guest reboots instead of starting it again
  --guest-decompress       let a bzImage decompress itself in the Guest (slow, but with its KASLR)
                           instead of decompressing its gzip or xz payload on the host
  --lguest                 boot the kernel as an lguest paravirt Guest (ring 1, hypercalls) even if
                           it lacks lguest's entry (by default a kernel with it boots that way)
  --pc                     boot the kernel as on a PC even if it has lguest's entry
  --verbose                log what the Launcher and devices do to stderr (and how the kernel boots)
  --trace=FILE             write every instruction (CS:EIP, disassembly, registers before it) to
                           FILE, for bug reports; very slow (one instruction per CPU slice)

Information:
  -h, --help               show this help
  --version                show the lguest.ts version

The console:
  The terminal is raw while the Guest runs (^C, ^Z reach the Guest) and restored on exit. Three
  Ctrl-C in a row, each within a second of the one before, quit from the host side (exit code 4).
  On a terminal the kernel command line gets lguest_tty=COLSxROWS (the reference guest sizes its
  serial console with it; hvc0 follows resizes). When stdin ends (a pipe, </dev/null) the Guest
  gets ^D. kill -USR2 <pid> prints the CPU, clock, 8259 and UART state to stderr.

The reference guest (deno task guest, deno task start):
  lguest_run="COMMAND"     a kernel argument: run COMMAND instead of a shell, then power off; the
                           Launcher's exit code is COMMAND's exit status (as with docker run)
  In its shell, poweroff ends the Launcher (exit code 0) and reboot starts the Guest again.

Exit codes:
  0    the Guest powered off (or rebooted, with --no-reboot)
  1    the Guest crashed (triple fault, kernel panic, unsupported CPU feature)
  2    a bad command line or a launch error (one line on stderr)
  3    the Guest halted for good with interrupts disabled
  4    quit with three Ctrl-C
  129, 130, 143
       SIGHUP, SIGINT, SIGTERM to the Launcher (128 + the signal): the terminal is restored and
       disk files are flushed and closed first
  N    with lguest_run=, the exit status of COMMAND

Examples:
  lguest --initrd=initramfs.cpio.gz 256m vmlinuz console=ttyS0
  lguest --initrd=initramfs.cpio.gz 256m vmlinuz console=ttyS0 lguest_run="uname -a"
  lguest --initrd=initramfs.cpio.gz 256m vmlinuz console=ttyS0 --block=disk.img
                           (then "mount /dev/vda /mnt" in the Guest's shell)
`;

const FLAGS = new Set([
  "--verbose",
  "--rng",
  "--deterministic",
  "--no-reboot",
  "--guest-decompress",
  "--lguest",
  "--pc",
  "--snapshot",
  "--no-jit",
]);
const VALUED = new Set(["--block", "--initrd", "--net", "--firmware", "--share", "--rtc-base", "--trace"]);
const VALUE_HINT: Record<string, string> = {
  "--block": "--block=FILE[,ro]",
  "--initrd": "--initrd=FILE",
  "--net": "--net=listen:[HOST:]PORT, --net=connect:HOST:PORT or --net=user",
  "--firmware": "--firmware=FILE",
  "--share": "--share=HOSTDIR[,tag=NAME][,ro]",
  "--rtc-base": "--rtc-base=YYYY-MM-DD[THH:MM:SS]",
  "--trace": "--trace=FILE",
};
/** lguest options we recognise but refuse, with their value or without, and why. */
const UNSUPPORTED: Record<string, string> = {
  "--tunnet":
    "TAP networking needs root; use --net=listen:PORT and --net=connect:HOST:PORT instead (socket networking)",
  "--username": "lguest.ts never needs root, so run it as that user instead",
  "--chroot": "confine lguest.ts with Deno's permission flags (--allow-read=DIR) instead",
};

/**
 * Parses the Launcher's arguments (without the program name). Throws `LaunchError` with a one-line
 * message for any bad input.
 */
export function parseCommandLine(
  argv: string[],
): LaunchOptions | { help: true } | { version: true } {
  const opts: LaunchOptions = {
    verbose: false,
    memBytes: 0,
    boot: { kind: "kernel", path: "", cmdline: "" },
    blocks: [],
    nets: [],
    shares: [],
    rng: false,
    deterministic: false,
    noJit: false,
    noReboot: false,
    guestDecompress: false,
    warnings: [],
    argv: [...argv],
  };
  let firmwarePath: string | undefined;
  let memText: string | undefined;
  let kernelPath: string | undefined;
  let kernelArgs: string[] = [];
  let optionsDone = false;
  let snapshotAll = false;

  // Like lguest's GNU getopt_long, Launcher options are recognised anywhere, also after <kernel>
  // (lguest's own documentation writes `lguest 64m vmlinux --block=rootfile root=/dev/vda`); other
  // arguments after <kernel> go to the kernel in order, and everything after a "--" goes there too.
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (kernelPath !== undefined) {
      const name = arg.split("=", 1)[0];
      const ours = !optionsDone && (FLAGS.has(name) || VALUED.has(name) || name in UNSUPPORTED);
      if (arg === "--" && !optionsDone) {
        optionsDone = true;
        continue;
      }
      if (!ours) {
        kernelArgs.push(arg);
        continue;
      }
    } else if (optionsDone || !arg.startsWith("-") || arg === "-") {
      if (memText === undefined) {
        memText = arg;
      } else if (firmwarePath !== undefined) {
        throw new LaunchError(`Unexpected argument "${arg}": --firmware takes no kernel image or arguments`);
      } else {
        kernelPath = arg;
        kernelArgs = [];
        optionsDone = false;
      }
      continue;
    }
    if (arg === "--") {
      optionsDone = true;
      continue;
    }
    if (arg === "-h" || arg === "--help") return { help: true };
    if (arg === "--version") return { version: true };

    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (FLAGS.has(name)) {
      if (eq !== -1) throw new LaunchError(`Option "${name}" takes no value, got "${arg}"`);
      if (name === "--verbose") opts.verbose = true;
      else if (name === "--rng") opts.rng = true;
      else if (name === "--deterministic") opts.deterministic = true;
      else if (name === "--guest-decompress") opts.guestDecompress = true;
      else if (name === "--snapshot") snapshotAll = true;
      else if (name === "--no-jit") opts.noJit = true;
      else if (name === "--lguest" || name === "--pc") {
        const as = name === "--lguest" ? "lguest" : "pc";
        if (opts.bootAs !== undefined && opts.bootAs !== as) {
          throw new LaunchError(`Options "--lguest" and "--pc" contradict each other: give one of them`);
        }
        opts.bootAs = as;
      } else opts.noReboot = true;
      continue;
    }
    if (name in UNSUPPORTED) throw new LaunchError(`Option "${name}" is not supported: ${UNSUPPORTED[name]}`);
    if (!VALUED.has(name)) {
      throw new LaunchError(`Unknown option "${name}": see "lguest --help"`);
    }
    let value: string;
    if (eq !== -1) {
      value = arg.slice(eq + 1);
    } else if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) {
      value = argv[++i]; // getopt_long also takes "--block FILE"
    } else {
      throw new LaunchError(`Option "${name}" needs a value: ${VALUE_HINT[name]}`);
    }
    if (value === "") throw new LaunchError(`Option "${name}" needs a value: ${VALUE_HINT[name]}`);

    switch (name) {
      case "--block":
        opts.blocks.push(parseBlock(value));
        break;
      case "--initrd":
        if (opts.initrdPath !== undefined) throw new LaunchError(`Option "--initrd" given twice`);
        opts.initrdPath = value;
        break;
      case "--net":
        opts.nets.push(parseNet(value));
        break;
      case "--share": {
        const share = parseShare(value, opts.shares.length);
        if (opts.shares.some((s) => s.tag === share.tag)) {
          throw new LaunchError(`Option "--share=${value}": mount tag "${share.tag}" is already used`);
        }
        opts.shares.push(share);
        break;
      }
      case "--firmware":
        if (firmwarePath !== undefined) throw new LaunchError(`Option "--firmware" given twice`);
        firmwarePath = value;
        break;
      case "--rtc-base":
        opts.rtcBaseMs = parseRtcBase(value);
        break;
      case "--trace":
        if (opts.tracePath !== undefined) throw new LaunchError(`Option "--trace" given twice`);
        opts.tracePath = value;
        break;
    }
  }

  if (snapshotAll) {
    // QEMU's -snapshot: every writable disk gets a temporary layer (a ,ro disk stays read-only).
    for (const b of opts.blocks) {
      if (b.overlay !== undefined) {
        throw new LaunchError(`Option "--snapshot" cannot be combined with overlay= (disk "${b.path}")`);
      }
      if (!b.readOnly) b.snapshot = true;
    }
  }
  if (firmwarePath !== undefined) {
    if (opts.initrdPath !== undefined) {
      throw new LaunchError(`Option "--initrd" needs a kernel: it cannot be used with --firmware`);
    }
    if (opts.bootAs !== undefined) {
      throw new LaunchError(`Option "--${opts.bootAs}" needs a kernel: it cannot be used with --firmware`);
    }
    opts.memBytes = memText === undefined
      ? DEFAULT_FIRMWARE_MEM_BYTES
      : parseMemSize(memText, MIN_FIRMWARE_MEM_BYTES);
    opts.boot = { kind: "firmware", path: firmwarePath };
    return opts;
  }
  if (memText === undefined) {
    throw new LaunchError(
      `Missing <mem> and <kernel> arguments: usage: lguest [options] <mem> <kernel> [args...]`,
    );
  }
  opts.memBytes = parseMemSize(memText, MIN_KERNEL_MEM_BYTES);
  if (kernelPath === undefined) {
    throw new LaunchError(`Missing <kernel> argument after memory size "${memText}"`);
  }
  opts.boot = { kind: "kernel", path: kernelPath, cmdline: kernelArgs.join(" ") };
  return opts;
}

/**
 * Parses `<mem>`: plain megabytes like lguest (`256`), or with a unit (`256m`, `512M`, `1g`). Checks
 * the range [minBytes, 2 GiB].
 */
export function parseMemSize(text: string, minBytes = MIN_KERNEL_MEM_BYTES): number {
  const m = /^([0-9]+)([mMgG]?)$/.exec(text);
  if (!m) {
    throw new LaunchError(`Invalid memory size "${text}": expected megabytes like 256, 256m or 1g`);
  }
  const unit = m[2].toLowerCase() === "g" ? 1024 * MiB : MiB;
  const bytes = Number(m[1]) * unit;
  if (bytes < minBytes) {
    throw new LaunchError(`Memory size "${text}" is too small: at least ${minBytes / MiB}m is needed`);
  }
  if (bytes > MAX_MEM_BYTES) {
    throw new LaunchError(`Memory size "${text}" is too large: at most 2g (2048m) is supported`);
  }
  return bytes;
}

/** Parses `--rtc-base`: an ISO 8601 UTC date, optionally with a time (seconds optional), years 1970-2099. */
export function parseRtcBase(text: string): number {
  const m = /^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?)?Z?$/.exec(text);
  const bad = () =>
    new LaunchError(
      `Invalid --rtc-base "${text}": expected a UTC date like 2026-01-01 or 2026-01-01T12:00:00`,
    );
  if (!m) throw bad();
  const [y, mo, d, h, mi, s] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0));
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  if (
    y < 1970 || y > 2099 || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 ||
    s > 59
  ) throw bad();
  return ms;
}

/**
 * Parses `FILE[,OPTION]...`. Every comma starts an option, as in QEMU's `-drive`; a comma that is
 * part of the file name is written twice (`a,,b.img` is the file `a,b.img`), QEMU's escape too.
 */
export function parseBlock(value: string): BlockOption {
  const parts = splitOptions(value);
  const path = parts[0];
  if (path === "") throw new LaunchError(`Option "--block" needs a file name: --block=FILE[,ro]`);
  let mode: "ro" | "rw" | undefined;
  let snapshot = false;
  let overlay: string | undefined;
  for (const opt of parts.slice(1)) {
    if (opt === "ro" || opt === "rw") {
      if (mode !== undefined && mode !== opt) {
        throw new LaunchError(`Invalid disk "--block=${value}": both ro and rw given`);
      }
      mode = opt;
    } else if (opt === "snapshot") {
      snapshot = true;
    } else if (opt.startsWith("overlay=") && opt.length > 8) {
      overlay = opt.slice(8);
    } else {
      throw new LaunchError(
        `Invalid disk option "${opt}" in "--block=${value}": expected ro, rw, snapshot or overlay=FILE` +
          ` (a comma in a file name is written ",,")`,
      );
    }
  }
  if (mode === "ro" && (snapshot || overlay !== undefined)) {
    throw new LaunchError(`Invalid disk "--block=${value}": ro cannot be combined with snapshot or overlay=`);
  }
  if (snapshot && overlay !== undefined) {
    throw new LaunchError(`Invalid disk "--block=${value}": snapshot and overlay= exclude each other`);
  }
  const block: BlockOption = { path, readOnly: mode === "ro" };
  if (snapshot) block.snapshot = true;
  if (overlay !== undefined) block.overlay = overlay;
  return block;
}

/**
 * Parses `HOSTDIR[,tag=NAME][,ro]`. The first share's tag defaults to `share`, later ones to
 * `share1`, `share2`, ... (a tag is what `mount -t 9p -o trans=virtio TAG /mnt` names).
 */
export function parseShare(value: string, index = 0): ShareOption {
  const parts = splitOptions(value);
  const path = parts[0];
  if (path === "") throw new LaunchError(`Option "--share" needs a folder: --share=HOSTDIR[,tag=NAME][,ro]`);
  let tag: string | undefined;
  let readOnly = false;
  for (const opt of parts.slice(1)) {
    if (opt === "ro") readOnly = true;
    else if (opt === "rw") readOnly = false;
    else if (opt.startsWith("tag=")) {
      tag = opt.slice(4);
      if (!/^[A-Za-z0-9_.-]{1,32}$/.test(tag)) {
        throw new LaunchError(
          `Invalid mount tag "${tag}" in "--share=${value}": 1 to 32 letters, digits, "_", "." or "-"`,
        );
      }
    } else {
      throw new LaunchError(
        `Invalid share option "${opt}" in "--share=${value}": expected tag=NAME, ro or rw`,
      );
    }
  }
  return { path, tag: tag ?? (index === 0 ? "share" : `share${index}`), readOnly };
}

/** Splits at single commas; ",," stands for a comma inside a part. */
function splitOptions(value: string): string[] {
  const parts: string[] = [];
  let cur = "";
  for (let i = 0; i < value.length; i++) {
    if (value[i] !== ",") cur += value[i];
    else if (value[i + 1] === ",") cur += value[++i];
    else {
      parts.push(cur);
      cur = "";
    }
  }
  parts.push(cur);
  return parts;
}

function parseNet(value: string): NetOption {
  const [target, ...extras] = value.split(",");
  const isUser = target === "user";
  const known = isUser ? "mac=, pcap=, hostfwd= and restrict= are known" : "mac= and pcap= are known";
  let mac: Uint8Array | undefined;
  let pcap: string | undefined;
  let restrict: boolean | undefined;
  const hostForwards: HostForward[] = [];
  for (const extra of extras) {
    const eq = extra.indexOf("=");
    const key = eq === -1 ? extra : extra.slice(0, eq);
    const v = extra.slice(eq + 1);
    if (key === "mac") {
      if (mac) throw new LaunchError(`Invalid network "${value}": mac= given twice`);
      mac = parseMac(v);
    } else if (key === "pcap" && eq !== -1) {
      if (pcap !== undefined) throw new LaunchError(`Invalid network "${value}": pcap= given twice`);
      if (v === "") throw new LaunchError(`Invalid network "${value}": pcap= needs a file name`);
      pcap = v;
    } else if (isUser && key === "hostfwd" && eq !== -1) {
      hostForwards.push(parseHostForward(v, value));
    } else if (isUser && key === "restrict" && eq !== -1) {
      if (!/^(on|off|yes|no)$/.test(v)) {
        throw new LaunchError(
          `Invalid network option "${extra}" in "--net=${value}": expected restrict=on or off`,
        );
      }
      restrict = v === "on" || v === "yes";
    } else {
      throw new LaunchError(`Invalid network option "${extra}" in "--net=${value}": only ${known}`);
    }
  }
  const extrasOf = (net: NetOption): NetOption => {
    if (mac) net.mac = mac;
    if (pcap !== undefined) net.pcap = pcap;
    return net;
  };
  if (isUser) {
    const net: NetOption = { mode: "user", host: "", port: 0, hostForwards, restrict: restrict ?? false };
    const seen = new Set<string>();
    for (const f of hostForwards) {
      const id = `${f.protocol}:${f.hostAddr}:${f.hostPort}`;
      if (seen.has(id)) throw new LaunchError(`Invalid network "${value}": hostfwd=${id} given twice`);
      seen.add(id);
    }
    return extrasOf(net);
  }
  const colon = target.indexOf(":");
  const mode = colon === -1 ? target : target.slice(0, colon);
  if (mode !== "listen" && mode !== "connect") {
    throw new LaunchError(
      `Invalid network "${value}": expected listen:[HOST:]PORT, connect:HOST:PORT or user`,
    );
  }
  const { host, portText } = splitHostPort(colon === -1 ? "" : target.slice(colon + 1));
  if (host === undefined && mode === "connect") {
    throw new LaunchError(`Invalid network "${value}": connect needs a host, as in connect:HOST:PORT`);
  }
  if (host === "") throw new LaunchError(`Invalid network "${value}": empty host name`);
  if (!/^[0-9]+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    throw new LaunchError(
      `Invalid port "${portText}" in "--net=${value}": expected a number from 1 to 65535`,
    );
  }
  return extrasOf({ mode, host: host ?? "127.0.0.1", port: Number(portText) });
}

/** `tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`, QEMU's hostfwd= (HOSTADDR defaults to 127.0.0.1). */
function parseHostForward(text: string, value: string): HostForward {
  const m = /^(tcp|udp):(\[[^\]]*\]|[^:]*):(\d{1,5})-([^:]*):(\d{1,5})$/.exec(text);
  const bad = (why: string) => new LaunchError(`Invalid hostfwd "${text}" in "--net=${value}": ${why}`);
  if (m === null) throw bad("expected tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT");
  const hostPort = Number(m[3]);
  const guestPort = Number(m[5]);
  if (hostPort < 1 || hostPort > 65535 || guestPort < 1 || guestPort > 65535) {
    throw bad("ports are numbers from 1 to 65535");
  }
  if (m[4] !== "" && m[4] !== "10.0.2.15") throw bad("the guest's address is 10.0.2.15");
  const hostAddr = m[2] === "" ? "127.0.0.1" : m[2].replace(/^\[(.*)\]$/, "$1");
  return { protocol: m[1] as "tcp" | "udp", hostAddr, hostPort, guestPort };
}

/** Splits `HOST:PORT`, `[V6ADDR]:PORT` or a bare `PORT` (host undefined). */
function splitHostPort(text: string): { host: string | undefined; portText: string } {
  if (text.startsWith("[")) {
    const close = text.indexOf("]:");
    if (close === -1) return { host: "", portText: "" };
    return { host: text.slice(1, close), portText: text.slice(close + 2) };
  }
  const colon = text.lastIndexOf(":");
  if (colon === -1) return { host: undefined, portText: text };
  return { host: text.slice(0, colon), portText: text.slice(colon + 1) };
}

/** Parses a unicast MAC address written as six colon-separated hex pairs. */
export function parseMac(text: string): Uint8Array {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) {
    throw new LaunchError(`Invalid MAC address "${text}": expected six hex pairs like 52:54:00:12:34:56`);
  }
  const mac = Uint8Array.from(text.split(":"), (h) => parseInt(h, 16));
  if (mac[0] & 1) {
    throw new LaunchError(
      `Invalid MAC address "${text}": a network card needs a unicast address (even first byte)`,
    );
  }
  return mac;
}
