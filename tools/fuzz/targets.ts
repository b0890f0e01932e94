/**
 * The devices `deno task fuzz` drives, each with an in-memory backend that checks every access the
 * device makes of it (a block access past the disk's end counts as outside RAM would), the
 * well-formed requests that keep it busy, and its host-side events (typed input, frames).
 */
import {
  type BlockBackend,
  BlockDevice,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
} from "../../lib/virtio/block.ts";
import { ConsoleDevice } from "../../lib/virtio/console.ts";
import { MAX_FRAME_BYTES, NetDevice } from "../../lib/virtio/net.ts";
import { RngDevice } from "../../lib/virtio/rng.ts";
import { P9Device } from "../../lib/virtio/p9.ts";
import { HostFs } from "../../lib/backends/host_fs.ts";
import {
  P9_TATTACH,
  P9_TCLUNK,
  P9_TGETATTR,
  P9_TLCREATE,
  P9_TLOPEN,
  P9_TMKDIR,
  P9_TREAD,
  P9_TREADDIR,
  P9_TRENAMEAT,
  P9_TSETATTR,
  P9_TSTATFS,
  P9_TSYMLINK,
  P9_TUNLINKAT,
  P9_TVERSION,
  P9_TWALK,
  P9_TWRITE,
  P9Server,
} from "../../lib/backends/p9_server.ts";
import { UserNet } from "../../lib/backends/user_net.ts";
import type { NetClock } from "../../lib/net/net_timers.ts";
import type { Buf } from "../../tests/virtio/virtio_driver.ts";
import { FRAME_TEMPLATES, mangle } from "../../tests/net/malformed_frames.ts";
import type { FuzzTarget, Rng } from "./virtio_fuzzer.ts";

/** A RAM disk that throws (a device bug) when asked for bytes outside it. */
class MemoryDisk implements BlockBackend {
  readonly bytes: Uint8Array;
  readonly sizeBytes: number;
  constructor(sizeBytes: number, readonly readOnly: boolean) {
    this.sizeBytes = sizeBytes;
    this.bytes = new Uint8Array(sizeBytes);
  }
  #check(offset: number, len: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + len > this.sizeBytes) {
      throw new Error(`BUG: disk access ${offset}+${len} outside ${this.sizeBytes}`);
    }
  }
  read(offset: number, buf: Uint8Array): Promise<void> {
    this.#check(offset, buf.length);
    buf.set(this.bytes.subarray(offset, offset + buf.length));
    return Promise.resolve();
  }
  write(offset: number, data: Uint8Array): Promise<void> {
    this.#check(offset, data.length);
    if (this.readOnly) return Promise.reject(new Error("read-only"));
    this.bytes.set(data, offset);
    return Promise.resolve();
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
}

function blockHeader(type: number, sector: number): Uint8Array {
  const h = new Uint8Array(16);
  const v = new DataView(h.buffer);
  v.setUint32(0, type, true);
  v.setUint32(8, sector, true);
  return h;
}

/** Little-endian 9P message builder (the fuzzer's own: tools must not import test helpers' state). */
function p9(
  type: number,
  tag: number,
  fields: (["u8" | "u16" | "u32" | "u64", number] | ["s", string])[],
): Uint8Array {
  const body: number[] = [];
  const put = (v: number, n: number) => {
    for (let i = 0; i < n; i++) body.push(Math.floor(v / 2 ** (8 * i)) & 0xFF);
  };
  for (const f of fields) {
    if (f[0] === "s") {
      const b = new TextEncoder().encode(f[1]);
      put(b.length, 2);
      body.push(...b);
    } else put(f[1], { u8: 1, u16: 2, u32: 4, u64: 8 }[f[0]]);
  }
  const out = new Uint8Array(7 + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, out.length, true);
  v.setUint8(4, type);
  v.setUint16(5, tag, true);
  out.set(body, 7);
  return out;
}

const P9_NAMES = ["a", "b", "dir", "file.txt", "..", "link", "x/y", ""];

