/**
 * Tests for the 9P2000.L server over a confined host folder (issue #12): each message Linux's 9p
 * client uses, against a real temporary directory; confinement (".." at the root, symlinks on the
 * way or at the end, names with "/" or "..", a directory swapped for a symlink after the walk);
 * ",ro" refusing every change; and malformed messages that must get Rlerror, never an exception.
 */
import { assert, assertEquals } from "../assert.ts";
import { EROFS, HostFs } from "../../lib/backends/host_fs.ts";
import {
  P9_RLERROR,
  P9_TATTACH,
  P9_TCLUNK,
  P9_TFSYNC,
  P9_TGETATTR,
  P9_TLCREATE,
  P9_TLINK,
  P9_TLOPEN,
  P9_TMKDIR,
  P9_TREAD,
  P9_TREADDIR,
  P9_TREADLINK,
  P9_TRENAME,
  P9_TRENAMEAT,
  P9_TSETATTR,
  P9_TSTATFS,
  P9_TSYMLINK,
  P9_TUNLINKAT,
  P9_TVERSION,
  P9_TWALK,
  P9_TWRITE,
  P9_TXATTRWALK,
  P9Server,
} from "../../lib/backends/p9_server.ts";
import { call, Msg, type Reply } from "./p9_client.ts";

const ENOTDIR = 20;
const EINVAL = 22;
const ELOOP = 40;
const EBADF = 9;
const EPROTO = 71;
const ENODATA = 61;

interface Session {
  dir: string;
  outside: string;
  server: P9Server;
  close(): Promise<void>;
}

/** A share with hello.txt, sub/inner.txt, and an outside folder holding secret.txt. */
async function session(readOnly = false): Promise<Session> {
  const base = await Deno.makeTempDir({ prefix: "lguest-9p-" });
  const dir = `${base}/share`;
  const outside = `${base}/outside`;
  await Deno.mkdir(`${dir}/sub`, { recursive: true });
  await Deno.mkdir(outside);
  await Deno.writeTextFile(`${dir}/hello.txt`, "hello from host\n");
  await Deno.writeTextFile(`${dir}/sub/inner.txt`, "inner\n");
  await Deno.writeTextFile(`${outside}/secret.txt`, "SECRET\n");
  await Deno.symlink(outside, `${dir}/abs_link`);
  await Deno.symlink("../outside", `${dir}/rel_link`);
  await Deno.symlink(`${outside}/secret.txt`, `${dir}/secret_link`);
  const server = new P9Server(await HostFs.open(dir, readOnly));
  assertEquals(
    (await call(server, new Msg().u32(131072).str("9P2000.L").bytes(P9_TVERSION, 0xFFFF))).str(),
    "",
  );
  return {
    dir,
    outside,
    server,
    close: async () => {
      server.reset();
      await Deno.remove(base, { recursive: true });
    },
  };
}

const attach = (s: Session, fid = 0) =>
  call(s.server, new Msg().u32(fid).u32(0xFFFF_FFFF).str("root").str("").u32(0).bytes(P9_TATTACH));
const walk = (s: Session, fid: number, newfid: number, ...names: string[]) => {
  const m = new Msg().u32(fid).u32(newfid).u16(names.length);
  for (const n of names) m.str(n);
  return call(s.server, m.bytes(P9_TWALK));
};
const lopen = (s: Session, fid: number, flags: number) =>
  call(s.server, new Msg().u32(fid).u32(flags).bytes(P9_TLOPEN));
const read = (s: Session, fid: number, offset: number, count: number) =>
  call(s.server, new Msg().u32(fid).u64(offset).u32(count).bytes(P9_TREAD));
const clunk = (s: Session, fid: number) => call(s.server, new Msg().u32(fid).bytes(P9_TCLUNK));
const text = (r: Reply) => new TextDecoder().decode(r.take(r.u32()));

function ok(r: Reply, type: number): Reply {
  assertEquals(
    [r.type, r.errno],
    [type + 1, -1],
    `expected R${type + 1}, got type ${r.type} errno ${r.errno}`,
  );
  return r;
}
function err(r: Reply, errno: number): void {
  assertEquals([r.type, r.errno], [P9_RLERROR, errno]);
}

