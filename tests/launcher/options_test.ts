/**
 * Tests for the Launcher's command line (lib/launcher/options.ts): lguest's own invocations still
 * work, our additions parse, and every bad input is a one-line LaunchError naming what was wrong
 * (STYLE rule 9).
 */

import { assert, assertEquals, assertThrows } from "../assert.ts";
import { LaunchError } from "../../lib/support/errors.ts";
import {
  type LaunchOptions,
  parseBlock,
  parseCommandLine,
  parseMac,
  parseMemSize,
  parseShare,
  USAGE,
} from "../../lib/launcher/options.ts";

const MiB = 1024 * 1024;

function parse(...argv: string[]): LaunchOptions {
  const result = parseCommandLine(argv);
  assert(!("help" in result) && !("version" in result), "expected launch options");
  return result as LaunchOptions;
}

function parseError(...argv: string[]): string {
  try {
    parseCommandLine(argv);
  } catch (e) {
    assert(e instanceof LaunchError, `expected a LaunchError, got ${e}`);
    assert(!e.message.includes("\n"), `error is not one line: ${e.message}`);
    return e.message;
  }
  throw new Error(`no error for ${JSON.stringify(argv)}`);
}

Deno.test("parseCommandLine accepts lguest's own invocation: <mem-in-mb> <kernel> [kernel args]", () => {
  const opts = parse("64", "vmlinux", "root=/dev/vda", "console=hvc0");
  assertEquals(opts.memBytes, 64 * MiB);
  assertEquals(opts.boot, { kind: "kernel", path: "vmlinux", cmdline: "root=/dev/vda console=hvc0" });
  assertEquals(opts.blocks, []);
  assertEquals(opts.nets, []);
  assertEquals(
    [opts.verbose, opts.rng, opts.deterministic, opts.noReboot, opts.guestDecompress],
    [false, false, false, false, false],
  );
  assertEquals(opts.initrdPath, undefined);
  assertEquals(opts.warnings, []);
  assertEquals(opts.argv, ["64", "vmlinux", "root=/dev/vda", "console=hvc0"]);
});

Deno.test("parseCommandLine takes every option before <mem>, as lguest's getopt did", () => {
  const opts = parse(
    "--verbose",
    "--block=root.img",
    "--block=data,,1.img,ro",
    "--initrd=initrd.gz",
    "--rng",
    "--deterministic",
    "--no-reboot",
    "--guest-decompress",
    "256m",
    "bzImage",
  );
  assertEquals(opts.blocks, [{ path: "root.img", readOnly: false }, { path: "data,1.img", readOnly: true }]);
  assertEquals(opts.initrdPath, "initrd.gz");
  assertEquals(
    [opts.verbose, opts.rng, opts.deterministic, opts.noReboot, opts.guestDecompress],
    [true, true, true, true, true],
  );
  assertEquals(opts.boot, { kind: "kernel", path: "bzImage", cmdline: "" });
});

Deno.test("parseCommandLine accepts getopt's separate-value form and options between <mem> and <kernel>", () => {
  const opts = parse("--block", "disk.img", "128", "--initrd", "i.gz", "vmlinux", "quiet");
  assertEquals(opts.blocks, [{ path: "disk.img", readOnly: false }]);
  assertEquals(opts.initrdPath, "i.gz");
  assertEquals(opts.memBytes, 128 * MiB);
  assertEquals(opts.boot, { kind: "kernel", path: "vmlinux", cmdline: "quiet" });
});

