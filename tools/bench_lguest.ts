/**
 * lguest boot benchmark (issue #9): boots one kernel built with CONFIG_LGUEST_GUEST=y twice, as an
 * lguest Guest and as a PC (`--pc`), with the reference initramfs, and prints the wall time from
 * launch to the userspace marker for each, with the instructions executed and the MIPS.
 * Usage: deno run -A tools/bench_lguest.ts [KERNEL]   (default: the first vmlinux in $LGUEST_KERNEL_DIR)
 */
import { ensureGuest, READY_MARKER } from "./fetch_guest.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

function defaultKernel(): string {
  const dir = Deno.env.get("LGUEST_KERNEL_DIR");
  if (dir === undefined) throw new Error("give a kernel, or set LGUEST_KERNEL_DIR");
  const name = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.startsWith("vmlinux")).sort()[0];
  if (name === undefined) throw new Error(`no vmlinux* in ${dir}`);
  return `${dir}/${name}`;
}

interface Boot {
  markerMs: number;
  instructions: number;
  mips: number;
  code: number;
}

async function boot(kernel: string, initrd: string, as: "--lguest" | "--pc"): Promise<Boot> {
  const args = ["run", "-A", MAIN, "--verbose", as, `--initrd=${initrd}`, "128", kernel, "console=hvc0"];
  args.push("quiet", 'lguest_run="true"');
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .spawn();
  let markerMs = NaN, out = "", err = "";
  const decoder = new TextDecoder();
  const readOut = (async () => {
    for await (const chunk of child.stdout) {
      out += decoder.decode(chunk, { stream: true });
      if (Number.isNaN(markerMs) && out.includes(READY_MARKER)) {
        markerMs = performance.now() - t0;
        // A PC without ACPI cannot power off: stop it once the marker is out.
        setTimeout(() => {
          try {
            child.kill("SIGTERM");
          } catch { /* exited */ }
        }, 20_000);
      }
    }
  })();
  const readErr = (async () => {
    for await (const chunk of child.stderr) err += decoder.decode(chunk, { stream: true });
  })();
  const status = await child.status;
  await Promise.all([readOut, readErr]);
  const stats = err.match(/guest ran (\d+) instructions in ([\d.]+) s \(([\d.]+) MIPS\)/);
  return {
    markerMs,
    instructions: stats ? Number(stats[1]) : NaN,
    mips: stats ? Number(stats[3]) : NaN,
    code: status.code,
  };
}

const kernel = Deno.args[0] ?? defaultKernel();
const g = await ensureGuest();
console.log(`kernel: ${kernel}`);
for (const as of ["--lguest", "--pc"] as const) {
  const b = await boot(kernel, g.initrd, as);
  console.log(
    `${as === "--lguest" ? "lguest Guest" : "PC          "}: launch to userspace marker ${
      (b.markerMs / 1000).toFixed(1)
    } s wall; ${(b.instructions / 1e9).toFixed(2)} G instructions at ${b.mips} MIPS (exit ${b.code})`,
  );
}