Deno.test("P9Server negotiates 9P2000.L and msize, and answers other versions with unknown", async () => {
  const s = await session();
  try {
    const r = await call(s.server, new Msg().u32(1 << 30).str("9P2000.L").bytes(P9_TVERSION, 0xFFFF));
    assertEquals([r.type, r.tag, r.u32(), r.str()], [P9_TVERSION + 1, 0xFFFF, 512 << 10, "9P2000.L"]);
    const u = await call(s.server, new Msg().u32(8192).str("9P2000.u").bytes(P9_TVERSION));
    assertEquals([u.u32(), u.str()], [8192, "unknown"]);
  } finally {
    await s.close();
  }
});

Deno.test("P9Server serves walk, lopen, read, write, lcreate, readdir, getattr, setattr, mkdir, rename, symlink, link, unlinkat, statfs, fsync", async () => {
  const s = await session();
  try {
    ok(await attach(s), P9_TATTACH);
    // Walk and read.
    const w = ok(await walk(s, 0, 1, "hello.txt"), P9_TWALK);
    assertEquals(w.u16(), 1);
    ok(await lopen(s, 1, 0), P9_TLOPEN);
    assertEquals(text(ok(await read(s, 1, 6, 100), P9_TREAD)), "from host\n");
    ok(await clunk(s, 1), P9_TCLUNK);
    // Create, write, fsync.
    ok(await walk(s, 0, 2), P9_TWALK);
    const c = ok(
      await call(s.server, new Msg().u32(2).str("new.txt").u32(0o102).u32(0o644).u32(0).bytes(P9_TLCREATE)),
      P9_TLCREATE,
    );
    assertEquals(c.qid().type, 0);
    const data = new TextEncoder().encode("written by the guest");
    assertEquals(
      ok(await call(s.server, new Msg().u32(2).u64(0).u32(data.length).raw(data).bytes(P9_TWRITE)), P9_TWRITE)
        .u32(),
      data.length,
    );
    ok(await call(s.server, new Msg().u32(2).u32(1).bytes(P9_TFSYNC)), P9_TFSYNC);
    assertEquals(await Deno.readTextFile(`${s.dir}/new.txt`), "written by the guest");
    ok(await clunk(s, 2), P9_TCLUNK);
    // getattr, setattr (truncate + chmod).
    ok(await walk(s, 0, 3, "new.txt"), P9_TWALK);
    const g = ok(await call(s.server, new Msg().u32(3).u64(0x7FF).bytes(P9_TGETATTR)), P9_TGETATTR);
    g.u64();
    g.qid();
    assertEquals(g.u32() & 0o170777, 0o100644 & ~Deno.umask());
    g.u32();
    g.u32();
    g.u64();
    g.u64();
    assertEquals(g.u64(), data.length);
    ok(
      await call(
        s.server,
        new Msg().u32(3).u32(0x1 | 0x8).u32(0o600).u32(0).u32(0).u64(7).u64(0).u64(0).u64(0).u64(0).bytes(
          P9_TSETATTR,
        ),
      ),
      P9_TSETATTR,
    );
    assertEquals(await Deno.readTextFile(`${s.dir}/new.txt`), "written");
    assertEquals((await Deno.stat(`${s.dir}/new.txt`)).mode! & 0o777, 0o600);
    // mkdir, renameat, rename, symlink, readlink, link, unlinkat.
    ok(await call(s.server, new Msg().u32(0).str("d").u32(0o755).u32(0).bytes(P9_TMKDIR)), P9_TMKDIR);
    ok(
      await call(s.server, new Msg().u32(0).str("new.txt").u32(0).str("moved.txt").bytes(P9_TRENAMEAT)),
      P9_TRENAMEAT,
    );
    ok(await walk(s, 0, 4, "d"), P9_TWALK);
    // fid 3 followed the rename (it named new.txt): Trename moves it on into d/.
    ok(await call(s.server, new Msg().u32(3).u32(4).str("in_d.txt").bytes(P9_TRENAME)), P9_TRENAME);
    assertEquals(await Deno.readTextFile(`${s.dir}/d/in_d.txt`), "written");
    ok(
      await call(s.server, new Msg().u32(4).str("sl").str("in_d.txt").u32(0).bytes(P9_TSYMLINK)),
      P9_TSYMLINK,
    );
    ok(await walk(s, 4, 5, "sl"), P9_TWALK);
    assertEquals(
      ok(await call(s.server, new Msg().u32(5).bytes(P9_TREADLINK)), P9_TREADLINK).str(),
      "in_d.txt",
    );
    ok(await call(s.server, new Msg().u32(4).u32(3).str("hard.txt").bytes(P9_TLINK)), P9_TLINK);
    assertEquals(await Deno.readTextFile(`${s.dir}/d/hard.txt`), "written");
    // readdir lists ".", ".." and the entries, with next-offsets that resume.
    ok(await walk(s, 0, 6, "d"), P9_TWALK);
    ok(await lopen(s, 6, 0o200000), P9_TLOPEN);
    const names: string[] = [];
    for (let offset = 0;;) {
      const r = ok(
        await call(s.server, new Msg().u32(6).u64(offset).u32(60).bytes(P9_TREADDIR)),
        P9_TREADDIR,
      );
      const end = 11 + r.u32();
      if (end === 11) break;
      let pos = 11;
      while (pos < end) {
        r.qid();
        offset = r.u64();
        r.u8();
        const n = r.str();
        names.push(n);
        pos += 13 + 8 + 1 + 2 + new TextEncoder().encode(n).length;
      }
    }
    assertEquals(names.sort(), [".", "..", "hard.txt", "in_d.txt", "sl"]);
    for (const n of ["sl", "hard.txt", "in_d.txt"]) {
      ok(await call(s.server, new Msg().u32(4).str(n).u32(0).bytes(P9_TUNLINKAT)), P9_TUNLINKAT);
    }
    err(await call(s.server, new Msg().u32(0).str("sub").u32(0).bytes(P9_TUNLINKAT)), 21);
    ok(await call(s.server, new Msg().u32(0).str("d").u32(0x200).bytes(P9_TUNLINKAT)), P9_TUNLINKAT);
    assertEquals(
      (await Array.fromAsync(Deno.readDir(s.dir))).map((e) => e.name).sort(),
      [
        "abs_link",
        "hello.txt",
        "moved.txt",
        "rel_link",
        "secret_link",
        "sub",
      ].filter((n) => n !== "moved.txt"),
    );
    const st = ok(await call(s.server, new Msg().u32(0).bytes(P9_TSTATFS)), P9_TSTATFS);
    assertEquals(st.u32(), 0x01021997);
    assert(st.u32() > 0);
    err(await call(s.server, new Msg().u32(0).u32(9).str("user.x").bytes(P9_TXATTRWALK)), ENODATA);
  } finally {
    await s.close();
  }
});

