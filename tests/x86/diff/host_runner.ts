/**
 * Builds host_runner.c with `gcc -m32` into a temporary directory and runs generated cases on the
 * host CPU. The host is the oracle: this machine is x86-64 and runs 32-bit user code natively.
 * Unavailable (no gcc-multilib, not x86) is reported as a reason string so tests can be ignored.
 */
import { decodeResultFile, encodeCaseFile } from "./case_file.ts";
import type { CaseSet } from "./case_generator.ts";
import type { DiffResult } from "./diff_case.ts";

const SOURCE = new URL("./host_runner.c", import.meta.url);

/** A compiled host runner. */
export class HostRunner {
  readonly #exe: string;
  readonly #dir: string;
  /** Whether the host could map LOW_REGION (16-bit addressing reaches memory). */
  readonly lowRegion: boolean;
  /** The host CPU's vendor string (CPUID leaf 0), e.g. "GenuineIntel" or "AuthenticAMD". */
  readonly vendor: string;

  private constructor(dir: string, exe: string, lowRegion: boolean, vendor: string) {
    this.#dir = dir;
    this.#exe = exe;
    this.lowRegion = lowRegion;
    this.vendor = vendor;
  }

  /** Why the host can't run cases, or null when it can (synchronous so `ignore:` can use it). */
  static unavailableReason(): string | null {
    if (Deno.build.arch !== "x86_64" || Deno.build.os !== "linux") {
      return `host is ${Deno.build.os}/${Deno.build.arch}, not linux/x86_64`;
    }
    try {
      const dir = Deno.makeTempDirSync({ prefix: "lguest_diff_probe_" });
      try {
        Deno.writeTextFileSync(`${dir}/t.c`, "int main(void) { return 0; }\n");
        const r = new Deno.Command("gcc", {
          args: ["-m32", "-static", "-o", `${dir}/t`, `${dir}/t.c`],
          stderr: "piped",
        })
          .outputSync();
        if (!r.success) {
          return `gcc -m32 -static cannot link (install gcc-multilib): ${
            new TextDecoder().decode(r.stderr).trim().split("\n")[0]
          }`;
        }
        const run = new Deno.Command(`${dir}/t`).outputSync();
        if (!run.success) return "32-bit binaries don't run on this host";
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    } catch (e) {
      return `gcc is not usable: ${e instanceof Error ? e.message : String(e)}`;
    }
    return null;
  }

  /** Compiles the runner; throws if gcc fails. */
  static async build(): Promise<HostRunner> {
    const dir = await Deno.makeTempDir({ prefix: "lguest_diff_" });
    const exe = `${dir}/host_runner`;
    const src = await Deno.readTextFile(SOURCE);
    await Deno.writeTextFile(`${dir}/host_runner.c`, src);
    const cc = await new Deno.Command("gcc", {
      args: ["-m32", "-O1", "-static", "-no-pie", "-fno-pie", "-Wall", "-o", exe, `${dir}/host_runner.c`],
      stderr: "piped",
    }).output();
    if (!cc.success) throw new Error(`gcc -m32 failed:\n${new TextDecoder().decode(cc.stderr)}`);
    const probe = await new Deno.Command(exe, { args: ["--probe"], stdout: "piped" }).output();
    const lowRegion = new TextDecoder().decode(probe.stdout).trim() === "1";
    const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
    const vendor = /^vendor_id\s*:\s*(\S+)/m.exec(cpuinfo)?.[1] ?? "unknown";
    return new HostRunner(dir, exe, lowRegion, vendor);
  }

  /**
   * Runs every case natively; results are in case order. The runner is spawned before this returns
   * its promise, so the caller can run our CPU on the same cases meanwhile.
   */
  run(set: CaseSet): Promise<DiffResult[]> {
    const casePath = `${this.#dir}/cases.bin`, resultPath = `${this.#dir}/results.bin`;
    Deno.writeFileSync(casePath, encodeCaseFile(set.cases, set.regions, set.backgrounds));
    const child = new Deno.Command(this.#exe, {
      args: [casePath, resultPath],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    return (async () => {
      const r = await child.output();
      if (!r.success) {
        throw new Error(
          `host runner failed (exit ${r.code}${r.signal === null ? "" : ", " + r.signal}): ${
            new TextDecoder().decode(r.stderr)
          }`,
        );
      }
      const bytes = await Deno.readFile(resultPath);
      return decodeResultFile(bytes, set.cases);
    })();
  }

  /** Deletes the temporary directory. */
  async dispose(): Promise<void> {
    await Deno.remove(this.#dir, { recursive: true });
  }
}
