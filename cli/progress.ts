/**
 * Progress output for long work: a live one-line bar on a TTY, plain periodic
 * lines otherwise (logs, CI).
 *
 * @module
 */

/** Formats seconds as `1h02m`, `3m05s` or `12s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s >= 3600) {
    return `${Math.floor(s / 3600)}h${
      String(Math.floor((s % 3600) / 60)).padStart(2, "0")
    }m`;
  }
  if (s >= 60) {
    return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  }
  return `${s}s`;
}

/** A progress reporter for `done` of `total` units. */
export class Progress {
  #total: number;
  #started = performance.now();
  #tty: boolean;
  #lastPlain = 0;
  #label: string;
  #startDone: number;

  /**
   * Starts a reporter.
   *
   * @param label What is being done (`pretrain`).
   * @param total Units in all.
   * @param startDone Units already done (on resume), excluded from the rate.
   */
  constructor(label: string, total: number, startDone = 0) {
    this.#label = label;
    this.#total = total;
    this.#startDone = startDone;
    this.#tty = Deno.stderr.isTerminal();
  }

  /**
   * Reports progress.
   *
   * @param done Units done.
   * @param detail Text after the counts (loss, img/s).
   */
  update(done: number, detail: string): void {
    const elapsed = (performance.now() - this.#started) / 1000;
    const rate = (done - this.#startDone) / Math.max(elapsed, 1e-9);
    const eta = formatDuration((this.#total - done) / rate);
    const pct = Math.floor((100 * done) / this.#total);
    if (this.#tty) {
      const width = 20;
      const fill = Math.round((width * done) / this.#total);
      const bar = "█".repeat(fill) + "░".repeat(width - fill);
      const line =
        `${this.#label} ${bar} ${pct}% ${done}/${this.#total} ${detail} ETA ${eta}`;
      Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[2K${line}`));
    } else if (elapsed - this.#lastPlain >= 5 || done === this.#total) {
      this.#lastPlain = elapsed;
      console.error(
        `${this.#label} ${done}/${this.#total} (${pct}%) ${detail} ETA ${eta}`,
      );
    }
  }

  /** Ends the live line. */
  done(): void {
    if (this.#tty) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  }
}