/** A well-formed (mostly) 9P request on a small fid space, so requests meet each other's fids. */
function p9Request(rng: Rng): Uint8Array {
  const fid = rng.below(12);
  const tag = rng.below(0x10000);
  const name = () => rng.pick(P9_NAMES);
  switch (rng.below(16)) {
    case 0:
      return p9(P9_TVERSION, 0xFFFF, [["u32", rng.chance(0.8) ? 131072 : rng.u32()], [
        "s",
        rng.chance(0.9) ? "9P2000.L" : "9P2000",
      ]]);
    case 1:
      return p9(P9_TATTACH, tag, [["u32", fid], ["u32", 0xFFFF_FFFF], ["s", "root"], ["s", ""], ["u32", 0]]);
    case 2: {
      const n = rng.below(4);
      const f: (["u32", number] | ["u16", number] | ["s", string])[] = [
        ["u32", fid],
        ["u32", rng.below(12)],
        ["u16", n],
      ];
      for (let i = 0; i < n; i++) f.push(["s", name()]);
      return p9(P9_TWALK, tag, f);
    }
    case 3:
      return p9(P9_TLOPEN, tag, [["u32", fid], ["u32", rng.pick([0, 1, 2, 0o1002, 0o2001, 0o200000])]]);
    case 4:
      return p9(P9_TLCREATE, tag, [["u32", fid], ["s", name()], ["u32", 0o102], ["u32", 0o644], ["u32", 0]]);
    case 5:
      return p9(P9_TREAD, tag, [["u32", fid], ["u64", rng.below(8192)], ["u32", rng.below(70000)]]);
    case 6: {
      const data = rng.fill(new Uint8Array(rng.below(300)));
      const m = p9(P9_TWRITE, tag, [["u32", fid], ["u64", rng.below(1 << 16)], ["u32", data.length]]);
      const out = new Uint8Array(m.length + data.length);
      out.set(m);
      out.set(data, m.length);
      new DataView(out.buffer).setUint32(0, out.length, true);
      return out;
    }
    case 7:
      return p9(P9_TREADDIR, tag, [["u32", fid], ["u64", rng.below(6)], ["u32", rng.below(9000)]]);
    case 8:
      return p9(P9_TGETATTR, tag, [["u32", fid], ["u64", 0x7FF]]);
    case 9:
      return p9(P9_TSETATTR, tag, [
        ["u32", fid],
        ["u32", rng.pick([0x1, 0x8, 0x30, 0x1B0])],
        ["u32", 0o644],
        ["u32", 0],
        [
          "u32",
          0,
        ],
        ["u64", rng.below(10000)],
        ["u64", 1],
        ["u64", 0],
        ["u64", 2],
        ["u64", 0],
      ]);
    case 10:
      return p9(P9_TMKDIR, tag, [["u32", fid], ["s", name()], ["u32", 0o755], ["u32", 0]]);
    case 11:
      return p9(P9_TUNLINKAT, tag, [["u32", fid], ["s", name()], ["u32", rng.chance(0.5) ? 0x200 : 0]]);
    case 12:
      return p9(P9_TRENAMEAT, tag, [["u32", fid], ["s", name()], ["u32", rng.below(12)], ["s", name()]]);
    case 13:
      return p9(P9_TSYMLINK, tag, [["u32", fid], ["s", name()], [
        "s",
        rng.pick(["/etc", "../..", "file.txt"]),
      ], ["u32", 0]]);
    case 14:
      return p9(P9_TSTATFS, tag, [["u32", fid]]);
    default:
      return p9(P9_TCLUNK, tag, [["u32", fid]]);
  }
}

/** Every file below `dir` with its size (to prove the folder outside a share was never touched). */
async function listing(dir: string): Promise<string> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const s = await Deno.lstat(`${dir}/${e.name}`);
    out.push(`${e.name}:${s.size}:${s.mtime?.getTime()}`);
  }
  return out.sort().join(",");
}

