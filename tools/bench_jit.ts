/**
 * CPU benchmark on the reference guest (issue #10): boots it with a fixed workload, md5 of 16 MiB of
 * zeros, then a busybox shell loop of 100,000 iterations, and prints for each part the wall time,
 * the guest instructions (from the guest's /proc/uptime under --deterministic, where time is
 * instructions x 10 ns) and MIPS, plus the time to the userspace marker and the translator's
 * statistics. Runs the translator and the pure interpreter (--no-jit) in the same sitting and
 * prints the ratio; with QEMU installed (qemu-system-i386) it runs the same guest there too, and with
 * v86 installed (the pinned npm package in Deno's npm cache, and Debian's `seabios`) on v86 with its JIT,
 * in a Deno process of its own (tools/v86_runner.ts); `--v86` fetches v86 from npm first if needed,
 * `--no-v86` / `--no-qemu` skip them. Both print their time and the translator's ratio to it.
 * `--idle` also measures the host CPU an idle guest at its shell costs (30 s of /proc/PID/stat), with
 * the translator, without it and (unless --no-qemu) under QEMU TCG.
 * Besides wall time, each part's host CPU time (the process's utime + stime from /proc/PID/stat,
 * all threads) is printed: on a loaded host it is the steadier figure.
 * The translator and interpreter guests run at the same time (each gets the same share of a loaded
 * host; on a quiet 2-core host each has a core); --sequential runs them one after the other.
 * Usage: deno run -A tools/bench_jit.ts [--runs=N] [--md5-mib=16] [--loop=100000] [--sequential]
 *        [--idle] [--no-qemu] [--v86 | --no-v86]
 */
import { ensureGuest } from "./fetch_guest.ts";
import { V86_SPECIFIER, v86Problem, v86WasmPath } from "./v86_runner.ts";

function numberArg(name: string, fallback: number): number {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? fallback : Number(a.slice(name.length + 3));
}
const runs = numberArg("runs", 1);
const md5Mib = numberArg("md5-mib", 16);
const loopIterations = numberArg("loop", 100_000);
const g = await ensureGuest();
const kernel = g.vmlinux ?? g.kernel;
const KERNEL_ARGS = ["console=ttyS0", "cryptomgr.notests=1", "noisapnp", "quiet"];
const WORKLOAD = [
  "echo M0 $(cut -d' ' -f1 /proc/uptime)",
  `dd if=/dev/zero bs=1048576 count=${md5Mib} 2>/dev/null | md5sum`,
  "echo M1 $(cut -d' ' -f1 /proc/uptime)",
  `i=0; while [ $i -lt ${loopIterations} ]; do i=$((i+1)); done`,
  "echo M2 $(cut -d' ' -f1 /proc/uptime)",
].join("; ");

interface Part {
  wallS: number;
  /** Host CPU seconds the process used (all threads). */
  cpuS: number;
  guestInstructions: number;
}
interface Result {
  bootS: number;
  md5: Part;
  loop: Part;
  stats: string;
  /** Resident memory of the process at the end of the loop (MiB). */
  rssMiB: number;
}

/** Runs `cmd` with the workload and records when each marker appears. */
async function runGuest(cmd: string, args: string[], deterministic: boolean): Promise<Result> {
  const t0 = performance.now();
  const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" }).spawn();
  const seen = new Map<string, { wall: number; cpu: number; uptime: number }>();
  let bootS = NaN, rssMiB = NaN;
  let out = "", err = "";
  const decoder = new TextDecoder();
  const readOut = (async () => {
    for await (const chunk of child.stdout) {
      out += decoder.decode(chunk, { stream: true });
      if (Number.isNaN(bootS) && out.includes("LGUEST-TS-READY")) bootS = (performance.now() - t0) / 1000;
      for (const m of out.matchAll(/M(\d) ([\d.]+)/g)) {
        if (!seen.has(m[1])) {
          seen.set(m[1], { wall: performance.now(), cpu: cpuSeconds(child.pid), uptime: Number(m[2]) });
          if (m[1] === "2") rssMiB = residentMiB(child.pid);
        }
      }
    }
  })();
  const readErr = (async () => {
    for await (const chunk of child.stderr) err += decoder.decode(chunk, { stream: true });
  })();
  await child.status;
  await Promise.all([readOut, readErr]);
  const part = (a: string, b: string): Part => {
    const x = seen.get(a), y = seen.get(b);
    if (!x || !y) throw new Error(`marker M${a}/M${b} missing; console tail:\n${out.slice(-1500)}\n${err}`);
    return {
      wallS: (y.wall - x.wall) / 1000,
      cpuS: y.cpu - x.cpu,
      guestInstructions: deterministic ? (y.uptime - x.uptime) * 1e8 : NaN,
    };
  };
  const stats = err.match(/translator .*/)?.[0] ?? "";
  return { bootS, md5: part("0", "1"), loop: part("1", "2"), stats, rssMiB };
}

