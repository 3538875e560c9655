// A loopback stand-in for the Hugging Face Hub's resolve endpoints, serving model
// directories from disk: /{repo}/resolve/{rev}/{file} answers with X-Repo-Commit and a
// git-blob ETag, *.safetensors redirect (302, X-Linked-Etag = sha256, X-Linked-Size)
// to /cdn/<sha256> as LFS files do, which honours Range. 404s carry X-Error-Code
// (RepositoryNotFound, RevisionNotFound, EntryNotFound); with a token set, requests
// without "Authorization: Bearer <token>" get 401. Every request is logged.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface HubRequest {
  method: string;
  url: string;
  range: string | undefined;
  authorization: string | undefined;
}

export interface HubServer {
  endpoint: string;
  /** Commit sha of every repo (one commit each, same sha). */
  sha: string;
  requests: HubRequest[];
  close(): Promise<void>;
}

interface ServedFile {
  bytes: Buffer;
  gitSha: string;
  sha256: string;
}

export const COMMIT = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';

export function gitBlobSha(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.byteLength}\0`).update(bytes).digest('hex');
}

function load(dir: string): Map<string, ServedFile> {
  const files = new Map<string, ServedFile>();
  for (const name of readdirSync(dir)) {
    const bytes = readFileSync(join(dir, name));
    files.set(name, { bytes, gitSha: gitBlobSha(bytes), sha256: createHash('sha256').update(bytes).digest('hex') });
  }
  return files;
}

function notFound(res: ServerResponse, code: string): void {
  res.writeHead(404, { 'x-error-code': code, 'content-type': 'text/plain' }).end(code);
}

function sendBytes(req: IncomingMessage, res: ServerResponse, bytes: Buffer, headers: Record<string, string>): void {
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  const start = m === null ? 0 : Number(m[1]);
  const end = m === null || m[2] === '' ? bytes.byteLength - 1 : Math.min(Number(m[2]), bytes.byteLength - 1);
  const body = bytes.subarray(start, end + 1);
  const h = { ...headers, 'content-length': String(body.byteLength), 'accept-ranges': 'bytes' };
  if (m === null) res.writeHead(200, h);
  else res.writeHead(206, { ...h, 'content-range': `bytes ${start}-${end}/${bytes.byteLength}` });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Serves `repos` (repo id -> directory) on 127.0.0.1 at a random port. */
export async function startHubServer(repos: Record<string, string>, opts: { token?: string } = {}): Promise<HubServer> {
  const served = new Map(Object.entries(repos).map(([id, dir]) => [id, load(dir)]));
  const byHash = new Map<string, ServedFile>();
  for (const files of served.values()) for (const f of files.values()) byHash.set(f.sha256, f);
  const requests: HubRequest[] = [];
  let origin = '';
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    requests.push({ method: req.method ?? '', url, range: req.headers.range, authorization: req.headers.authorization });
    if (opts.token !== undefined && req.headers.authorization !== `Bearer ${opts.token}`) {
      res.writeHead(401, { 'x-error-code': 'GatedRepo' }).end('unauthorized');
      return;
    }
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url);
    if (cdn !== null) {
      const f = byHash.get(cdn[1] ?? '');
      if (f === undefined) notFound(res, 'EntryNotFound');
      else sendBytes(req, res, f.bytes, { etag: `"${f.sha256}"` });
      return;
    }
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url);
    const files = m === null ? undefined : served.get(m[1] ?? '');
    if (m === null || files === undefined) return notFound(res, 'RepositoryNotFound');
    const rev = decodeURIComponent(m[2] ?? '');
    if (rev !== 'main' && rev !== COMMIT) return notFound(res, 'RevisionNotFound');
    const f = files.get(decodeURIComponent(m[3] ?? ''));
    if (f === undefined) return notFound(res, 'EntryNotFound');
    if ((m[3] ?? '').endsWith('.safetensors')) {
      res.writeHead(302, {
        location: `${origin}/cdn/${f.sha256}`, 'x-repo-commit': COMMIT, 'x-linked-etag': `"${f.sha256}"`,
        'x-linked-size': String(f.bytes.byteLength), etag: `"${f.gitSha}"`, 'content-length': '0',
      }).end();
      return;
    }
    sendBytes(req, res, f.bytes, { 'x-repo-commit': COMMIT, etag: `"${f.gitSha}"` });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint: origin, sha: COMMIT, requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