Deno.test("P9Server keeps every path inside the share: .., symlinks on the way, bad names", async () => {
  const s = await session();
  try {
    const root = ok(await attach(s), P9_TATTACH).qid();
    // ".." at the root is the root (as on Linux at "/").
    const up = ok(await walk(s, 0, 1, "..", "..", ".."), P9_TWALK);
    assertEquals(up.u16(), 3);
    for (let i = 0; i < 3; i++) assertEquals(up.qid(), root);
    // A partial walk: only ".." succeeded (it stayed at the root), and newfid was not made.
    assertEquals(ok(await walk(s, 0, 2, "..", "outside", "secret.txt"), P9_TWALK).u16(), 1);
    err(await lopen(s, 2, 0), EBADF);
    // Symlinks are the guest's to follow: the server never walks through one.
    // (A walk that stops part way answers the qids it got and makes no newfid.)
    assertEquals(ok(await walk(s, 0, 2, "abs_link", "secret.txt"), P9_TWALK).u16(), 1);
    assertEquals(ok(await walk(s, 0, 2, "rel_link", "secret.txt"), P9_TWALK).u16(), 1);
    err(await lopen(s, 2, 0), EBADF);
    ok(await walk(s, 0, 2, "abs_link"), P9_TWALK);
    err(await walk(s, 2, 3, "secret.txt"), ENOTDIR);
    ok(await clunk(s, 2), P9_TCLUNK);
    ok(await walk(s, 0, 2, "secret_link"), P9_TWALK);
    err(await lopen(s, 2, 0), ELOOP);
    assertEquals(
      ok(await call(s.server, new Msg().u32(2).bytes(P9_TREADLINK)), P9_TREADLINK).str(),
      `${s.outside}/secret.txt`,
    );
    // Names are one component.
    for (const bad of ["a/b", "..", ".", "", "x\0y"]) {
      err(await call(s.server, new Msg().u32(0).str(bad).u32(0o755).u32(0).bytes(P9_TMKDIR)), EINVAL);
    }
    err(await walk(s, 0, 3, "sub/inner.txt"), EINVAL);
    err(
      await call(
        s.server,
        new Msg().u32(0).str("hello.txt").u32(0).str("../escaped.txt").bytes(P9_TRENAMEAT),
      ),
      EINVAL,
    );
    // A directory walked earlier, swapped on the host for a symlink to the outside before the open.
    ok(await walk(s, 0, 4, "sub", "inner.txt"), P9_TWALK);
    await Deno.rename(`${s.dir}/sub`, `${s.dir}/sub.old`);
    await Deno.writeTextFile(`${s.outside}/inner.txt`, "SECRET\n");
    await Deno.symlink(s.outside, `${s.dir}/sub`);
    err(await lopen(s, 4, 0), ENOTDIR);
    ok(await walk(s, 0, 5, "sub"), P9_TWALK);
    err(await call(s.server, new Msg().u32(5).str("planted").u32(0o755).u32(0).bytes(P9_TMKDIR)), ENOTDIR);
    assertEquals((await Array.fromAsync(Deno.readDir(s.outside))).map((e) => e.name).sort(), [
      "inner.txt",
      "secret.txt",
    ]);
  } finally {
    await s.close();
  }
});