function lguest(extra: string[]): Promise<Result> {
  const main = new URL("../main.ts", import.meta.url).pathname;
  return runGuest(Deno.execPath(), [
    "run",
    "-A",
    main,
    "--verbose",
    "--deterministic",
    ...extra,
    `--initrd=${g.initrd}`,
    "256",
    kernel,
    ...KERNEL_ARGS,
    `lguest_run="${WORKLOAD}"`,
  ], true);
}

/** utime + stime of process `pid` in seconds (clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  try {
    const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

function mips(p: Part): string {
  return Number.isNaN(p.guestInstructions) ? "-" : (p.guestInstructions / p.wallS / 1e6).toFixed(0);
}

/** Resident set size of process `pid` in MiB (VmRSS of /proc/PID/status). */
function residentMiB(pid: number): number {
  try {
    const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/VmRSS:\s+(\d+) kB/);
    return m === null ? NaN : Number(m[1]) / 1024;
  } catch {
    return NaN;
  }
}

/** MIPS per host CPU second (what the part would run at with a core to itself). */
function cpuMips(p: Part): string {
  return Number.isNaN(p.guestInstructions) ? "-" : (p.guestInstructions / p.cpuS / 1e6).toFixed(0);
}

function line(name: string, r: Result): string {
  return `${name.padEnd(16)} boot ${r.bootS.toFixed(1).padStart(5)} s | md5 ${
    r.md5.wallS.toFixed(2).padStart(6)
  } s ` +
    `(${(r.md5.guestInstructions / 1e6).toFixed(0)} M insns, ${mips(r.md5)} MIPS; cpu ${
      r.md5.cpuS.toFixed(2)
    } s, ${cpuMips(r.md5)} MIPS/cpu-s) | loop ${r.loop.wallS.toFixed(2).padStart(6)} s (${
      (r.loop.guestInstructions / 1e6).toFixed(0)
    } M insns, ${mips(r.loop)} MIPS; cpu ${r.loop.cpuS.toFixed(2)} s, ${cpuMips(r.loop)} MIPS/cpu-s)`;
}

/** A system we did not write: its times (no instruction counts: it has no --deterministic clock). */
function other(name: string, r: Result): string {
  return `${name.padEnd(16)} boot ${r.bootS.toFixed(1).padStart(5)} s | md5 ${
    r.md5.wallS.toFixed(2)
  } s (cpu ${r.md5.cpuS.toFixed(2)} s) | loop ${r.loop.wallS.toFixed(2)} s (cpu ${r.loop.cpuS.toFixed(2)} s)`;
}

function ratios(name: string, jit: Result, r: Result): string {
  return `  lguest.ts translator / ${name} time: boot ${(jit.bootS / r.bootS).toFixed(2)}x, md5 ${
    (jit.md5.wallS / r.md5.wallS).toFixed(2)
  }x, loop ${(jit.loop.wallS / r.loop.wallS).toFixed(2)}x; by cpu time: md5 ${
    (jit.md5.cpuS / r.md5.cpuS).toFixed(2)
  }x, loop ${(jit.loop.cpuS / r.loop.cpuS).toFixed(2)}x`;
}

/** Whether to run v86: asked for (--v86), or installed (cached by Deno, seabios present), unless --no-v86. */
async function wantV86(): Promise<boolean> {
  if (Deno.args.includes("--no-v86")) return false;
  const asked = Deno.args.includes("--v86");
  const problem = v86Problem();
  if (problem) {
    if (asked) {
      console.error(problem);
      Deno.exit(1);
    }
    console.log(`${problem}; not run`);
    return false;
  }
  if (asked) return true;
  try {
    Deno.statSync(await v86WasmPath());
    return true;
  } catch {
    console.log(`v86: ${V86_SPECIFIER} is not in Deno's npm cache; not run (--v86 fetches it from npm)`);
    return false;
  }
}