Deno.test("parseCommandLine recognises Launcher options after the kernel, as lguest's GNU getopt did", () => {
  // lguest's documented "lguest 64m vmlinux --tunnet=... --block=rootfile root=/dev/vda": getopt_long
  // with optstring "v" permutes argv, so --block is an option wherever it stands.
  const opts = parse("64m", "vmlinux", "--block=rootfile", "root=/dev/vda", "--initrd", "init.gz", "quiet");
  assertEquals(opts.boot, { kind: "kernel", path: "vmlinux", cmdline: "root=/dev/vda quiet" });
  assertEquals(opts.blocks, [{ path: "rootfile", readOnly: false }]);
  assertEquals(opts.initrdPath, "init.gz");
  // After "--", everything goes to the kernel, options included.
  const raw = parse("64m", "vmlinux", "a", "--", "--block=x", "b");
  assertEquals(raw.boot, { kind: "kernel", path: "vmlinux", cmdline: "a --block=x b" });
  assertEquals(raw.blocks, []);
});

Deno.test("parseCommandLine treats -- as the end of options", () => {
  const opts = parse("--", "64", "-weird-kernel-name", "a");
  assertEquals(opts.boot, { kind: "kernel", path: "-weird-kernel-name", cmdline: "a" });
});

Deno.test("parseCommandLine returns help and version requests", () => {
  assertEquals(parseCommandLine(["--help"]), { help: true });
  assertEquals(parseCommandLine(["-h"]), { help: true });
  assertEquals(parseCommandLine(["--verbose", "--version"]), { version: true });
  assertEquals(parseCommandLine(["64", "--help", "vmlinux"]), { help: true });
});

Deno.test("parseMemSize reads megabytes, m/M and g/G suffixes within 16m..2g", () => {
  assertEquals(parseMemSize("256"), 256 * MiB);
  assertEquals(parseMemSize("256m"), 256 * MiB);
  assertEquals(parseMemSize("512M"), 512 * MiB);
  assertEquals(parseMemSize("1g"), 1024 * MiB);
  assertEquals(parseMemSize("2G"), 2048 * MiB);
  assertEquals(parseMemSize("16"), 16 * MiB);
});

Deno.test("parseCommandLine rejects bad memory sizes with the expected message", () => {
  assertEquals(
    parseError("12x", "vmlinux"),
    'Invalid memory size "12x": expected megabytes like 256, 256m or 1g',
  );
  assertEquals(
    parseError("vmlinux"),
    'Invalid memory size "vmlinux": expected megabytes like 256, 256m or 1g',
  );
  assertEquals(
    parseError("1.5g", "k"),
    'Invalid memory size "1.5g": expected megabytes like 256, 256m or 1g',
  );
  assertEquals(parseError("15", "k"), 'Memory size "15" is too small: at least 16m is needed');
  assertEquals(parseError("0", "k"), 'Memory size "0" is too small: at least 16m is needed');
  assertEquals(parseError("2049m", "k"), 'Memory size "2049m" is too large: at most 2g (2048m) is supported');
  assertEquals(parseError("3g", "k"), 'Memory size "3g" is too large: at most 2g (2048m) is supported');
});

Deno.test("parseCommandLine reports missing <mem> and <kernel>", () => {
  assert(parseError().startsWith("Missing <mem> and <kernel> arguments"));
  assertEquals(parseError("64m"), 'Missing <kernel> argument after memory size "64m"');
  assertEquals(parseError("--rng", "64m"), 'Missing <kernel> argument after memory size "64m"');
});

Deno.test("parseCommandLine parses --net listen and connect with optional host and MAC", () => {
  const opts = parse(
    "--net=listen:8000",
    "--net=listen:0.0.0.0:8001,mac=52:54:00:AB:cd:01",
    "--net=connect:peer.example:9000",
    "--net=connect:[::1]:9001",
    "64",
    "k",
  );
  assertEquals(opts.nets, [
    { mode: "listen", host: "127.0.0.1", port: 8000 },
    { mode: "listen", host: "0.0.0.0", port: 8001, mac: Uint8Array.of(0x52, 0x54, 0x00, 0xAB, 0xCD, 0x01) },
    { mode: "connect", host: "peer.example", port: 9000 },
    { mode: "connect", host: "::1", port: 9001 },
  ]);
});

