/**
 * Fetches the reference Guest (DEBIAN-GUEST: Debian 12's 686 kernel and busybox) with apt on a Debian
 * host, and builds its initramfs with our own cpio writer. Cached outside the repo in
 * $LGUEST_GUEST_DIR, else $XDG_CACHE_HOME/lguest-ts/guest, else ~/.cache/lguest-ts/guest; a second run
 * only prints the paths. Also unpacks the bzImage's xz payload into an ELF vmlinux when `xz` exists.
 * Usage: deno task guest [--force]
 */

import { CpioWriter, gzip } from "../lib/launcher/cpio.ts";
import { parseArgs } from "../lib/support/node_util.ts";

/** What ensureGuest() produces: absolute paths and the kernel's release (`uname -r`). */
export interface GuestFiles {
  /** The Debian bzImage (vmlinuz-<version>). */
  kernel: string;
  /** initramfs.cpio.gz: busybox, the virtio modules and our /init. */
  initrd: string;
  /** The bzImage's payload as a 32-bit ELF vmlinux; absent when `xz` was not available. */
  vmlinux?: string;
  /** The kernel release, like "6.1.0-50-686". */
  version: string;
  /** The Debian packages used, like "linux-image-6.1.0-50-686-unsigned:i386=6.1.176-1". */
  packages: string[];
  /** The modules in the initramfs, in /init's load order (absent in caches from before this field). */
  modules?: string[];
  /** The initramfs's other parts (GUEST_EXTRAS) it was built with; a cache missing one is rebuilt. */
  extras?: string[];
  /** The digest of the initramfs's scripts (/init, inittab): a cache built from other scripts is rebuilt. */
  scripts?: string;
}

/** Stable names in the cache, beside the versioned files, so that documented paths never go stale. */
export const STABLE_KERNEL = "vmlinuz";
export const STABLE_VMLINUX = "vmlinux";
export const STABLE_INITRD = "initramfs.cpio.gz";

/** The host cannot provide the Guest (no apt, no i386 kernel package); tests skip on this. */
export class GuestUnavailableError extends Error {
  override name = "GuestUnavailableError";
}

/** The virtio modules, dependencies first (DEBIAN-GUEST "Modules"); /init loads them in this order. */
export const VIRTIO_MODULES = [
  "virtio",
  "virtio_ring",
  "virtio_pci_modern_dev",
  "virtio_pci_legacy_dev",
  "virtio_pci",
  "virtio_blk",
  "failover",
  "net_failover",
  "virtio_net",
  "virtio_console",
  "virtio_rng",
];

/**
 * Filesystem modules for mounting block devices: the Debian kernel has no disk filesystem built in.
 * ext4 also mounts ext2 and ext3 (CONFIG_EXT4_USE_FOR_EXT2); it needs a "crc32c" driver to mount at all
 * (6.1 loads it unconditionally) and only softdeps on one, hence crc32c_generic. Loaded after VIRTIO_MODULES.
 */
export const FILESYSTEM_MODULES = ["crc32c_generic", "ext4"];

/**
 * Host folders over virtio-9p (`--share`, `mount -t 9p -o trans=virtio TAG /mnt`): the 9P client,
 * its virtio transport and the filesystem; their dependencies (netfs, fscache on 6.1) come from
 * modules.dep, loaded first.
 */
export const P9_MODULES = ["9pnet", "9pnet_virtio", "9p"];

/** Every module the initramfs is built with (their dependencies are added). */
export const GUEST_MODULES = [...VIRTIO_MODULES, ...FILESYSTEM_MODULES, ...P9_MODULES];

/**
 * Parts of the initramfs besides busybox, /init and the modules: a cache built before one was added
 * lacks it and is rebuilt. `udhcpc-default-script`: /etc/udhcpc/default.script (Debian busybox's
 * path; /usr/share/udhcpc/default.script links to it), so a bare `udhcpc`
 * configures eth0 from a DHCP lease (as on --net=user). `links-up`: /init sets every network link up.
 */
export const GUEST_EXTRAS = ["udhcpc-default-script", "links-up"];

/** The line /init prints once userspace runs, followed by `uname -r`. */
export const READY_MARKER = "LGUEST-TS-READY";

const KERNEL_PACKAGE_RE = /^linux-image-6\.1\.0-(\d+)-686-unsigned$/;
const BUSYBOX_PACKAGE = "busybox-static:i386";
const MANIFEST = "guest.json";

