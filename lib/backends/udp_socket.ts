/**
 * UDP sockets for the user-mode network, the one seam over `node:dgram`: Deno.listenDatagram is
 * still behind --unstable-net, which a `deno run` of a URL or a compiled launcher would not have.
 */
import dgram from "node:dgram";

export class UdpSocket {
  readonly #socket: dgram.Socket;
  #closed = false;

  private constructor(socket: dgram.Socket) {
    this.#socket = socket;
  }

  /** Binds an IPv4 socket to `hostname`:`port` (0: any free port). */
  static open(hostname: string, port: number): Promise<UdpSocket> {
    return new Promise((resolve, reject) => {
      const s = dgram.createSocket("udp4");
      s.once("error", reject);
      s.bind(port, hostname, () => {
        s.off("error", reject);
        s.on("error", () => {}); // a send to an unreachable port reports here; the datagram is lost, as UDP allows
        resolve(new UdpSocket(s));
      });
    });
  }

  get localPort(): number {
    return this.#socket.address().port;
  }

  onMessage(cb: (data: Uint8Array, hostname: string, port: number) => void): void {
    this.#socket.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
      cb(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength).slice(), rinfo.address, rinfo.port);
    });
  }

  send(data: Uint8Array, hostname: string, port: number): void {
    if (this.#closed) return;
    try {
      this.#socket.send(data, port, hostname);
    } catch {
      // Closed meanwhile or a bad address: UDP may lose datagrams.
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#socket.close();
    } catch { /* already closed */ }
  }
}