Deno.test("parseCommandLine rejects bad --net values naming the part that is wrong", () => {
  assertEquals(
    parseError("--net=connect:9000", "64", "k"),
    'Invalid network "connect:9000": connect needs a host, as in connect:HOST:PORT',
  );
  assertEquals(
    parseError("--net=tap:9000", "64", "k"),
    'Invalid network "tap:9000": expected listen:[HOST:]PORT, connect:HOST:PORT or user',
  );
  assertEquals(
    parseError("--net=listen:70000", "64", "k"),
    'Invalid port "70000" in "--net=listen:70000": expected a number from 1 to 65535',
  );
  assertEquals(
    parseError("--net=listen:http", "64", "k"),
    'Invalid port "http" in "--net=listen:http": expected a number from 1 to 65535',
  );
  assertEquals(
    parseError("--net=listen:80,mtu=9000", "64", "k"),
    'Invalid network option "mtu=9000" in "--net=listen:80,mtu=9000": only mac= and pcap= are known',
  );
  assertEquals(
    parseError("--net=listen:80,mac=52:54:00:12:34", "64", "k"),
    'Invalid MAC address "52:54:00:12:34": expected six hex pairs like 52:54:00:12:34:56',
  );
});

Deno.test("parseCommandLine parses --net=user with hostfwd rules, restrict and pcap", () => {
  const opts = parse(
    "--net=user",
    "--net=user,hostfwd=tcp::2222-:22,hostfwd=udp:0.0.0.0:5353-10.0.2.15:53,restrict=on,pcap=/tmp/x.pcap",
    "--net=listen:8000,pcap=l.pcap",
    "64",
    "k",
  );
  assertEquals(opts.nets, [
    { mode: "user", host: "", port: 0, hostForwards: [], restrict: false },
    {
      mode: "user",
      host: "",
      port: 0,
      hostForwards: [
        { protocol: "tcp", hostAddr: "127.0.0.1", hostPort: 2222, guestPort: 22 },
        { protocol: "udp", hostAddr: "0.0.0.0", hostPort: 5353, guestPort: 53 },
      ],
      restrict: true,
      pcap: "/tmp/x.pcap",
    },
    { mode: "listen", host: "127.0.0.1", port: 8000, pcap: "l.pcap" },
  ]);
});

Deno.test("parseCommandLine rejects bad --net=user options naming the part that is wrong", () => {
  assertEquals(
    parseError("--net=user,hostfwd=sctp::1-:2", "64", "k"),
    'Invalid hostfwd "sctp::1-:2" in "--net=user,hostfwd=sctp::1-:2": ' +
      "expected tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT",
  );
  assert(parseError("--net=user,hostfwd=tcp::0-:22", "64", "k").includes("ports are numbers"));
  assert(parseError("--net=user,hostfwd=tcp::80-10.0.2.9:22", "64", "k").includes("10.0.2.15"));
  assert(parseError("--net=user,hostfwd=tcp::80-:22,hostfwd=tcp::80-:23", "64", "k").includes("given twice"));
  assert(parseError("--net=user,restrict=maybe", "64", "k").includes("restrict=on or off"));
  assert(parseError("--net=user,pcap=", "64", "k").includes("needs a file name"));
  assert(parseError("--net=listen:80,restrict=on", "64", "k").includes("only mac= and pcap= are known"));
});

Deno.test("parseMac refuses multicast addresses a network card cannot own", () => {
  assertEquals(parseMac("02:00:00:00:00:01"), Uint8Array.of(2, 0, 0, 0, 0, 1));
  assertThrows(() => parseMac("01:00:5e:00:00:01"), /unicast/);
});

Deno.test("parseCommandLine explains that --tunnet needs root and --net replaces it", () => {
  const msg = parseError("--tunnet=192.168.19.1", "64", "vmlinux");
  assert(msg.startsWith('Option "--tunnet" is not supported: TAP networking needs root'), msg);
  assert(msg.includes("--net=listen:") && msg.includes("--net=connect:"), msg);
});