/** The cache directory, from LGUEST_GUEST_DIR, XDG_CACHE_HOME or HOME (`env` is for tests). */
export function guestDir(env: (name: string) => string | undefined = (n) => Deno.env.get(n)): string {
  const explicit = env("LGUEST_GUEST_DIR");
  if (explicit) return explicit;
  const xdg = env("XDG_CACHE_HOME");
  const cache = xdg ? xdg : `${env("HOME") ?? "/tmp"}/.cache`;
  return `${cache}/lguest-ts/guest`;
}

/**
 * Returns the cached Guest, fetching and building it first if needed. Safe to call from several
 * processes at once (a lock file serialises them). Throws GuestUnavailableError when apt cannot help.
 */
export async function ensureGuest(
  options: { force?: boolean; log?: (line: string) => void } = {},
): Promise<GuestFiles> {
  const log = options.log ?? (() => {});
  const dir = guestDir();
  if (!options.force) {
    const cached = await readManifest(dir);
    if (cached) return cached;
  }
  const parent = dir.replace(/\/[^/]+\/?$/, "") || "/";
  await Deno.mkdir(parent, { recursive: true });
  const lock = await Deno.open(`${dir}.lock`, { create: true, write: true });
  try {
    await lock.lock(true);
    if (!options.force) {
      const cached = await readManifest(dir); // another process may have built it meanwhile
      if (cached) return cached;
    }
    return await fetchAndBuild(dir, parent, log);
  } finally {
    lock.close();
  }
}

async function readManifest(dir: string): Promise<GuestFiles | undefined> {
  try {
    const files = JSON.parse(await Deno.readTextFile(`${dir}/${MANIFEST}`)) as GuestFiles;
    for (const path of [files.kernel, files.initrd, files.vmlinux]) {
      if (path !== undefined) await Deno.stat(path);
    }
    // A cache built with fewer modules (an older GUEST_MODULES) or other scripts is rebuilt.
    if (!GUEST_MODULES.every((m) => files.modules?.includes(m))) return undefined;
    if (!GUEST_EXTRAS.every((x) => files.extras?.includes(x))) return undefined;
    if (files.scripts !== await scriptsDigest()) return undefined;
    await Deno.stat(`${dir}/${STABLE_KERNEL}`);
    if (files.vmlinux !== undefined) await Deno.stat(`${dir}/${STABLE_VMLINUX}`);
    return files;
  } catch {
    return undefined;
  }
}

