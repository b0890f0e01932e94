/**
 * Real Linux 4.x lguest kernels (built locally with CONFIG_LGUEST_GUEST=y; no package registry has
 * one, so CI skips this file): LGUEST_KERNEL_DIR names a directory of `vmlinux-*` and `bzImage-*`
 * files whose names end in `-pae` or `-nopae`. For each of the two page-table flavours, a vmlinux and a
 * bzImage (or the one kernel there is, twice) boot side by side as lguest Guests to the reference
 * initramfs's shell on hvc0, each reads and writes its own --block disk and takes entropy from --rng,
 * they ping each other over a --net socket link, both restart (`reboot -f` and plain `reboot`) and
 * find their disk as they left it and the link back, and both power off with exit 0. Then every
 * kernel boots with --pc to the shell and powers off with exit 0. And on a tmux terminal, hvc0 of an
 * lguest Guest has the window's size and follows a resize. Run:
 *   LGUEST_KERNEL_DIR=/path deno test -A tests/lguest/real_kernel_test.ts
 */
import { assert, assertEquals } from "../assert.ts";
import { guest, skipReason } from "../tools/guest_fixture.ts";
import { GuestProcess } from "../boot/guest_process.ts";
import { freePort } from "../boot/net_pair.ts";
import { assertRestored, delay, tmuxAvailable, TmuxLauncher } from "../boot/tmux_launcher.ts";

const dir = Deno.env.get("LGUEST_KERNEL_DIR");
const kernels = dir === undefined ? [] : [...Deno.readDirSync(dir)]
  .map((e) => e.name)
  .filter((n) => /^(vmlinux|bzImage)\S*-(nopae|pae)$/.test(n))
  .sort()
  .map((n) => `${dir}/${n}`);
const ignore = kernels.length === 0 || guest === undefined;
if (dir === undefined) console.warn("real lguest kernel tests skipped: LGUEST_KERNEL_DIR is not set");
else if (guest === undefined) console.warn(`real lguest kernel tests skipped: ${skipReason}`);

const BOOT_TIMEOUT_MS = 900_000;
const name = (path: string) => path.split("/").pop()!;

