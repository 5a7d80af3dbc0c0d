// Just enough ustar to ship an app folder chosen in the browser to
// POST /api/apps (which takes a tar), and to read app.yaml out of a tar the
// user chose, to show a validation error at its line.
export interface TarFile {
  path: string;
  data: Uint8Array;
}

function header(path: string, size: number): Uint8Array {
  const h = new Uint8Array(512);
  const enc = new TextEncoder();
  const put = (text: string, off: number, len: number) => h.set(enc.encode(text).slice(0, len), off);
  const octal = (n: number, len: number) => n.toString(8).padStart(len - 1, "0");
  put(path, 0, 100);
  put(octal(0o644, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(size, 12), 124, 12);
  put(octal(Math.floor(Date.now() / 1000), 12), 136, 12);
  h.fill(32, 148, 156); // checksum field counts as spaces
  h[156] = 48; // '0': a regular file
  put("ustar", 257, 6);
  put("00", 263, 2);
  const sum = h.reduce((a, b) => a + b, 0);
  put(octal(sum, 7) + "\0", 148, 8);
  return h;
}

export function writeTar(files: TarFile[]): Blob {
  const parts: BlobPart[] = [];
  for (const f of files) {
    if (new TextEncoder().encode(f.path).length > 100) {
      throw new Error(f.path + ": path longer than 100 bytes");
    }
    parts.push(header(f.path, f.data.length) as BlobPart, f.data as BlobPart);
    const pad = (512 - (f.data.length % 512)) % 512;
    if (pad) parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(1024));
  return new Blob(parts, { type: "application/x-tar" });
}

export function readTar(buf: Uint8Array): TarFile[] {
  const out: TarFile[] = [];
  const dec = new TextDecoder();
  for (let off = 0; off + 512 <= buf.length; ) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const name = dec.decode(h.subarray(0, 100)).replace(/\0.*$/s, "");
    const prefix = dec.decode(h.subarray(345, 500)).replace(/\0.*$/s, "");
    const size = parseInt(dec.decode(h.subarray(124, 136)).replace(/\0.*$/s, "").trim() || "0", 8);
    const type = String.fromCharCode(h[156] || 48);
    const path = (prefix ? prefix + "/" : "") + name;
    if (type === "0") out.push({ path, data: buf.slice(off + 512, off + 512 + size) });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}