async function fetchAndBuild(dir: string, parent: string, log: (line: string) => void): Promise<GuestFiles> {
  const started = performance.now();
  if (!await commandExists("apt-get") || !await commandExists("dpkg-deb")) {
    throw new GuestUnavailableError(
      "apt-get and dpkg-deb are needed to fetch the Guest: use a Debian or Ubuntu host",
    );
  }
  const kernelPackage = await findKernelPackage(log);
  const work = await Deno.makeTempDir({ dir: parent, prefix: "fetch-" });
  try {
    log(`+ (cd ${work} && apt-get download ${kernelPackage.spec} ${BUSYBOX_PACKAGE})`);
    // apt's own lines ("Get:1 ... [5,727 kB]", "Fetched ... in 3s") are the download's progress.
    await run("apt-get", ["download", kernelPackage.spec, BUSYBOX_PACKAGE], { cwd: work, log });
    const root = `${work}/root`;
    const packages: string[] = [];
    for await (const entry of Deno.readDir(work)) {
      if (!entry.name.endsWith(".deb")) continue;
      log(`+ dpkg-deb -x ${entry.name} root`);
      await run("dpkg-deb", ["-x", `${work}/${entry.name}`, root]);
      packages.push(decodeURIComponent(entry.name).replace(/\.deb$/, ""));
    }
    packages.sort();

    const boot = [...Deno.readDirSync(`${root}/boot`)].map((e) => e.name).find((n) =>
      n.startsWith("vmlinuz-")
    );
    if (!boot) throw new Error(`${kernelPackage.spec} has no boot/vmlinuz-*`);
    const version = boot.slice("vmlinuz-".length);
    const busybox = await Deno.readFile(`${root}/bin/busybox`);
    const modules = await collectModules(`${root}/lib/modules/${version}`, GUEST_MODULES);
    log(`modules, in load order: ${modules.map((m) => m.name).join(" ")}`);
    log("building initramfs.cpio.gz (busybox, the modules, /init)");
    const initramfs = await buildInitramfs({ busybox, modules, version });

    const stage = `${work}/out`;
    await Deno.mkdir(stage);
    await Deno.copyFile(`${root}/boot/${boot}`, `${stage}/${boot}`);
    await Deno.writeFile(`${stage}/initramfs.cpio.gz`, initramfs);
    const files: GuestFiles = {
      kernel: `${dir}/${boot}`,
      initrd: `${dir}/initramfs.cpio.gz`,
      version,
      packages,
      modules: modules.map((m) => m.name),
      extras: GUEST_EXTRAS,
      scripts: await scriptsDigest(),
    };
    await Deno.symlink(boot, `${stage}/${STABLE_KERNEL}`);
    const vmlinux = await extractVmlinux(await Deno.readFile(`${root}/boot/${boot}`), log);
    if (vmlinux) {
      await Deno.writeFile(`${stage}/vmlinux-${version}`, vmlinux);
      files.vmlinux = `${dir}/vmlinux-${version}`;
      await Deno.symlink(`vmlinux-${version}`, `${stage}/${STABLE_VMLINUX}`);
    }
    await Deno.writeTextFile(`${stage}/${MANIFEST}`, JSON.stringify(files, null, 2) + "\n");
    await removeOldGuest(dir);
    await Deno.rename(stage, dir);
    log(`built the Guest in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return files;
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/** Removes a previous Guest, refusing to delete a directory that is not ours (LGUEST_GUEST_DIR=~ ...). */
async function removeOldGuest(dir: string): Promise<void> {
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].map((e) => e.name);
  } catch {
    return; // nothing there
  }
  if (names.length > 0 && !names.includes(MANIFEST)) {
    throw new Error(`${dir} exists and is not a Guest cache (no ${MANIFEST}): not replacing it`);
  }
  await Deno.remove(dir, { recursive: true });
}

/** Finds the newest linux-image-6.1.0-N-686-unsigned for i386, adding the architecture if needed. */
async function findKernelPackage(log: (line: string) => void): Promise<{ spec: string; version: string }> {
  const arches = (await run("dpkg", ["--print-foreign-architectures"])).split("\n");
  const native = (await run("dpkg", ["--print-architecture"])).trim();
  let updated = false;
  if (native !== "i386" && !arches.includes("i386")) {
    requireRoot("dpkg --add-architecture i386");
    log("+ dpkg --add-architecture i386");
    await run("dpkg", ["--add-architecture", "i386"]);
    await aptUpdate(log);
    updated = true;
  }
  for (;;) {
    const names =
      (await run("apt-cache", ["search", "--names-only", "^linux-image-6\\.1\\.0-[0-9]+-686-unsigned$"]))
        .split("\n").map((l) => l.split(" ")[0]).filter((n) => KERNEL_PACKAGE_RE.test(n))
        .sort((a, b) => Number(KERNEL_PACKAGE_RE.exec(b)![1]) - Number(KERNEL_PACKAGE_RE.exec(a)![1]));
    for (const name of names) {
      const policy = await run("apt-cache", ["policy", `${name}:i386`]);
      const candidate = /Candidate: (\S+)/.exec(policy)?.[1];
      if (candidate && candidate !== "(none)") {
        log(`kernel package: ${name}:i386 ${candidate}`);
        return { spec: `${name}:i386=${candidate}`, version: candidate };
      }
    }
    if (updated) break;
    requireRoot("apt-get update");
    await aptUpdate(log);
    updated = true;
  }
  throw new GuestUnavailableError(
    "No linux-image-6.1.0-*-686-unsigned:i386 package in apt's lists: the reference Guest needs Debian 12's i386 archive",
  );
}

async function aptUpdate(log: (line: string) => void): Promise<void> {
  log("+ apt-get update");
  // A list that fails to download (a mirror mid-sync) is not fatal: we check for the package next.
  await run("apt-get", ["update", "-q"], { allowFailure: true });
}

function requireRoot(what: string): void {
  if (Deno.uid() !== 0) {
    throw new GuestUnavailableError(
      `Fetching the Guest needs "${what}", which needs root: run it once as root`,
    );
  }
}

/** A kernel module to put in the initramfs, at its path under lib/modules/<version>/. */
export interface GuestModule {
  name: string;
  relativePath: string;
  data: Uint8Array;
}

/** Finds `wanted` modules (and anything they depend on) under `moduleDir`, dependencies first. */
async function collectModules(moduleDir: string, wanted: string[]): Promise<GuestModule[]> {
  const byName = new Map<string, string>();
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(`${moduleDir}/${rel}`)) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".ko")) byName.set(e.name.slice(0, -3).replaceAll("-", "_"), path);
    }
  };
  await walk("kernel");
  const found = new Map<string, GuestModule>();
  const order: GuestModule[] = [];
  const visit = async (name: string, chain: string[]) => {
    if (found.has(name)) return;
    if (chain.includes(name)) throw new Error(`module dependency loop: ${[...chain, name].join(" -> ")}`);
    const rel = byName.get(name);
    if (!rel) throw new Error(`module ${name} is not in ${moduleDir}`);
    const data = await Deno.readFile(`${moduleDir}/${rel}`);
    const deps = moduleDepends(data).sort((a, b) => rank(a) - rank(b));
    for (const dep of deps) await visit(dep, [...chain, name]);
    const mod = { name, relativePath: rel, data };
    found.set(name, mod);
    order.push(mod);
  };
  const rank = (n: string) => wanted.includes(n) ? wanted.indexOf(n) : wanted.length;
  for (const name of wanted) await visit(name, []);
  return order;
}

/** The `depends=` list from a kernel module's .modinfo section (an ELF32 relocatable object). */
export function moduleDepends(ko: Uint8Array): string[] {
  const view = new DataView(ko.buffer, ko.byteOffset, ko.byteLength);
  if (ko.length < 52 || view.getUint32(0) !== 0x7F454C46 || ko[4] !== 1) {
    throw new Error("not a 32-bit ELF kernel module");
  }
  const shoff = view.getUint32(0x20, true);
  const shentsize = view.getUint16(0x2E, true);
  const shnum = view.getUint16(0x30, true);
  const shstrndx = view.getUint16(0x32, true);
  const section = (i: number) => {
    const at = shoff + i * shentsize;
    return {
      name: view.getUint32(at, true),
      offset: view.getUint32(at + 16, true),
      size: view.getUint32(at + 20, true),
    };
  };
  const names = section(shstrndx);
  const decoder = new TextDecoder();
  const cString = (at: number) => decoder.decode(ko.subarray(at, ko.indexOf(0, at)));
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (cString(names.offset + s.name) !== ".modinfo") continue;
    for (const entry of decoder.decode(ko.subarray(s.offset, s.offset + s.size)).split("\0")) {
      if (entry.startsWith("depends=")) return entry.slice(8).split(",").filter((d) => d !== "");
    }
    return [];
  }
  return [];
}

/**
 * Our /init: mount the pseudo filesystems, print the marker, load the modules, size the serial
 * console, then hand PID 1 to busybox init (/etc/inittab), which reaps orphans and turns plain
 * `poweroff`, `reboot` and `halt` (SIGUSR2, SIGTERM, SIGUSR1 to PID 1) into the real thing.
 */
export function initScript(version: string, modulePaths: string[]): string {
  const insmods = modulePaths.map((p) => `  /lib/modules/${version}/${p} \\\n`).join("");
  return `#!/bin/sh
# /init of the lguest.ts reference Guest, written by tools/fetch_guest.ts. Kernel command line:
#   lguest_run="COMMAND"  run COMMAND instead of a shell, then power off; the launcher exits with
#                         COMMAND's status (written to the exit-status port 0xF4 through /dev/port)
#   lguest_tty=COLSxROWS  the host terminal's size (the launcher adds it), for the serial console
# (the kernel hands unknown name=value words to init as environment variables).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "${READY_MARKER} $(uname -r)"
for m in \\
${insmods}; do
  insmod "$m" || echo "init: could not load $m"
done
# Network links up, unaddressed: a bare udhcpc (or ip addr add) then just works.
for l in /sys/class/net/*; do ip link set "\${l##*/}" up 2>/dev/null; done
case "$lguest_tty" in
  *[0-9]x[0-9]*) [ -c /dev/ttyS0 ] && stty -F /dev/ttyS0 cols "\${lguest_tty%x*}" rows "\${lguest_tty#*x}" ;;
esac
exec /bin/busybox init
`;
}

/** busybox init's table: /etc/lguest-main once, reboot on Ctrl-Alt-Del, sync and unmount on the way out. */
export const INITTAB =
  `# /etc/inittab of the lguest.ts reference Guest (busybox init), written by tools/fetch_guest.ts.
::once:/etc/lguest-main
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/sh -c 'umount -a -r 2>/dev/null; sync'
`;

/** What busybox init runs once: the lguest_run command or an interactive shell, then power off. */
export const MAIN_SCRIPT = `#!/bin/sh
# /etc/lguest-main of the lguest.ts reference Guest, run once by busybox init.
if [ -n "$lguest_run" ]; then
  sh -c "$lguest_run"
  status=$?
  echo "LGUEST-TS-EXIT $status"
  printf "\\\\$(printf %03o "$status")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
  sync
  poweroff -f
fi
echo "init: a shell on the console; leave it or type 'poweroff' to power off ('reboot' restarts)"
setsid cttyhack sh
poweroff
`;

/** SHA-256 of the initramfs's scripts as this version of the tool writes them. */
async function scriptsDigest(): Promise<string> {
  const text = initScript("VERSION", ["MODULE.ko"]) + INITTAB + MAIN_SCRIPT + UDHCPC_SCRIPT;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * busybox udhcpc's event script (udhcpc runs it as `default.script EVENT` with the lease in its
 * environment: interface, ip, mask as a prefix length, router, dns): configures the interface.
 */
export const UDHCPC_SCRIPT = `#!/bin/sh
# udhcpc's event script, written by tools/fetch_guest.ts: configure the interface from the lease.
case "$1" in
deconfig)
  ip -4 addr flush dev "$interface"
  ip link set "$interface" up
  ;;
