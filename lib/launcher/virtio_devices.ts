/**
 * Plugs lguest's devices into the Machine: the PCI host bridge, then one virtio-pci function per
 * Device in lguest's order (console first, then each --block, each --net, each --share, then --rng), each with
 * its own INTx line routed through the 8259s in level mode, as a PC BIOS programs PCI lines.
 */
import { CowDisk } from "../backends/cow_disk.ts";
import { FileDisk } from "../backends/file_disk.ts";
import { HostEntropy, SeededEntropy } from "../backends/entropy.ts";
import { HostFs } from "../backends/host_fs.ts";
import { P9Server } from "../backends/p9_server.ts";
import { type ClosableNetBackend, PcapFile, PcapTap } from "../backends/pcap_tap.ts";
import { SocketNet } from "../backends/socket_net.ts";
import { UserNet } from "../backends/user_net.ts";
import type { Machine } from "../machine/machine.ts";
import type { IrqSink } from "../machine/irq.ts";
import { PciHostBridge } from "../pci/pci_host_bridge.ts";
import { LaunchError } from "../support/errors.ts";
import { debug, warn } from "../support/log.ts";
import { type BlockBackend, BlockDevice } from "../virtio/block.ts";
import { type ConsoleBackend, ConsoleDevice } from "../virtio/console.ts";
import { NetDevice } from "../virtio/net.ts";
import { type P9Backend, P9Device } from "../virtio/p9.ts";
import { RngDevice } from "../virtio/rng.ts";
import type { VirtioDevice } from "../virtio/virtio_device.ts";
import { VirtioPci } from "../virtio/virtio_pci.ts";
import type { LaunchOptions } from "./options.ts";

/** ISA lines free on our PC for PCI INTx, in the order devices get them (shared beyond eight). */
const PCI_IRQ_LINES = [5, 9, 10, 11, 3, 7, 14, 15];

/** A disk as the launcher holds it: a block backend it closes at the end of the launch. */
type OpenDisk = BlockBackend & { close(): Promise<void> };

/** One --net's host side that lasts the launch: its socket link (none for a user network) and capture. */
interface NetLink {
  socket: SocketNet | null;
  pcap: PcapFile | null;
}

/**
 * The host side of the Devices for one launch: disks (with their copy-on-write layers and locks),
 * socket links, pcap files and shared folders. Opened once and kept across guest reboots, as QEMU
 * keeps its backends: a `,snapshot` disk's writes last until the launcher exits, an image stays locked,
 * a capture covers every boot and a peer stays connected. A user network's router is made afresh
 * for each boot (its leases and connections are the old guest's), so its hostfwd ports reopen.
 */
export class LaunchBackends {
  readonly disks: OpenDisk[] = [];
  readonly nets: NetLink[] = [];
  readonly shares: HostFs[] = [];

  private constructor() {}

  /** Opens every backend `opts` names; a failure closes what was opened and throws a LaunchError. */
  static async open(opts: LaunchOptions): Promise<LaunchBackends> {
    const b = new LaunchBackends();
    try {
      for (const d of opts.blocks) {
        const disk = d.snapshot || d.overlay !== undefined
          ? await CowDisk.open(d.path, { overlayPath: d.overlay })
          : await FileDisk.open(d.path, { readOnly: d.readOnly });
        b.disks.push(disk);
        if (disk instanceof FileDisk && disk.sizeWarning !== undefined) warn(`warning: ${disk.sizeWarning}`);
      }
      for (const o of opts.nets) {
        const link: NetLink = { socket: null, pcap: null };
        b.nets.push(link);
        if (o.mode !== "user") link.socket = SocketNet.open({ mode: o.mode, hostname: o.host, port: o.port });
        if (o.pcap !== undefined) link.pcap = PcapFile.open(o.pcap);
      }
      for (const sh of opts.shares) b.shares.push(await HostFs.open(sh.path, sh.readOnly));
    } catch (e) {
      await b.close();
      if (e instanceof LaunchError) throw e;
      throw new LaunchError(`Cannot set up devices: ${e instanceof Error ? e.message : String(e)}`);
    }
    return b;
  }

  /** Flushes and closes every backend (disks last written are made durable by their close). */
  async close(): Promise<void> {
    for (const link of this.nets) {
      link.pcap?.close();
      await link.socket?.close().catch(() => {});
    }
    for (const disk of this.disks) await disk.close().catch(() => {});
  }
}

/** A socket link lent to one boot: closing it detaches the boot's device, the link stays open. */
function lentLink(socket: SocketNet): ClosableNetBackend {
  return {
    send: (frame) => socket.send(frame),
    onFrame: (cb) => socket.onFrame(cb),
    describe: () => socket.describe(),
    close: () => {
      socket.onFrame(() => {}); // frames between boots are dropped, as a NIC in reset drops them
      return Promise.resolve();
    },
  };
}

