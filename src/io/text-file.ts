// Reading text files strictly: invalid UTF-8 is a FormatError naming the file and the
// byte offset (Node's 'utf8' decoding would silently turn it into U+FFFD and a config
// field would then fail later with a confusing message, or not at all).
import { readFileSync } from 'node:fs';
import { FormatError, IoError } from '../errors.js';

/** The file's text; IoError when unreadable (with `readHint`), FormatError on invalid UTF-8. */
export function readUtf8File(path: string, readHint = 'check the path and its permissions'): string {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new IoError(`cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`, readHint);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    // The longest decodable prefix (decodability of prefixes is monotone), found by halving steps.
    let good = 0;
    for (let step = 1 << 30; step >= 1; step >>= 1) {
      if (good + step <= bytes.length && canDecodePrefix(bytes, good + step)) good += step;
    }
    throw new FormatError(`${path}: not valid UTF-8 (first bad byte near offset ${good})`, 'the file is corrupt or in another encoding; re-download it or re-save it as UTF-8');
  }
}

/** Whether the first n bytes are valid UTF-8 up to a possibly incomplete last character. */
function canDecodePrefix(bytes: Uint8Array, n: number): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, n), { stream: true });
    return true;
  } catch {
    return false;
  }
}
