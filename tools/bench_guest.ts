/**
 * The reference Guest as the device benchmarks boot it: fetched on first use, 256 MiB, the serial
 * console and the fast boot arguments, with the benchmark's device options in front. `withBenchGuest`
 * waits for the shell, runs the body, then powers off and prints the exit code (or kills the Guest
 * when the body fails).
 */
import { GuestProcess } from "../tests/boot/guest_process.ts";
import { ensureGuest } from "./fetch_guest.ts";

export async function withBenchGuest(
  deviceArgs: string[],
  body: (vm: GuestProcess) => Promise<void>,
): Promise<void> {
  const g = await ensureGuest();
  const vm = new GuestProcess([
    ...deviceArgs,
    `--initrd=${g.initrd}`,
    "256",
    g.vmlinux ?? g.kernel,
    "console=ttyS0",
    "cryptomgr.notests=1",
    "noisapnp",
  ]);
  try {
    await vm.waitFor(/\/ # /, 900_000);
    await body(vm);
    await vm.type("poweroff -f\n");
    console.log(`exit code ${await vm.exit(120_000)}`);
  } catch (e) {
    await vm.kill();
    throw e;
  }
}