bound|renew)
  ip -4 addr flush dev "$interface"
  ip addr add "$ip/\${mask:-24}" dev "$interface"
  for r in $router; do ip route add default via "$r" dev "$interface"; break; done
  : > /etc/resolv.conf
  for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
  ;;
esac
exit 0
`;

/** Builds initramfs.cpio.gz: busybox as /bin/sh, the modules under /lib/modules/<version>/, /init. */
export async function buildInitramfs(
  parts: { busybox: Uint8Array; modules: GuestModule[]; version: string },
): Promise<Uint8Array> {
  const cpio = new CpioWriter();
  for (const dir of ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "root", "mnt"]) {
    cpio.addDirectory(dir);
  }
  cpio.addDirectory("tmp", 0o1777);
  // The kernel opens /dev/console for init before /init can mount devtmpfs.
  cpio.addCharDevice("dev/console", 5, 1, 0o600);
  cpio.addCharDevice("dev/null", 1, 3, 0o666);
  cpio.addFile("bin/busybox", parts.busybox, 0o755);
  cpio.addSymlink("bin/sh", "busybox");
  for (const m of parts.modules) cpio.addFile(`lib/modules/${parts.version}/${m.relativePath}`, m.data);
  const init = initScript(parts.version, parts.modules.map((m) => m.relativePath));
  // Debian's busybox looks for /etc/udhcpc/default.script; upstream's default is /usr/share/udhcpc/.
  for (const dir of ["etc/udhcpc", "usr/share", "usr/share/udhcpc"]) cpio.addDirectory(dir);
  cpio.addFile("etc/udhcpc/default.script", new TextEncoder().encode(UDHCPC_SCRIPT), 0o755);
  cpio.addSymlink("usr/share/udhcpc/default.script", "/etc/udhcpc/default.script");
  const encoder = new TextEncoder();
  cpio.addFile("init", encoder.encode(init), 0o755);
  cpio.addFile("etc/inittab", encoder.encode(INITTAB), 0o644);
  cpio.addFile("etc/lguest-main", encoder.encode(MAIN_SCRIPT), 0o755);
  return await gzip(cpio.finish());
}

/** The bzImage's payload (boot.rst payload_offset/payload_length, protocol 2.08+), if it is xz and xz exists. */
async function extractVmlinux(
  bzImage: Uint8Array,
  log: (line: string) => void,
): Promise<Uint8Array | undefined> {
  const view = new DataView(bzImage.buffer, bzImage.byteOffset, bzImage.byteLength);
  const setupSects = bzImage[0x1F1] || 4;
  const offset = (setupSects + 1) * 512 + view.getUint32(0x248, true);
  const length = view.getUint32(0x24C, true);
  const payload = bzImage.subarray(offset, offset + length);
  const isXz = payload.length > 6 && [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00].every((b, i) => payload[i] === b);
  if (!isXz) {
    log("the kernel payload is not xz-compressed: no vmlinux");
    return undefined;
  }
  if (!await commandExists("xz")) {
    log("xz is not installed (apt-get install xz-utils): no vmlinux");
    return undefined;
  }
  log("+ xz -dc --single-stream < payload > vmlinux");
  // The payload ends with the decompressed size (4 bytes) after the xz stream; --single-stream stops before it.
  const child = new Deno.Command("xz", { args: ["-dc", "--single-stream"], stdin: "piped", stdout: "piped" })
    .spawn();
  const writer = child.stdin.getWriter();
  const [output] = await Promise.all([child.output(), writer.write(payload).then(() => writer.close())]);
  if (!output.success) throw new Error("xz could not decompress the kernel payload");
  const elf = output.stdout;
  if (elf.length < 4 || elf[0] !== 0x7F || elf[1] !== 0x45 || elf[2] !== 0x4C || elf[3] !== 0x46) {
    throw new Error("the kernel payload did not decompress to an ELF file");
  }
  return elf;
}

async function commandExists(name: string): Promise<boolean> {
  try {
    const out = await new Deno.Command("sh", { args: ["-c", `command -v ${name}`], stdout: "null" }).output();
    return out.success;
  } catch {
    return false;
  }
}

async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; allowFailure?: boolean; log?: (line: string) => void } = {},
): Promise<string> {
  const out = opts.log
    ? await outputLogged(
      new Deno.Command(cmd, { args, cwd: opts.cwd, stdout: "piped", stderr: "piped" }),
      opts.log,
    )
    : await new Deno.Command(cmd, { args, cwd: opts.cwd, stdout: "piped", stderr: "piped" }).output();
  const stderr = new TextDecoder().decode(out.stderr).trim();
  if (!out.success && !opts.allowFailure) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (exit ${out.code}): ${stderr.split("\n").slice(-3).join(" / ")}`,
    );
  }
  if (!out.success) console.error(`  (${cmd} exited ${out.code}; continuing)`);
  return new TextDecoder().decode(out.stdout);
}

