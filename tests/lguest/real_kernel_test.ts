/**
 * Real Linux 4.x lguest kernels (built locally with CONFIG_LGUEST_GUEST=y; no package registry has
 * one, so CI skips this file): with LGUEST_KERNEL_DIR pointing at a directory of `vmlinux-*` and
 * `bzImage-*` files whose names say `pae` or `nopae`, each boots as an lguest Guest to the reference
 * initramfs's shell on hvc0, reads and writes a --block disk, takes entropy from --rng and powers
 * off with exit 0; one pair pings over --net. Run:
 *   LGUEST_KERNEL_DIR=/path deno test -A tests/lguest/real_kernel_test.ts
 */
import { assert, assertEquals } from "../assert.ts";
import { guest, skipReason } from "../tools/guest_fixture.ts";
import { GuestProcess, withGuest } from "../boot/guest_process.ts";

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

for (const kernel of kernels.length > 0 ? kernels : ["(none)"]) {
  Deno.test({
    name: `real lguest kernel ${kernel.split("/").pop()}: hvc0 shell, --block, --rng, power-off`,
    ignore,
    sanitizeResources: false,
    async fn() {
      const disk = await Deno.makeTempFile({ prefix: "lguest_disk_" });
      try {
        const bytes = new Uint8Array(1 << 20);
        bytes.set(new TextEncoder().encode("lguest-disk-marker"), 0);
        await Deno.writeFile(disk, bytes);
        const args = [
          "--verbose",
          `--block=${disk}`,
          "--rng",
          `--initrd=${guest!.initrd}`,
          "128",
          kernel,
          "console=hvc0",
        ];
        await withGuest(args, async (vm) => {
          await vm.waitFor(/\/ # /, BOOT_TIMEOUT_MS);
          assert(vm.output.includes("Booting paravirtualized kernel on lguest"), vm.output.slice(0, 3000));
          assert(vm.stderr.includes("as an lguest Guest"), vm.stderr);
          assert((await vm.run("dd if=/dev/vda bs=18 count=1 2>/dev/null")).includes("lguest-disk-marker"));
          await vm.run("echo written-by-guest | dd of=/dev/vda bs=512 seek=8 conv=fsync 2>/dev/null");
          const rng = await vm.run("dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1");
          assertEquals(rng.trim().split(/\s+/).slice(-16).length, 16, rng);
          assert((await vm.run("cat /sys/class/misc/hw_random/rng_current")).includes("virtio_rng"));
          await vm.powerOff(300_000);
        });
        const after = await Deno.readFile(disk);
        assert(new TextDecoder().decode(after.subarray(4096, 4096 + 16)).startsWith("written-by-guest"));
      } finally {
        await Deno.remove(disk);
      }
    },
  });
}

Deno.test({
  name: "real lguest kernels: two Guests ping each other over --net",
  ignore,
  sanitizeResources: false,
  async fn() {
    const kernel = kernels.find((k) => k.includes("vmlinux")) ?? kernels[0];
    const port = 20000 + Math.floor(Math.random() * 20000);
    const guests = [1, 2].map((i) =>
      new GuestProcess([
        `--net=${i === 1 ? "listen" : "connect"}:127.0.0.1:${port},mac=52:54:00:00:00:0${i}`,
        `--initrd=${guest!.initrd}`,
        "128",
        kernel,
        "console=hvc0",
      ], { deterministic: false })
    );
    try {
      await Promise.all(guests.map((vm) => vm.waitFor(/\/ # /, BOOT_TIMEOUT_MS)));
      for (const [i, vm] of guests.entries()) {
        await vm.run(`ip link set eth0 up; ip addr add 10.0.0.${i + 1}/24 dev eth0`);
      }
      const out = await guests[0].run("ping -c 2 10.0.0.2", 120_000);
      assert(/2 packets transmitted, 2 packets received/.test(out), out);
      await Promise.all(guests.map((vm) => vm.powerOff(300_000)));
    } catch (e) {
      await Promise.all(guests.map((vm) => vm.kill()));
      throw e;
    }
  },
});
