/**
 * Boots a Linux bzImage on v86 (the npm package `v86`, pinned below, with its x86-to-wasm JIT on, its
 * default) and copies the guest's first serial port to stdout: tools/bench_jit.ts spawns it so that v86
 * runs in a process of its own, timed like lguest.ts and QEMU (wall time and /proc/PID/stat CPU time).
 * BIOS images come from Debian's `seabios` package. Nothing of v86 is part of this repository: Deno
 * fetches the package from npm into its cache the first time this runs.
 * Exits when the guest prints `LGUEST-TS-EXIT N` (the reference guest's lguest_run="..." end: v86 has no
 * ACPI power-off here) with status N, when the kernel powers off, halts or panics (status 1), or after
 * --timeout-s (status 124).
 * Run it with --no-lock (as the benchmark does) so that no deno.lock is written into the checkout.
 * Usage: deno run -A --no-lock tools/v86_runner.ts --kernel=BZIMAGE [--initrd=FILE] [--memory-mib=256]
 *        [--timeout-s=1800] -- KERNEL ARGS...
 */

/** The v86 release the benchmark runs (npm `v86`). */
export const V86_VERSION = "0.5.462";
export const V86_SPECIFIER = `npm:v86@${V86_VERSION}`;
/** SeaBIOS and its VGA BIOS as Debian's `seabios` package installs them (v86 emulates a Bochs VBE card). */
export const SEABIOS = "/usr/share/seabios/bios.bin";
export const VGA_BIOS = "/usr/share/seabios/vgabios-stdvga.bin";

/** Where Deno keeps npm packages (`deno info --json`'s npmCache; DENO_DIR moves it). */
export async function npmCacheDir(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  })
    .output();
  return JSON.parse(new TextDecoder().decode(out.stdout)).npmCache as string;
}

/** v86's wasm module in Deno's npm cache (v86 reads it by path under Deno, like under Node). */
export async function v86WasmPath(): Promise<string> {
  return `${await npmCacheDir()}/registry.npmjs.org/v86/${V86_VERSION}/build/v86.wasm`;
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Why v86 cannot run here (a one-line message), or "" when it can (the npm package is fetched on demand). */
export function v86Problem(fileExists: (p: string) => boolean = exists): string {
  for (const f of [SEABIOS, VGA_BIOS]) {
    if (!fileExists(f)) return `v86: ${f} is missing (apt-get install seabios)`;
  }
  return "";
}

/** The end of a run, from the serial console's text so far: the exit status, or undefined while it runs. */
export function guestEnd(console: string): number | undefined {
  const m = console.match(/LGUEST-TS-EXIT (\d+)/);
  if (m) return Number(m[1]);
  if (/reboot: (Power down|System halted)|Kernel panic - not syncing/.test(console)) return 1;
  return undefined;
}

/** The few members of v86's API this runner uses (its package is loaded at run time, not type-checked). */
interface V86Emulator {
  add_listener(event: "serial0-output-byte", f: (byte: number) => void): void;
  add_listener(event: "emulator-ready", f: () => void): void;
  get_instruction_counter(): number;
  stop(): Promise<void>;
  destroy(): Promise<void>;
}
type V86Constructor = new (options: Record<string, unknown>) => V86Emulator;

async function main(): Promise<number> {
  const arg = (name: string): string | undefined =>
    Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const sep = Deno.args.indexOf("--");
  const cmdline = sep < 0 ? "" : Deno.args.slice(sep + 1).join(" ");
  const kernel = arg("kernel");
  if (kernel === undefined) throw new UserError("v86_runner: --kernel=BZIMAGE is required");
  const initrd = arg("initrd");
  const memoryMib = Number(arg("memory-mib") ?? "256");
  const timeoutS = Number(arg("timeout-s") ?? "1800");
  const problem = v86Problem();
  if (problem) throw new UserError(problem);
  const read = (path: string, what: string): ArrayBuffer => {
    try {
      return Deno.readFileSync(path).slice().buffer;
    } catch (e) {
      throw new UserError(`v86_runner: cannot read ${what} ${path}: ${(e as Error).message}`);
    }
  };
  const specifier = V86_SPECIFIER; // not a literal import: `deno check tools/` must not fetch v86
  const { V86 } = await import(specifier) as { V86: V86Constructor };
  const emulator = new V86({
    wasm_path: await v86WasmPath(),
    memory_size: memoryMib * 1024 * 1024,
    vga_memory_size: 2 * 1024 * 1024,
    bios: { buffer: read(SEABIOS, "BIOS") },
    vga_bios: { buffer: read(VGA_BIOS, "VGA BIOS") },
    bzimage: { buffer: read(kernel, "kernel") },
    ...(initrd === undefined ? {} : { initrd: { buffer: read(initrd, "initrd") } }),
    cmdline,
    autostart: true,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
  });

  let text = "";
  const pending: number[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const bytes = new Uint8Array(pending);
    pending.length = 0;
    let done = 0;
    while (done < bytes.length) done += Deno.stdout.writeSync(bytes.subarray(done));
    text = (text + new TextDecoder().decode(bytes)).slice(-4096);
  };
  const status = await new Promise<number>((resolve) => {
    const timer = setTimeout(() => resolve(124), timeoutS * 1000);
    const poll = setInterval(() => {
      flush();
      const end = guestEnd(text);
      if (end !== undefined) {
        clearTimeout(timer);
        clearInterval(poll);
        resolve(end);
      }
    }, 100);
    emulator.add_listener("serial0-output-byte", (byte) => {
      pending.push(byte);
      if (byte === 10) flush();
    });
  });
  flush();
  console.error(`v86 ${V86_VERSION}: ${emulator.get_instruction_counter()} instructions, exit ${status}`);
  await emulator.stop();
  await emulator.destroy();
  return status;
}

class UserError extends Error {}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    console.error(e.message);
    Deno.exit(2);
  }
}