/** Like `command.output()`, also passing each line of stdout to `log` as it comes (progress). */
async function outputLogged(
  command: Deno.Command,
  log: (line: string) => void,
): Promise<{ success: boolean; code: number; stdout: Uint8Array; stderr: Uint8Array }> {
  const child = command.spawn();
  const chunks: Uint8Array[] = [];
  const decoder = new TextDecoder();
  let pending = "";
  const stderr = new Response(child.stderr).arrayBuffer();
  for await (const chunk of child.stdout) {
    chunks.push(chunk);
    const lines = (pending + decoder.decode(chunk, { stream: true })).split(/\r?\n|\r/);
    pending = lines.pop() ?? "";
    for (const line of lines) if (line.trim() !== "") log(`  ${line.trim()}`);
  }
  if (pending.trim() !== "") log(`  ${pending.trim()}`);
  const status = await child.status;
  const stdout = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    stdout.set(c, at);
    at += c.length;
  }
  return { success: status.success, code: status.code, stdout, stderr: new Uint8Array(await stderr) };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { force: { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log("Usage: deno task guest [--force]\nFetches the reference Guest into " + guestDir());
    Deno.exit(0);
  }
  try {
    const files = await ensureGuest({ force: values.force, log: (l) => console.error(l) });
    // The stable names, in the README's order; the versioned files sit beside them.
    const dir = guestDir();
    console.log(`kernel=${dir}/${STABLE_KERNEL}`);
    if (files.vmlinux) console.log(`vmlinux=${dir}/${STABLE_VMLINUX}`);
    console.log(`initrd=${dir}/${STABLE_INITRD}`);
    console.log(`version=${files.version}`);
  } catch (e) {
    if (!(e instanceof GuestUnavailableError)) throw e;
    console.error(`fetch_guest: ${e.message}`);
    Deno.exit(1);
  }
}
