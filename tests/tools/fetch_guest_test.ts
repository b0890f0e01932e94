/**
 * Tests for tools/fetch_guest.ts: the cache location rules, the /init script and initramfs layout
 * (with stand-in files, no network), and the real Guest it fetched: a Debian bzImage, an ELF vmlinux
 * and an initramfs whose modules load dependencies first.
 */

import { assert, assertEquals, assertThrows } from "../assert.ts";
import { gunzip, parseCpio, S_IFCHR, S_IFLNK, S_IFMT, S_IFREG } from "../../lib/launcher/cpio.ts";
import {
  buildInitramfs,
  ensureGuest,
  FILESYSTEM_MODULES,
  guestDir,
  initScript,
  INITTAB,
  MAIN_SCRIPT,
  moduleDepends,
  READY_MARKER,
  VIRTIO_MODULES,
} from "../../tools/fetch_guest.ts";
import { guest } from "./guest_fixture.ts";

const dec = new TextDecoder();

Deno.test("guestDir prefers LGUEST_GUEST_DIR, then XDG_CACHE_HOME, then ~/.cache", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assertEquals(guestDir(env({ LGUEST_GUEST_DIR: "/g", XDG_CACHE_HOME: "/x", HOME: "/h" })), "/g");
  assertEquals(guestDir(env({ XDG_CACHE_HOME: "/x", HOME: "/h" })), "/x/lguest-ts/guest");
  assertEquals(guestDir(env({ HOME: "/h" })), "/h/.cache/lguest-ts/guest");
});

Deno.test("initScript mounts, prints the marker, loads modules in order, sizes ttyS0, then runs busybox init", () => {
  const script = initScript("6.1.0-9-686", ["kernel/a.ko", "kernel/b.ko"]);
  assert(script.startsWith("#!/bin/sh\n"), script);
  const order = [
    "mount -t proc proc /proc",
    "mount -t sysfs sysfs /sys",
    "mount -t devtmpfs devtmpfs /dev",
    `echo "${READY_MARKER} $(uname -r)"`,
    "/lib/modules/6.1.0-9-686/kernel/a.ko",
    "/lib/modules/6.1.0-9-686/kernel/b.ko",
    'insmod "$m" || echo',
    "stty -F /dev/ttyS0 cols",
    "\nexec /bin/busybox init\n",
  ].map((s) => script.indexOf(s));
  assert(order.every((at, i) => at !== -1 && (i === 0 || at > order[i - 1])), `order ${order}`);
  // busybox init runs the main script once; it runs lguest_run or a shell, then powers off.
  assert(INITTAB.includes("::once:/etc/lguest-main\n"), INITTAB);
  const main = ['sh -c "$lguest_run"', "dd of=/dev/port bs=1 seek=244", "poweroff -f", "setsid cttyhack sh"]
    .map((s) => MAIN_SCRIPT.indexOf(s));
  assert(main.every((at, i) => at !== -1 && (i === 0 || at > main[i - 1])), `order ${main}`);
  assert(MAIN_SCRIPT.endsWith("\npoweroff\n"), "plain poweroff after the shell: busybox init shuts down");
});

Deno.test("buildInitramfs lays out busybox, /bin/sh, /dev/console, the modules and /init", async () => {
  const gz = await buildInitramfs({
    busybox: Uint8Array.of(0x7F, 0x45, 0x4C, 0x46),
    modules: [{ name: "virtio", relativePath: "kernel/drivers/virtio/virtio.ko", data: Uint8Array.of(1, 2) }],
    version: "6.1.0-9-686",
  });
  const entries = new Map(parseCpio(await gunzip(gz)).map((e) => [e.name, e]));
  assertEquals(entries.get("bin/busybox")!.mode, S_IFREG | 0o755);
  assertEquals(entries.get("bin/sh")!.mode & S_IFMT, S_IFLNK);
  assertEquals(dec.decode(entries.get("bin/sh")!.data), "busybox");
  const consoleNode = entries.get("dev/console")!;
  assertEquals([consoleNode.mode & S_IFMT, consoleNode.rdevMajor, consoleNode.rdevMinor], [S_IFCHR, 5, 1]);
  assertEquals(entries.get("init")!.mode, S_IFREG | 0o755);
  assertEquals(dec.decode(entries.get("etc/inittab")!.data), INITTAB);
  assertEquals(entries.get("etc/lguest-main")!.mode, S_IFREG | 0o755);
  assertEquals(
    entries.get("lib/modules/6.1.0-9-686/kernel/drivers/virtio/virtio.ko")!.data,
    Uint8Array.of(1, 2),
  );
  for (const dir of ["proc", "sys", "tmp", "sbin", "usr/bin", "usr/sbin"]) assert(entries.has(dir), dir);
});

