import { spawn } from "node:child_process";
import xterm from "@xterm/headless";
import { BIN } from "./test-cli.js";

/** The CLI on a real pseudo-terminal (util-linux `script`), its output drawn by a headless xterm. */
export interface PtyRun {
  term: InstanceType<typeof xterm.Terminal>;
  /** Types into the terminal. */
  type(text: string): void;
  /** Every line of the scrollback and the screen, as the terminal shows them now. */
  lines(): Promise<string[]>;
  /** The visible screen's lines. */
  screen(): Promise<string[]>;
  done: Promise<number | null>;
}

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** Runs `hailuo …args` on a cols×rows terminal; stdin is the terminal, so `isTTY` holds for all three streams. */
export function ptyRun(
  args: string[],
  env: Record<string, string | undefined>,
  size = { cols: 80, rows: 24 },
): PtyRun {
  const fullEnv: NodeJS.ProcessEnv = { ...process.env, ...env, TERM: "xterm-256color" };
  delete fullEnv.CI; // CI=true switches the live view off, and this test is about the live view.
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete fullEnv[k];
  const cmd = `stty cols ${size.cols} rows ${size.rows}; exec ${quote(process.execPath)} ${[BIN, ...args].map(quote).join(" ")}`;
  const child = spawn("script", ["-qec", cmd, "/dev/null"], {
    env: fullEnv,
    stdio: ["pipe", "pipe", "pipe"],
  });
  const term = new xterm.Terminal({
    cols: size.cols,
    rows: size.rows,
    scrollback: 5000,
    allowProposedApi: true,
  });
  // A pty turns "\n" into "\r\n" itself; xterm needs both to start a fresh line.
  child.stdout!.on("data", (d: Buffer) => term.write(d));
  child.stderr!.on("data", (d: Buffer) => term.write(d));
  const flushed = () => new Promise<void>((r) => term.write("", r));
  const read = async (from: number, to: number) => {
    await flushed();
    const b = term.buffer.active;
    return Array.from(
      { length: to - from },
      (_, i) => b.getLine(from + i)?.translateToString(true) ?? "",
    );
  };
  return {
    term,
    type: (text) => child.stdin!.write(text),
    lines: async () => read(0, term.buffer.active.length),
    screen: async () => read(term.buffer.active.baseY, term.buffer.active.baseY + size.rows),
    done: new Promise((resolve) => child.on("close", (code) => resolve(code))),
  };
}
