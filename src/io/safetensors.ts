// safetensors files: a lazy reader (opens the file, parses only the header, reads one
// tensor's bytes at a time with positioned reads, never the whole file) and a streaming
// atomic writer whose output is byte-identical to the reference Rust writer. Header rules
// live in safetensors-header.ts.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { FormatError, IoError, ShapeError } from '../errors.js';
import { IO_CHUNK_BYTES, writeAllSync, writeFileAtomic } from './atomic.js';
import { dataParts, headerLengthOf, parseSafetensorsHeader, planSafetensors, type SafetensorsHeader, type TensorInfo, type TensorToWrite } from './safetensors-header.js';

export {
  DTYPE_BITS, MAX_HEADER_SIZE, SAFETENSORS_DTYPES, isSafetensorsDType, parseSafetensorsHeader, tensorByteSize,
  type SafetensorsDType, type SafetensorsHeader, type TensorInfo, type TensorToWrite,
} from './safetensors-header.js';

export interface OpenOptions {
  /** Called for every positioned read (header and tensor reads); for instrumentation and tests. */
  onRead?: (position: number, length: number) => void;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Fills `target` from fd at `position`, looping over short reads; a short file is a FormatError. */
function readExact(fd: number, target: Uint8Array, position: number, path: string, onRead?: OpenOptions['onRead']): void {
  onRead?.(position, target.byteLength);
  let done = 0;
  while (done < target.byteLength) {
    const len = Math.min(IO_CHUNK_BYTES, target.byteLength - done);
    let n: number;
    try {
      n = readSync(fd, target, done, len, position + done);
    } catch (e) {
      throw new IoError(`${path}: read of ${len} bytes at offset ${position + done} failed: ${errText(e)}`, 'check that the file is readable');
    }
    if (n === 0) {
      throw new FormatError(`${path}: unexpected end of file at offset ${position + done}`, 'the file was truncated or changed while open; re-download it');
    }
    done += n;
  }
}

/** An open safetensors file. Tensor bytes are read on demand; call close() when done. */
export class SafetensorsFile {
  readonly path: string;
  readonly metadata: Record<string, string> | undefined;
  /** Tensors in data-offset order. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** File offset of the data section (8 + header length). */
  readonly dataStart: number;
  #fd: number;
  readonly #onRead: OpenOptions['onRead'];

  private constructor(path: string, fd: number, header: SafetensorsHeader, onRead: OpenOptions['onRead']) {
    this.path = path;
    this.#fd = fd;
    this.metadata = header.metadata;
    this.tensors = header.tensors;
    this.dataStart = header.dataStart;
    this.#onRead = onRead;
  }

  /** Opens `path` and validates its header (FormatError on any violation of the format). */
  static open(path: string, options: OpenOptions = {}): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new IoError(`cannot open safetensors file ${path}: ${errText(e)}`, 'check the path and its permissions');
    }
    try {
      const size = fstatSync(fd).size;
      const prefix = new Uint8Array(Math.min(8, size));
      readExact(fd, prefix, 0, path, options.onRead);
      const n = headerLengthOf(prefix, size, path);
      const head = new Uint8Array(8 + n);
      head.set(prefix);
      readExact(fd, head.subarray(8), 8, path, options.onRead);
      return new SafetensorsFile(path, fd, parseSafetensorsHeader(head, size, path), options.onRead);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** The tensor's info; FormatError naming the file when it is absent. */
  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (t === undefined) {
      const some = [...this.tensors.keys()].slice(0, 5).map((k) => JSON.stringify(k)).join(', ');
      throw new FormatError(`${this.path}: no tensor named ${JSON.stringify(name)} (${this.tensors.size} tensors)`,
        `check the tensor name; this file holds e.g. ${some || 'no tensors'}`);
    }
    return t;
  }

  /** Reads just this tensor's bytes (little-endian, C order) into a fresh array. */
  read(name: string): Uint8Array {
    const t = this.info(name);
    const out = new Uint8Array(t.end - t.begin);
    this.readInto(name, out);
    return out;
  }

  /** Reads this tensor's bytes into `target`, whose length must equal the tensor's byte size. */
  readInto(name: string, target: Uint8Array): void {
    const t = this.info(name);
    if (target.byteLength !== t.end - t.begin) {
      throw new ShapeError(`${this.path}: tensor ${JSON.stringify(name)} has ${t.end - t.begin} bytes, target has ${target.byteLength}`);
    }
    if (this.#fd < 0) throw new IoError(`${this.path}: read after close()`, 'keep the file open while reading tensors');
    readExact(this.#fd, target, this.dataStart + t.begin, this.path, this.#onRead);
  }

  /** Reads `target.byteLength` bytes of this tensor starting `byteOffset` bytes into it. */
  readRangeInto(name: string, byteOffset: number, target: Uint8Array): void {
    const t = this.info(name);
    if (byteOffset < 0 || byteOffset + target.byteLength > t.end - t.begin) {
      throw new ShapeError(`${this.path}: bytes [${byteOffset}, ${byteOffset + target.byteLength}) are outside tensor ${JSON.stringify(name)} (${t.end - t.begin} bytes)`);
    }
    if (this.#fd < 0) throw new IoError(`${this.path}: read after close()`, 'keep the file open while reading tensors');
    readExact(this.#fd, target, this.dataStart + t.begin + byteOffset, this.path, this.#onRead);
  }

  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }
}

/** The whole file as bytes (header + data), for tests and small files. */
export function serializeSafetensors(tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const plan = planSafetensors(tensors, metadata, 'serializeSafetensors');
  const out = new Uint8Array(plan.header.byteLength + plan.dataBytes);
  out.set(plan.header);
  let pos = plan.header.byteLength;
  for (const t of plan.order) {
    for (const part of dataParts(t)) {
      out.set(part, pos);
      pos += part.byteLength;
    }
  }
  return out;
}

/**
 * Writes a safetensors file, byte-identical to the reference writer, streaming the header
 * and then each tensor's bytes (no concatenated buffer) into a temp file that replaces
 * `path` only once complete and fsynced. Validation errors are thrown before any write.
 */
export function writeSafetensors(path: string, tensors: readonly TensorToWrite[], metadata?: Record<string, string>): void {
  const plan = planSafetensors(tensors, metadata, path);
  writeFileAtomic(path, (fd) => {
    writeAllSync(fd, plan.header);
    for (const t of plan.order) for (const part of dataParts(t)) writeAllSync(fd, part);
  });
}