/** The host resources opened for the Devices, to close when the Guest stops. */
export interface AttachedDevices {
  bridge: PciHostBridge;
  /** The host side's state (network links and their counters), for `kill -USR2`. */
  describe(): string;
  close(): Promise<void>;
}

/**
 * A stable default MAC per network device, different at the two ends of one socket link:
 * 52:54:00 (QEMU's prefix), then 0x10 for a listening end or 0x20 for a connecting one, then the
 * port. Two guests each with one NIC on the same link thus never share an address. A user network's
 * guest is alone with the router and gets QEMU's usual 52:54:00:12:34:56.
 */
export function defaultMac(mode: "listen" | "connect" | "user", port: number): Uint8Array {
  // On a user network the guest is alone with the router: QEMU's usual address.
  if (mode === "user") return new Uint8Array([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
  return new Uint8Array([0x52, 0x54, 0x00, mode === "listen" ? 0x10 : 0x20, (port >> 8) & 0xFF, port & 0xFF]);
}

/** A disk whose every operation the machine waits for at the end of a slice (deterministic runs). */
function trackedDisk(disk: BlockBackend, machine: Machine): BlockBackend {
  return {
    sizeBytes: disk.sizeBytes,
    readOnly: disk.readOnly,
    read: (offset, buf) => machine.trackHostIo(disk.read(offset, buf)),
    write: (offset, data) => machine.trackHostIo(disk.write(offset, data)),
    flush: () => machine.trackHostIo(disk.flush()),
  };
}

/** A 9P server whose every request the machine waits for at the end of a slice (deterministic runs). */
function trackedShare(server: P9Backend, machine: Machine): P9Backend {
  return {
    get msize() {
      return server.msize;
    },
    handle: (msg, replyCapacity) => machine.trackHostIo(server.handle(msg, replyCapacity)),
    reset: () => server.reset(),
  };
}

export async function attachVirtioDevices(
  machine: Machine,
  irq: IrqSink,
  opts: LaunchOptions,
  backends: LaunchBackends,
  console: ConsoleBackend,
): Promise<AttachedDevices> {
  const closers: (() => Promise<void>)[] = [];
  const describers: (() => string)[] = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
  };
  const bridge = new PciHostBridge(machine.ports, machine.mmio, {
    onResetRequest: () => machine.stop("reboot", "the guest reset the machine through port 0xCF9"),
  });
  let elcr = 0;
  let n = 0;
  const plug = (device: VirtioDevice, name: string) => {
    const irqLine = PCI_IRQ_LINES[n++ % PCI_IRQ_LINES.length];
    const t = new VirtioPci({
      device,
      mem: machine.mem,
      mmio: machine.mmio,
      irq,
      irqLine,
      name,
      wake: () => machine.wake(),
    });
    bridge.attach(t.pci);
    elcr |= 1 << irqLine;
    debug(`${name} on IRQ ${irqLine}`);
  };
  try {
    plug(new ConsoleDevice(console), "virtio-console");
    for (const [i, disk] of backends.disks.entries()) {
      plug(new BlockDevice(opts.deterministic ? trackedDisk(disk, machine) : disk), `virtio-blk${i}`);
    }
    for (const [i, o] of opts.nets.entries()) {
      const link = backends.nets[i];
      let net: ClosableNetBackend = link.socket !== null ? lentLink(link.socket) : await UserNet.open({
        hostForwards: o.hostForwards,
        restrict: o.restrict,
        clock: machine.clock,
        wake: () => machine.wake(),
      });
      if (link.pcap !== null) net = new PcapTap(link.pcap, net);
      const backend = net;
      closers.push(() => backend.close());
      describers.push(() => `virtio-net${i}: ${backend.describe()}`);
      plug(new NetDevice(backend, { mac: o.mac ?? defaultMac(o.mode, o.port) }), `virtio-net${i}`);
    }
    for (const [i, sh] of opts.shares.entries()) {
      const server = new P9Server(backends.shares[i]);
      closers.push(() => Promise.resolve(server.reset()));
      plug(
        new P9Device(opts.deterministic ? trackedShare(server, machine) : server, sh.tag),
        `virtio-9p${i}`,
      );
    }
    if (opts.rng) {
      plug(new RngDevice(opts.deterministic ? new SeededEntropy() : new HostEntropy()), "virtio-rng");
    }
  } catch (e) {
    await close();
    if (e instanceof LaunchError) throw e;
    throw new LaunchError(`Cannot set up devices: ${e instanceof Error ? e.message : String(e)}`);
  }
  // Level-triggered PCI lines, as a BIOS leaves them in the ELCR (0x4D0/0x4D1).
  machine.ports.write(0x4D0, 1, elcr & 0xFF);
  machine.ports.write(0x4D1, 1, (elcr >> 8) & 0xFF);
  return { bridge, close, describe: () => describers.map((d) => d()).join("\n") };
}
