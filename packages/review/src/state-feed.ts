import { watch } from "node:fs";

/** A watch on a folder; `close` stops it. */
export interface FolderWatch {
  close(): void;
}

/** Starts watching a folder; `onChange` runs on every event (many per change is fine). */
export type WatchFolder = (dir: string, onChange: () => void) => FolderWatch;

/**
 * `fs.watch` on the run folder: the journal, picks, run.json and the film's record all live at
 * its top. Where the platform cannot watch, nothing; the feed's poll still sees every change.
 */
export const watchFolder: WatchFolder = (dir, onChange) => {
  try {
    const watcher = watch(dir, { persistent: false }, () => onChange());
    watcher.on("error", () => watcher.close());
    return watcher;
  } catch {
    return { close() {} };
  }
};

/** Options of `createStateFeed`. */
export interface StateFeedOptions {
  dir: string;
  /** Cheap: equal signatures mean the state did not change. */
  signature(): Promise<string>;
  /** The state as the clients receive it. */
  payload(): Promise<string>;
  /** The poll behind the watcher, for changes a watch misses (network folders). */
  pollMs: number;
  watchFolder: WatchFolder;
}

/** One watcher shared by every connected page. */
export interface StateFeed {
  /** Adds a client: it receives the latest state now (if known) and every change after; returns its leave. */
  join(send: (data: string) => void): () => void;
  /** Looks again now (an action changed something the folder does not show). */
  poke(): void;
  /** Clients connected now. */
  readonly clients: number;
}

/**
 * Feeds every connected page from one watcher and one poll, started by the first client and
 * stopped when the last leaves: a page per tab costs nothing more than one page. A change is
 * read once and the same text goes to every client.
 */
export function createStateFeed(o: StateFeedOptions): StateFeed {
  const clients = new Set<(data: string) => void>();
  let watcher: FolderWatch | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  let last = "";
  let latest: string | undefined;
  let checking = false;
  let again = false;

  // One look at a time; a change seen during a look makes one more, never a pile of them.
  const check = async () => {
    if (checking) return void (again = true);
    checking = true;
    try {
      do {
        again = false;
        if (!clients.size) break;
        try {
          const sig = await o.signature();
          if (sig === last) continue;
          const data = await o.payload();
          if (!clients.size) break;
          last = sig;
          latest = data;
          for (const send of clients) send(data);
        } catch {
          // A folder caught mid-change: the next event or tick reads it again.
        }
      } while (again);
    } finally {
      checking = false;
    }
  };
  const start = () => {
    watcher = o.watchFolder(o.dir, () => void check());
    timer = setInterval(() => void check(), o.pollMs);
    timer.unref?.();
  };
  const stop = () => {
    watcher?.close();
    clearInterval(timer);
    watcher = timer = latest = undefined;
    last = "";
  };

  return {
    join(send) {
      clients.add(send);
      if (clients.size === 1) start();
      else if (latest !== undefined) send(latest);
      void check();
      let left = false;
      return () => {
        if (left) return;
        left = true;
        clients.delete(send);
        if (!clients.size) stop();
      };
    },
    poke: () => void check(),
    get clients() {
      return clients.size;
    },
  };
}