Deno.test("P9Server on a ,ro share refuses every change with EROFS and still serves reads", async () => {
  const s = await session(true);
  try {
    ok(await attach(s), P9_TATTACH);
    ok(await walk(s, 0, 1, "hello.txt"), P9_TWALK);
    err(await lopen(s, 1, 2), EROFS);
    err(await lopen(s, 1, 0o1000), EROFS);
    ok(await lopen(s, 1, 0), P9_TLOPEN);
    assertEquals(text(ok(await read(s, 1, 0, 5), P9_TREAD)), "hello");
    err(await call(s.server, new Msg().u32(1).u64(0).u32(1).raw(Uint8Array.of(65)).bytes(P9_TWRITE)), EROFS);
    ok(await walk(s, 0, 2), P9_TWALK);
    err(
      await call(s.server, new Msg().u32(2).str("n").u32(0o102).u32(0o644).u32(0).bytes(P9_TLCREATE)),
      EROFS,
    );
    err(await call(s.server, new Msg().u32(0).str("d").u32(0o755).u32(0).bytes(P9_TMKDIR)), EROFS);
    err(await call(s.server, new Msg().u32(0).str("l").str("x").u32(0).bytes(P9_TSYMLINK)), EROFS);
    err(await call(s.server, new Msg().u32(0).str("hello.txt").u32(0).bytes(P9_TUNLINKAT)), EROFS);
    err(await call(s.server, new Msg().u32(0).str("hello.txt").u32(0).str("h2").bytes(P9_TRENAMEAT)), EROFS);
    err(await call(s.server, new Msg().u32(0).u32(1).str("h3").bytes(P9_TLINK)), EROFS);
    ok(await walk(s, 0, 3, "hello.txt"), P9_TWALK);
    err(
      await call(
        s.server,
        new Msg().u32(3).u32(0x8).u32(0).u32(0).u32(0).u64(0).u64(0).u64(0).u64(0).u64(0).bytes(P9_TSETATTR),
      ),
      EROFS,
    );
    assertEquals(await Deno.readTextFile(`${s.dir}/hello.txt`), "hello from host\n");
    assertEquals((await Array.fromAsync(Deno.readDir(s.dir))).length, 5);
  } finally {
    await s.close();
  }
});