/** Waits for the shell of boot number `n` (1-based): the prompt after the init's n-th ready marker. */
async function shellOfBoot(vm: GuestProcess, n: number): Promise<void> {
  let at = 0;
  for (let i = 0; i < n; i++) {
    const m = await vm.waitFor(/LGUEST-TS-READY/, BOOT_TIMEOUT_MS, at);
    at += m.index! + 1;
  }
  await vm.waitFor(/\/ # /, BOOT_TIMEOUT_MS, at);
}

/** A 1 MiB disk with a marker at its start. */
async function markedDisk(): Promise<string> {
  const disk = await Deno.makeTempFile({ prefix: "lguest_disk_" });
  const bytes = new Uint8Array(1 << 20);
  bytes.set(new TextEncoder().encode("lguest-disk-marker"), 0);
  await Deno.writeFile(disk, bytes);
  return disk;
}

for (const flavour of ["nopae", "pae"]) {
  const mine = kernels.filter((k) => k.endsWith(`-${flavour}`));
  const pair = [
    mine.find((k) => name(k).startsWith("vmlinux")) ?? mine[0],
    mine.find((k) => name(k).startsWith("bzImage")) ?? mine[0],
  ];
  Deno.test({
    name: `real lguest kernels, ${flavour}: ${
      pair.map((k) => k ? name(k) : "(none)").join(" + ")
    } on hvc0: ` +
      "--block rw, --rng, ping over --net, reboot -f and reboot, power-off exit 0",
    ignore: ignore || mine.length === 0,
    sanitizeResources: false,
    async fn() {
      const port = freePort();
      const disks = [await markedDisk(), await markedDisk()];
      const guests = pair.map((kernel, i) =>
        new GuestProcess([
          "--verbose",
          `--block=${disks[i]}`,
          "--rng",
          `--net=${i === 0 ? "listen" : "connect"}:127.0.0.1:${port},mac=52:54:00:00:00:0${i + 1}`,
          `--initrd=${guest!.initrd}`,
          "128",
          kernel,
          "console=hvc0",
        ], { deterministic: false })
      );
      try {
        await Promise.all(guests.map(async (vm, i) => {
          await shellOfBoot(vm, 1);
          assert(vm.output.includes("Booting paravirtualized kernel on lguest"), vm.output.slice(0, 3000));
          assert(vm.stderr.includes("as an lguest Guest"), vm.stderr);
          const marker = await vm.run("dd if=/dev/vda bs=18 count=1 2>/dev/null");
          assert(marker.includes("lguest-disk-marker"), marker);
          await vm.run(`echo written-by-guest-${i} | dd of=/dev/vda bs=512 seek=8 conv=fsync 2>/dev/null`);
          const rng = await vm.run("dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1");
          // The last line: the echoed command may wrap, so the output can start with its tail.
          assertEquals(rng.trim().split("\n").pop()!.trim().split(/\s+/).length, 16, rng);
          assert((await vm.run("cat /sys/class/misc/hw_random/rng_current")).includes("virtio_rng"));
          await vm.run(`ip addr add 10.0.0.${i + 1}/24 dev eth0; ip link set eth0 up`);
        }));
        const ping = async (from: number, to: number) => {
          const out = await guests[from].run(`ping -c 2 -W 5 10.0.0.${to + 1}`, 120_000);
          assert(/2 packets transmitted, 2 (packets )?received/.test(out), out);
        };
        await ping(0, 1);
        await ping(1, 0);
        // Both restart: the files are the same (the guest's write is there), the devices fresh.
        await guests[0].type("reboot -f\n");
        await guests[1].type("reboot\n");
        await Promise.all(guests.map(async (vm, i) => {
          await shellOfBoot(vm, 2);
          assert(vm.stderr.includes("starting it again"), vm.stderr);
          const back = await vm.run("dd if=/dev/vda bs=512 skip=8 count=1 2>/dev/null | head -c 18");
          assert(back.includes(`written-by-guest-${i}`), back);
          await vm.run(`ip addr add 10.0.0.${i + 1}/24 dev eth0; ip link set eth0 up`);
        }));
        await ping(1, 0);
        await guests[0].powerOff(300_000);
        await guests[1].type("poweroff\n");
        assertEquals(await guests[1].exit(300_000), 0, guests[1].stderr);
        for (const [i, disk] of disks.entries()) {
          const after = new TextDecoder().decode((await Deno.readFile(disk)).subarray(4096, 4096 + 18));
          assertEquals(after, `written-by-guest-${i}`);
        }
      } catch (e) {
        await Promise.all(guests.map((vm) => vm.kill()));
        throw e;
      } finally {
        for (const d of disks) await Deno.remove(d);
      }
    },
  });
}

for (const kernel of kernels.length > 0 ? kernels : ["(none)"]) {
  Deno.test({
    name: `real lguest kernel ${name(kernel)} with --pc: shell on hvc0, power-off exit 0`,
    ignore,
    sanitizeResources: false,
    async fn() {
      const vm = new GuestProcess([
        "--verbose",
        "--pc",
        `--initrd=${guest!.initrd}`,
        "128",
        kernel,
        "console=hvc0",
      ]);
      try {
        await shellOfBoot(vm, 1);
        assert(vm.stderr.includes("as a PC: --pc"), vm.stderr);
        assert(!vm.output.includes("Booting paravirtualized kernel on lguest"), vm.output.slice(0, 3000));
        assertEquals((await vm.run("echo pc-$((40+2))")).trim(), "pc-42");
        await vm.powerOff(300_000);
      } catch (e) {
        await vm.kill();
        throw e;
      }
    },
  });
}

Deno.test({
  name:
    "real lguest kernel on a tmux terminal: hvc0 sized like the window, follows a resize, poweroff exits 0",
  ignore: ignore || !tmuxAvailable(),
  sanitizeResources: false,
  async fn() {
    const kernel = kernels.find((k) => name(k).startsWith("vmlinux")) ?? kernels[0];
    const dir = await Deno.makeTempDir();
    const t = new TmuxLauncher(dir);
    try {
      t.start([`--initrd=${guest!.initrd}`, "128", kernel, "console=hvc0"]);
      await t.waitFor(/\/ # /, BOOT_TIMEOUT_MS);
      t.tmux("send-keys", "-t", "vm", "stty size; echo size-checked", "Enter");
      await t.waitFor(/30 100\s+size-checked/, 120_000);
      t.tmux("resize-window", "-t", "vm", "-x", "120", "-y", "40");
      await delay(1000);
      t.tmux("send-keys", "-t", "vm", "stty size; echo resize-checked", "Enter");
      await t.waitFor(/40 120\s+resize-checked/, 120_000);
      t.tmux("send-keys", "-t", "vm", "poweroff", "Enter");
      const code = await t.exitCode(300_000);
      assertEquals(code, 0, await Deno.readTextFile(`${dir}/stderr`));
      await assertRestored(dir);
    } finally {
      t.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
