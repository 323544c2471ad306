// The files of one directory served read-only over HTTP: the set of servable paths is listed
// once at start (so a request can only name a file that was there, whatever its `..` or
// percent-encoding), and contents are read asynchronously on first use and kept in a cache
// bounded in bytes, least recently used dropped first.
import { readdir, readFile } from "node:fs/promises";
import { extname, join, relative, sep } from "node:path";

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

export function contentTypeOf(path: string): string | undefined {
  return CONTENT_TYPES[extname(path).toLowerCase()];
}

export interface StaticFile {
  contentType: string;
  body: Buffer;
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

  /** The file at `relativePath` (exactly as listed), or undefined when it is not servable. */
  async get(relativePath: string): Promise<StaticFile | undefined> {
    const contentType = this.servable.get(relativePath);
    if (contentType === undefined) return undefined;
    return { contentType, body: await this.contents(relativePath) };
  }

  private contents(relativePath: string): Promise<Buffer> {
    const cached = this.cache.get(relativePath);
    if (cached) {
      this.cache.delete(relativePath); // moved to the most recent end
      this.cache.set(relativePath, cached);
      return Promise.resolve(cached);
    }
    let pending = this.reading.get(relativePath);
    if (!pending) {
      pending = readFile(join(this.root, relativePath))
        .then((body) => {
          this.keep(relativePath, body);
          return body;
        })
        .finally(() => this.reading.delete(relativePath));
      this.reading.set(relativePath, pending);
    }
    return pending;
  }

  private keep(relativePath: string, body: Buffer): void {
    if (body.length > this.maxCachedBytes) return;
    for (const [path, old] of this.cache) {
      if (this.keptBytes + body.length <= this.maxCachedBytes) break;
      this.cache.delete(path);
      this.keptBytes -= old.length;
    }
    this.cache.set(relativePath, body);
    this.keptBytes += body.length;
  }
}