const qemu = !Deno.args.includes("--no-qemu") && await hasCommand("qemu-system-i386");
const v86 = await wantV86();
if (qemu) console.log(`qemu: ${await qemuVersion()}`);
if (v86) console.log(`v86: ${V86_SPECIFIER} (JIT on), BIOS from Debian's seabios`);
console.log(`workload: md5 of ${md5Mib} MiB of zeros, a shell loop of ${loopIterations} iterations`);
for (let i = 0; i < runs; i++) {
  const [jit, interp] = Deno.args.includes("--sequential")
    ? [await lguest([]), await lguest(["--no-jit"])]
    : await Promise.all([lguest([]), lguest(["--no-jit"])]);
  console.log(line("translator", jit));
  console.log(`  ${jit.stats}`);
  console.log(line("interpreter", interp));
  console.log(
    `  resident memory at the end of the loop: translator ${jit.rssMiB.toFixed(0)} MiB, interpreter ${
      interp.rssMiB.toFixed(0)
    } MiB (translated code and its V8 tiers: the difference)`,
  );
  console.log(
    `  ratio (interpreter time / translator time): boot ${(interp.bootS / jit.bootS).toFixed(2)}x, md5 ${
      (interp.md5.wallS / jit.md5.wallS).toFixed(2)
    }x, loop ${(interp.loop.wallS / jit.loop.wallS).toFixed(2)}x; by cpu time: md5 ${
      (interp.md5.cpuS / jit.md5.cpuS).toFixed(2)
    }x, loop ${(interp.loop.cpuS / jit.loop.cpuS).toFixed(2)}x`,
  );
  if (qemu) {
    const q = await runGuest("qemu-system-i386", [
      "-m",
      "256",
      "-nographic",
      "-no-reboot",
      "-kernel",
      g.kernel,
      "-initrd",
      g.initrd,
      "-append",
      `${KERNEL_ARGS.join(" ")} lguest_run="${WORKLOAD}"`,
    ], false);
    console.log(other("qemu TCG", q));
    console.log(ratios("QEMU", jit, q));
  }
  if (v86) {
    const runner = new URL("./v86_runner.ts", import.meta.url).pathname;
    const v = await runGuest(Deno.execPath(), [
      "run",
      "-A",
      "--no-lock", // v86 is fetched at run time: no deno.lock written into the checkout
      runner,
      `--kernel=${g.kernel}`,
      `--initrd=${g.initrd}`,
      "--memory-mib=256",
      "--",
      ...KERNEL_ARGS,
      `lguest_run="${WORKLOAD}"`,
    ], false);
    console.log(other("v86 JIT", v));
    console.log(ratios("v86", jit, v));
  }
}

if (Deno.args.includes("--idle")) {
  const main = new URL("../main.ts", import.meta.url).pathname;
  for (const extra of [[], ["--no-jit"]]) {
    const args = ["run", "-A", main, ...extra, `--initrd=${g.initrd}`, "256", kernel, ...KERNEL_ARGS];
    console.log(
      `idle at the shell ${extra.join(" ") || "(translator)"}: ${await idleCost(Deno.execPath(), args)}`,
    );
  }
  if (!Deno.args.includes("--no-qemu") && await hasCommand("qemu-system-i386")) {
    const args = ["-m", "256", "-nographic", "-no-reboot", "-kernel", g.kernel, "-initrd", g.initrd];
    console.log(`idle at the shell (qemu TCG): ${await idleCost("qemu-system-i386", [
      ...args,
      "-append",
      KERNEL_ARGS.join(" "),
    ])}`);
  }
}

async function qemuVersion(): Promise<string> {
  const out = await new Deno.Command("qemu-system-i386", { args: ["--version"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split("\n")[0];
}

async function hasCommand(name: string): Promise<boolean> {
  try {
    const s = await new Deno.Command("sh", { args: ["-c", `command -v ${name}`], stdout: "null" }).output();
    return s.success;
  } catch {
    return false;
  }
}

/** Host CPU share of a guest idling at its shell (host clock, as a user runs it), over 30 s. */
async function idleCost(cmd: string, args: string[]): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const decoder = new TextDecoder();
  let out = "";
  const reader = child.stdout.getReader();
  while (!out.includes("/ # ")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += decoder.decode(value, { stream: true });
  }
  const drain = (async () => {
    while (!(await reader.read()).done) { /* keep the pipe empty */ }
  })();
  await new Promise((r) => setTimeout(r, 3000)); // let the boot's last work finish
  const ticks = () => {
    const f = Deno.readTextFileSync(`/proc/${child.pid}/stat`).split(") ")[1].split(" ");
    return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (100 Hz)
  };
  const t0 = performance.now(), c0 = ticks();
  await new Promise((r) => setTimeout(r, 30_000));
  const c1 = ticks(), t1 = performance.now();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode("poweroff -f\n"));
  await w.close().catch(() => {});
  // A guest that does not power off (QEMU without ACPI's help) is ended after 20 s.
  const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  await child.status;
  clearTimeout(killer);
  await drain;
  return `${((c1 - c0) * 10 / (t1 - t0) * 100).toFixed(1)}% of one core`;
}