/** A clock the fuzzer moves by hand: the user network's TCP timers fire when it passes them. */
class FuzzClock implements NetClock {
  #nowNs = 0;
  readonly #timers: { deadlineNs: number; callback: (nowNs: number) => void }[] = [];
  nowNs(): number {
    return this.#nowNs;
  }
  timer(_name: string, callback: (nowNs: number) => void) {
    const t = { deadlineNs: Infinity, callback };
    this.#timers.push(t);
    return {
      arm: (deadlineNs: number) => (t.deadlineNs = deadlineNs),
      cancel: () => (t.deadlineNs = Infinity),
    };
  }
  advance(ns: number): void {
    this.#nowNs += ns;
    for (const t of this.#timers) {
      if (t.deadlineNs > this.#nowNs) continue;
      t.deadlineNs = Infinity;
      t.callback(this.#nowNs);
    }
  }
}

export const FUZZ_TARGETS: FuzzTarget[] = [
  {
    name: "console",
    queues: 2,
    make: () => {
      let input: (b: Uint8Array) => void = () => {};
      const device = new ConsoleDevice({ write() {}, onInput: (cb) => (input = cb) });
      return Promise.resolve({
        device,
        hostEvent: (rng: Rng) => input(rng.fill(new Uint8Array(rng.below(rng.chance(0.1) ? 70000 : 64)))),
        close: () => Promise.resolve(),
      });
    },
    good: (rng, q): Buf[] =>
      q === 0 ? [{ writable: 1 + rng.below(256) }] : [{ data: rng.fill(new Uint8Array(1 + rng.below(200))) }],
  },
  {
    name: "block",
    queues: 1,
    make: (rng) => {
      const disk = new MemoryDisk(64 << 10, rng.chance(0.2));
      return Promise.resolve({
        device: new BlockDevice(disk),
        hostEvent: () => {},
        close: () => Promise.resolve(),
      });
    },
    good: (rng): Buf[] => {
      const sector = rng.below(140);
      const sectors = 1 + rng.below(8);
      switch (rng.below(4)) {
        case 0:
          return [{ data: blockHeader(VIRTIO_BLK_T_IN, sector) }, { writable: 512 * sectors }, {
            writable: 1,
          }];
        case 1:
          return [
            { data: blockHeader(VIRTIO_BLK_T_OUT, sector) },
            { data: rng.fill(new Uint8Array(512 * sectors)) },
            { writable: 1 },
          ];
        case 2:
          return [{ data: blockHeader(VIRTIO_BLK_T_FLUSH, 0) }, { writable: 1 }];
        default:
          return [{ data: blockHeader(VIRTIO_BLK_T_GET_ID, 0) }, { writable: 20 }, { writable: 1 }];
      }
    },
  },
  {
    name: "net",
    queues: 2,
    make: () => {
      let deliver: (f: Uint8Array) => void = () => {};
      const device = new NetDevice({ send() {}, onFrame: (cb) => (deliver = cb) });
      return Promise.resolve({
        device,
        hostEvent: (rng: Rng) => {
          const len = rng.chance(0.05) ? MAX_FRAME_BYTES + rng.below(4) - 2 : rng.below(1600);
          deliver(rng.fill(new Uint8Array(len)));
        },
        close: () => Promise.resolve(),
      });
    },
    good: (rng, q): Buf[] => {
      if (q === 0) return [{ writable: rng.chance(0.5) ? 1526 : 12 + rng.below(3000) }];
      // A virtio_net_hdr (random offload requests included) and a frame.
      const hdr = new Uint8Array(12);
      if (rng.chance(0.3)) rng.fill(hdr);
      return [{ data: hdr }, { data: rng.fill(new Uint8Array(14 + rng.below(1500))) }];
    },
  },
  {
    name: "rng",
    queues: 1,
    make: (rng) =>
      Promise.resolve({
        device: new RngDevice({ fill: (b) => rng.fill(b.subarray(0, Math.min(b.length, 64))) }),
        hostEvent: () => {},
        close: () => Promise.resolve(),
      }),
    good: (rng): Buf[] => [{ writable: 1 + rng.below(128) }],
  },
  {
    name: "9p",
    queues: 1,
    // Real host file I/O completes on the event loop: let it run often.
    settleEvery: 128,
    make: async () => {
      const base = await Deno.makeTempDir({ prefix: "lguest-fuzz-9p-" });
      await Deno.mkdir(`${base}/share/dir`, { recursive: true });
      await Deno.mkdir(`${base}/outside`);
      await Deno.writeTextFile(`${base}/share/file.txt`, "shared\n");
      await Deno.writeTextFile(`${base}/outside/secret.txt`, "secret\n");
      await Deno.symlink(`${base}/outside`, `${base}/share/link`);
      const before = await listing(`${base}/outside`);
      const server = new P9Server(await HostFs.open(`${base}/share`, false));
      return {
        device: new P9Device(server, "fuzz"),
        hostEvent: () => {},
        violations: async () => ((await listing(`${base}/outside`)) === before ? 0 : 1),
        close: async () => {
          server.reset();
          await Deno.remove(base, { recursive: true });
        },
      };
    },
    good: (rng): Buf[] => {
      const msg = p9Request(rng);
      return [{ data: msg }, { writable: rng.chance(0.9) ? 8192 : 11 + rng.below(64) }];
    },
  },
  {
    // The user-mode router's packet parsers behind a real NetDevice: mangled ARP, DHCP, DNS, ICMP,
    // UDP and TCP frames from the guest (about 3 in 4 dropped with a counted reason, the rest
    // answered). restrict=on: no frame may make the host connect anywhere.
    name: "user-net",
    queues: 2,
    make: async () => {
      const clock = new FuzzClock();
      const net = await UserNet.open({
        restrict: true,
        clock,
        resolve: () => Promise.resolve(["192.0.2.1"]),
      });
      return {
        device: new NetDevice(net, { mac: new Uint8Array([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]) }),
        hostEvent: (rng: Rng) => clock.advance(rng.below(2_000_000_000)),
        close: () => net.close(),
      };
    },
    good: (rng, q): Buf[] => {
      if (q === 0) return [{ writable: rng.chance(0.5) ? 1526 : 12 + rng.below(3000) }];
      const rand = () => rng.u32() / 0x1_0000_0000;
      const frame = rng.pick(FRAME_TEMPLATES)();
      return [{ data: new Uint8Array(12) }, { data: rng.chance(0.2) ? frame : mangle(frame, rand) }];
    },
  },
];
