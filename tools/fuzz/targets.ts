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
import type { Buf } from "../../tests/virtio/virtio_driver.ts";
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
];