Deno.test("parseCommandLine refuses --username and --chroot rather than silently not confining", () => {
  assert(parseError("--username=nobody", "64", "k").startsWith('Option "--username" is not supported'));
  assert(parseError("--chroot=/var/empty", "64", "k").startsWith('Option "--chroot" is not supported'));
  assert(parseError("--tunnet").startsWith('Option "--tunnet" is not supported'), "even without a value");
});

Deno.test("parseCommandLine reports unknown options, missing values and values on flags", () => {
  assertEquals(parseError("--frobnicate", "64", "k"), 'Unknown option "--frobnicate": see "lguest --help"');
  assertEquals(parseError("-v", "64", "k"), 'Unknown option "-v": see "lguest --help"');
  assertEquals(parseError("--block"), 'Option "--block" needs a value: --block=FILE[,ro]');
  assertEquals(parseError("--block=", "64", "k"), 'Option "--block" needs a value: --block=FILE[,ro]');
  assertEquals(parseError("--block=,ro", "64", "k"), 'Option "--block" needs a file name: --block=FILE[,ro]');
  assertEquals(parseError("--rng=yes", "64", "k"), 'Option "--rng" takes no value, got "--rng=yes"');
  assertEquals(parseError("--initrd=a", "--initrd=b", "64", "k"), 'Option "--initrd" given twice');
});

Deno.test("parseCommandLine runs firmware with an optional <mem>, defaulting to 16 MiB", () => {
  assertEquals(parse("--firmware=bios.bin").boot, { kind: "firmware", path: "bios.bin" });
  assertEquals(parse("--firmware=bios.bin").memBytes, 16 * MiB);
  assertEquals(parse("--firmware=bios.bin", "4m").memBytes, 4 * MiB);
  assertEquals(parse("64m", "--firmware", "bios.bin").memBytes, 64 * MiB);
  assertEquals(
    parseError("--firmware=bios.bin", "64m", "vmlinux"),
    'Unexpected argument "vmlinux": --firmware takes no kernel image or arguments',
  );
  assertEquals(
    parseError("--firmware=bios.bin", "--initrd=i.gz"),
    'Option "--initrd" needs a kernel: it cannot be used with --firmware',
  );
  assertEquals(parseError("--firmware=bios.bin", "0"), 'Memory size "0" is too small: at least 1m is needed');
});

Deno.test("USAGE groups the options like a manual page and mentions every option", () => {
  for (
    const heading of [
      "Usage:",
      "Basic:",
      "Storage:",
      "Networking:",
      "Other devices:",
      "Running:",
      "Information:",
    ]
  ) {
    assert(USAGE.includes(heading), heading);
  }
  for (
    const opt of ["--block", "--initrd", "--net=listen", "--net=connect", "--tunnet", "--rng", "--firmware"]
  ) {
    assert(USAGE.includes(opt), opt);
  }
  for (
    const opt of [
      "--deterministic",
      "--no-reboot",
      "--guest-decompress",
      "--lguest",
      "--pc",
      "--verbose",
      "--trace=FILE",
      "--help",
      "--version",
    ]
  ) {
    assert(USAGE.includes(opt), opt);
  }
  for (const line of USAGE.split("\n")) assert(line.length <= 100, `USAGE line too long: ${line}`);
});

Deno.test("parseBlock reads ,ro and ,rw as options and refuses unknown ones instead of taking them as the file name", () => {
  assertEquals(parseBlock("disk.img"), { path: "disk.img", readOnly: false });
  assertEquals(parseBlock("disk.img,rw"), { path: "disk.img", readOnly: false });
  assertEquals(parseBlock("disk.img,ro"), { path: "disk.img", readOnly: true });
  assertEquals(parseBlock("a,,b.img,ro"), { path: "a,b.img", readOnly: true });
  assertThrows(
    () => parseBlock("disk.img,rox"),
    LaunchError,
    `Invalid disk option "rox" in "--block=disk.img,rox"`,
  );
  assertThrows(() => parseBlock("data,1.img"), LaunchError, `Invalid disk option "1.img"`);
  assertThrows(() => parseBlock("disk.img,ro,rw"), LaunchError, "both ro and rw");
  assertThrows(() => parseBlock(",ro"), LaunchError, "needs a file name");
});

