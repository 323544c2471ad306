// The files of one directory served read-only over HTTP: the set of servable paths is listed
// once at start (so a request can only name a file that was there, whatever its `..` or
// percent-encoding), and contents are read asynchronously on first use and kept in a cache
// bounded in bytes, least recently used dropped first. Text files are also offered gzipped
// (compressed once, off the event loop, and cached like the rest).
import { readdir, readFile } from "node:fs/promises";
import { extname, join, relative, sep } from "node:path";
import { promisify } from "node:util";
import { constants, gzip } from "node:zlib";

const gzipAsync = promisify(gzip);

/** Content types by extension; a file with any other extension is not served. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".woff": "font/woff",
  ".ttf": "font/ttf",
  ".mp3": "audio/mpeg",
  ".ogg": "audio/ogg",
};

/** Types worth compressing (the others are compressed already: images, fonts, sound, wasm). */
const COMPRESSIBLE = /^(text\/|application\/json|image\/svg\+xml)/;

export function contentTypeOf(path: string): string | undefined {
  return CONTENT_TYPES[extname(path).toLowerCase()];
}

export interface StaticFile {
  contentType: string;
  body: Buffer;
  /** "gzip" when `body` is the gzipped file (asked for, and the type compresses). */
  contentEncoding: "gzip" | undefined;
}

export interface StaticFilesOptions {
  /** The directory served. */
  root: string;
  /** A relative path (with `/`) is served only if this says so. */
  include: (relativePath: string) => boolean;
  /** Bytes of contents kept in memory; a file larger than this is read on every request. */
  maxCachedBytes: number;
}

export class StaticFiles {
  private readonly cache = new Map<string, Buffer>(); // insertion order = least recent first
  private readonly reading = new Map<string, Promise<Buffer>>();
  private keptBytes = 0;

  private constructor(
    private readonly root: string,
    /** Relative path → content type, of every servable file. */
    private readonly servable: ReadonlyMap<string, string>,
    private readonly maxCachedBytes: number,
  ) {}

  /** Lists the servable files under `root` (once: files added later are not served). */
  static async open(options: StaticFilesOptions): Promise<StaticFiles> {
    const entries = await readdir(options.root, { recursive: true, withFileTypes: true });
    const servable = new Map<string, string>();
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      const path = relative(options.root, join(entry.parentPath, entry.name)).replaceAll(sep, "/");
      const type = contentTypeOf(path);
      if (type && options.include(path)) servable.set(path, type);
    }
    return new StaticFiles(options.root, servable, options.maxCachedBytes);
  }

  /** How many files are servable. */
  get size(): number {
    return this.servable.size;
  }

  /** Bytes of contents kept in memory now (at most maxCachedBytes). */
  get cachedBytes(): number {
    return this.keptBytes;
  }

  has(relativePath: string): boolean {
    return this.servable.has(relativePath);
  }

  /**
   * The file at `relativePath` (exactly as listed), gzipped when `acceptsGzip` and its type
   * compresses; undefined when it is not servable.
   */
  async get(relativePath: string, acceptsGzip = false): Promise<StaticFile | undefined> {
    const contentType = this.servable.get(relativePath);
    if (contentType === undefined) return undefined;
    const contentEncoding = acceptsGzip && COMPRESSIBLE.test(contentType) ? "gzip" : undefined;
    const body = await this.contents(relativePath, contentEncoding);
    return { contentType, body, contentEncoding };
  }

  private contents(relativePath: string, encoding: "gzip" | undefined): Promise<Buffer> {
    // The two forms of one file are kept apart: a client gets only the one it asks for.
    const key = encoding ? `${relativePath}\0${encoding}` : relativePath;
    const cached = this.cache.get(key);
    if (cached) {
      this.cache.delete(key); // moved to the most recent end
      this.cache.set(key, cached);
      return Promise.resolve(cached);
    }
    let pending = this.reading.get(key);
    if (!pending) {
      const read = readFile(join(this.root, relativePath));
      pending = (
        encoding
          ? read.then((raw) => gzipAsync(raw, { level: constants.Z_BEST_COMPRESSION }))
          : read
      )
        .then((body) => {
          this.keep(key, body);
          return body;
        })
        .finally(() => this.reading.delete(key));
      this.reading.set(key, pending);
    }
    return pending;
  }

  private keep(key: string, body: Buffer): void {
    if (body.length > this.maxCachedBytes) return;
    for (const [oldKey, old] of this.cache) {
      if (this.keptBytes + body.length <= this.maxCachedBytes) break;
      this.cache.delete(oldKey);
      this.keptBytes -= old.length;
    }
    this.cache.set(key, body);
    this.keptBytes += body.length;
  }
}