Deno.test("P9Server answers malformed messages with Rlerror and the request's tag, never an exception", async () => {
  const s = await session();
  try {
    ok(await attach(s), P9_TATTACH);
    // Truncated fields.
    err(await call(s.server, new Msg().u16(0).bytes(P9_TWALK, 7)), EPROTO);
    err(await call(s.server, new Msg().u32(0).u32(1).u16(2).str("sub").bytes(P9_TWALK)), EPROTO);
    err(await call(s.server, new Msg().u32(0).u32(1).u16(1).u16(500).bytes(P9_TWALK)), EPROTO);
    // A write whose count runs past the message.
    ok(await walk(s, 0, 1, "hello.txt"), P9_TWALK);
    ok(await lopen(s, 1, 2), P9_TLOPEN);
    err(
      await call(s.server, new Msg().u32(1).u64(0).u32(1000).raw(new Uint8Array(10)).bytes(P9_TWRITE)),
      EPROTO,
    );
    // Unknown fids, types, huge offsets and counts, a read larger than the reply buffer.
    err(await read(s, 99, 0, 10), EBADF);
    err(await call(s.server, new Msg().bytes(200)), 95);
    err(await read(s, 1, 2 ** 63, 10), EINVAL);
    const big = await call(s.server, new Msg().u32(1).u64(0).u32(0xFFFF_FFFF).bytes(P9_TREAD), 64);
    assertEquals([big.type, big.size], [P9_TREAD + 1, 11 + 16]);
    err(await walk(s, 0, 0xFFFF_FFFF, "sub"), EBADF);
    err(await walk(s, 0, 1, "sub"), EBADF); // fid 1 in use
    // Random messages, every type, with a fixed seed: always one well-formed reply.
    let x = 0x9E3779B9;
    const rnd = () => (x ^= x << 13, x ^= x >>> 17, x ^= x << 5, x >>> 0);
    for (let i = 0; i < 3000; i++) {
      const body = new Uint8Array(rnd() % 64).map(() => rnd() & (rnd() % 4 === 0 ? 0xFF : 0x07));
      const msg = new Msg().raw(body).bytes(rnd() % 130, i & 0xFFFF);
      const r = await call(s.server, msg);
      assertEquals(r.tag, i & 0xFFFF);
      assertEquals(r.size, r.bytes.length);
    }
    assert(s.server.fidCount <= 4096);
    // Nothing the random messages did reached outside the share.
    assertEquals((await Array.fromAsync(Deno.readDir(s.outside))).map((e) => e.name), ["secret.txt"]);
  } finally {
    await s.close();
  }
});

Deno.test("P9Server works with Deno's permissions narrowed to the shared folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lguest-9p-narrow-" });
  const lib = new URL("../../lib/", import.meta.url).pathname;
  const script = `${dir}.ts`;
  await Deno.writeTextFile(
    script,
    `import { errnoOf, HostFs } from "${lib}backends/host_fs.ts";
     import { P9Server } from "${lib}backends/p9_server.ts";
     const fs = await HostFs.open(${JSON.stringify(dir)}, false);
     const { file } = await fs.createFile([], "a.txt", 0o644);
     await file.write(new TextEncoder().encode("narrow"));
     file.close();
     await fs.mkdir([], "d", 0o755);
     await fs.rename([], "a.txt", ["d"], "b.txt");
     // Deno allows Deno.symlink only with unscoped permissions: the guest gets EACCES, nothing worse.
     let symlinkErrno = 0;
     try { await fs.symlink(["d"], "l", "b.txt"); } catch (e) { symlinkErrno = errnoOf(e); }
     console.log((await fs.listDir(["d"], 10)).sort().join(","), (await fs.statfs()).bsize > 0, new P9Server(fs).msize, symlinkErrno);`,
  );
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        `--allow-read=${dir},${lib},${script}`,
        `--allow-write=${dir}`,
        "--allow-sys=statfs",
        script,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    assertEquals(text, "b.txt true 524288 13", new TextDecoder().decode(out.stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(script);
  }
});