Deno.test("moduleDepends refuses files that are not 32-bit ELF modules", () => {
  assertThrows(() => moduleDepends(new Uint8Array(64)), /not a 32-bit ELF kernel module/);
});

Deno.test({
  name: "ensureGuest provides the Debian bzImage, its ELF vmlinux and an initramfs, and is idempotent",
  ignore: !guest,
  fn: async () => {
    const kernel = await Deno.readFile(guest!.kernel);
    assertEquals(dec.decode(kernel.subarray(0x202, 0x206)), "HdrS");
    assert(/^6\.1\.0-\d+-686$/.test(guest!.version), guest!.version);
    assert(guest!.kernel.endsWith(`/vmlinuz-${guest!.version}`), guest!.kernel);
    assert(guest!.packages.some((p) => p.startsWith("linux-image-6.1.0-")), guest!.packages.join());
    if (guest!.vmlinux) {
      const head = (await Deno.readFile(guest!.vmlinux)).subarray(0, 20);
      assertEquals([...head.subarray(0, 5)], [0x7F, 0x45, 0x4C, 0x46, 1]); // ELF32
      assertEquals(head[18], 3); // EM_386
    }
    const manifest = `${guestDir()}/guest.json`;
    const before = (await Deno.stat(manifest)).mtime;
    assertEquals(await ensureGuest(), guest);
    assertEquals((await Deno.stat(manifest)).mtime, before);
  },
});

Deno.test({
  name: "ensureGuest's initramfs holds static i386 busybox, /init and the virtio modules, dependencies first",
  ignore: !guest,
  fn: async () => {
    const entries = parseCpio(await gunzip(await Deno.readFile(guest!.initrd)));
    const byName = new Map(entries.map((e) => [e.name, e]));
    const busybox = byName.get("bin/busybox")!.data;
    assertEquals(busybox[18], 3, "busybox is i386");
    const init = dec.decode(byName.get("init")!.data);
    assert(init.includes(READY_MARKER), init);
    // Every module in GUEST_MODULES is in the archive and in /init's list, after all it depends on.
    const listed = [...init.matchAll(/\/lib\/modules\/[^/]+\/(kernel\/\S+\.ko)/g)].map((m) => m[1]);
    const names = listed.map((p) => p.slice(p.lastIndexOf("/") + 1, -3).replaceAll("-", "_"));
    // Which order comes out depends on the kernel package's modules.dep: test the property (every
    // module after all it depends on, below), never one order.
    for (const m of [...VIRTIO_MODULES, ...FILESYSTEM_MODULES]) assert(names.includes(m), `${m} in ${names}`);
    for (const [i, path] of listed.entries()) {
      const data = byName.get(`lib/modules/${guest!.version}/${path}`)?.data;
      assert(data, `module ${path} in the archive`);
      for (const dep of moduleDepends(data)) {
        assert(
          names.indexOf(dep) !== -1 && names.indexOf(dep) < i,
          `${names[i]} after its dependency ${dep}`,
        );
      }
    }
    // virtio_pci's own dependencies, whatever order the package lists them in.
    const virtioPci = listed[names.indexOf("virtio_pci")];
    assertEquals(
      moduleDepends(byName.get(`lib/modules/${guest!.version}/${virtioPci}`)!.data).toSorted(),
      ["virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_ring"],
    );
  },
});

Deno.test({
  name: "fetch_guest prints the stable kernel, vmlinux and initrd names in the README's order",
  ignore: !guest,
  fn: async () => {
    const tool = new URL("../../tools/fetch_guest.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", tool],
      stdout: "piped",
    })
      .output();
    assert(out.success);
    const lines = dec.decode(out.stdout).trimEnd().split("\n");
    const dir = guestDir();
    assertEquals(lines, [
      `kernel=${dir}/vmlinuz`,
      ...(guest!.vmlinux ? [`vmlinux=${dir}/vmlinux`] : []),
      `initrd=${dir}/initramfs.cpio.gz`,
      `version=${guest!.version}`,
    ]);
    // The stable names lead to the versioned files the manifest records.
    assertEquals(await Deno.realPath(`${dir}/vmlinuz`), await Deno.realPath(guest!.kernel));
    if (guest!.vmlinux) {
      assertEquals(await Deno.realPath(`${dir}/vmlinux`), await Deno.realPath(guest!.vmlinux));
    }
  },
});