Deno.test("parseCommandLine takes --rtc-base (a UTC date, optionally with a time) and --no-jit (issue #10)", () => {
  const o = parse("--rtc-base=2024-02-29T12:30:05", "--no-jit", "64", "vmlinux");
  assertEquals(o.rtcBaseMs, Date.UTC(2024, 1, 29, 12, 30, 5));
  assertEquals(o.noJit, true);
  assertEquals(parse("--rtc-base=2030-01-02", "64", "vmlinux").rtcBaseMs, Date.UTC(2030, 0, 2));
  assertEquals(parse("64", "vmlinux").rtcBaseMs, undefined);
  assertEquals(parse("64", "vmlinux").noJit, false);
  for (const bad of ["2023-02-29", "yesterday", "2024-13-01", "2024-01-01T25:00", "1969-12-31"]) {
    assert(parseError(`--rtc-base=${bad}`, "64", "vmlinux").includes("--rtc-base"), bad);
  }
});

Deno.test("parseCommandLine takes --trace=FILE once (issue #11)", () => {
  assertEquals(parse("--trace=t.txt", "64", "vmlinux").tracePath, "t.txt");
  assertEquals(parse("64", "vmlinux").tracePath, undefined);
  assertEquals(parseError("--trace=a", "--trace=b", "64", "k"), 'Option "--trace" given twice');
});

Deno.test("parseBlock reads snapshot and overlay=FILE, and refuses combinations that cannot mean anything", () => {
  assertEquals(parseBlock("d.img,snapshot"), { path: "d.img", readOnly: false, snapshot: true });
  assertEquals(parseBlock("d.img,overlay=d.ovl"), { path: "d.img", readOnly: false, overlay: "d.ovl" });
  assertEquals(parseBlock("d.img,overlay=a,,b.ovl"), { path: "d.img", readOnly: false, overlay: "a,b.ovl" });
  assertThrows(() => parseBlock("d.img,ro,snapshot"), LaunchError, "ro cannot be combined");
  assertThrows(() => parseBlock("d.img,snapshot,overlay=x"), LaunchError, "exclude each other");
  assertThrows(() => parseBlock("d.img,overlay="), LaunchError, `Invalid disk option "overlay="`);
});

Deno.test("parseCommandLine --snapshot puts every writable disk under a temporary layer, leaving ,ro disks alone", () => {
  const opts = parse("--snapshot", "--block=a.img", "--block=b.img,ro", "64", "vmlinux");
  assertEquals(opts.blocks, [{ path: "a.img", readOnly: false, snapshot: true }, {
    path: "b.img",
    readOnly: true,
  }]);
  assert(parseError("--snapshot", "--block=a.img,overlay=o", "64", "vmlinux").includes("--snapshot"));
});

Deno.test("parseShare reads HOSTDIR[,tag=NAME][,ro] with default tags share, share1, ... and refuses bad tags", () => {
  assertEquals(parseShare("/srv/data"), { path: "/srv/data", tag: "share", readOnly: false });
  assertEquals(parseShare("/srv/data,ro", 2), { path: "/srv/data", tag: "share2", readOnly: true });
  assertEquals(parseShare("dir,tag=host_files,ro"), { path: "dir", tag: "host_files", readOnly: true });
  assertThrows(() => parseShare("dir,tag=a b"), LaunchError, "Invalid mount tag");
  assertThrows(() => parseShare("dir,rw,x"), LaunchError, `Invalid share option "x"`);
  const opts = parse("--share=a", "--share=b,tag=bee", "64", "vmlinux");
  assertEquals(opts.shares.map((s) => s.tag), ["share", "bee"]);
  assert(
    parseError("--share=a", "--share=b,tag=share", "64", "vmlinux").includes(
      `mount tag "share" is already used`,
    ),
  );
});
