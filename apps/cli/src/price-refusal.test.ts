import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "@hailuo/emulator";
import { decodeErrors, makeTempDir, startTestEmulator } from "@hailuo/test-utils";
import { cli, manifestText } from "./test-cli.js";

// A key without the Platform API's scope cannot read the account's price: a budget must not be
// kept at a price we only assume, locally or by workers.
describe("a budget at a price fal will not confirm", () => {
  let emu: Emulator;
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  beforeAll(async () => {
    emu = await startTestEmulator({
      render: "shared",
      platformApi: "forbidden",
      progressLatencyMs: 100,
    });
    tmp = await makeTempDir();
  });
  afterAll(async () => {
    await emu.close();
    await tmp.cleanup();
  });

  it.each([
    ["a local run", []],
    [
      "a distributed run",
      [
        "--redis",
        process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
        "--prefix",
        "hailuo-price-refusal",
      ],
    ],
  ])("%s is refused with exit 2 and nothing sent, naming --price", async (_what, extra) => {
    const file = join(tmp.dir, "p.yaml");
    await writeFile(file, manifestText(2, "unconfirmed"));
    const r = await cli(
      ["run", file, "--out", join(tmp.dir, `run-${extra.length}`), "--budget", "1", ...extra],
      { FAL_EMULATOR_URL: emu.url },
    ).done;
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("[price_unknown]");
    expect(r.stderr).toContain("--price USD_PER_SECOND");
    expect(r.stderr).toContain("not verified");
    expect(emu.stats().submits.total).toBe(0);
  });

  it("with --price the run goes ahead within its budget, and the summary carries no caveat", async () => {
    const file = join(tmp.dir, "q.yaml");
    await writeFile(file, manifestText(2, "confirmed"));
    const r = await cli(
      [
        "run",
        file,
        "--out",
        join(tmp.dir, "priced"),
        "--budget",
        "1",
        "--price",
        "0.045",
        "--no-media",
      ],
      { FAL_EMULATOR_URL: emu.url },
    ).done;
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("price: $0.045/s given with --price");
    expect(r.stderr).not.toContain("warning:");
    // The money facts: one submit per scene-take, the bill equals the report, every clip decodes.
    const report = JSON.parse(await readFile(join(tmp.dir, "priced", "report.json"), "utf8")) as {
      totals: { billedUsd: number };
      items: { file: string }[];
    };
    expect(Object.values(emu.stats().submits.byInput)).toEqual([1, 1]);
    expect(emu.stats().billed.usd).toBeCloseTo(report.totals.billedUsd, 6);
    for (const item of report.items)
      expect(await decodeErrors(join(tmp.dir, "priced", item.file))).toBe("");
  });

  it.each([
    [
      "--price 0 (every clip free, every budget endless)",
      ["--price", "0"],
      "[usage]: --price must be a plain decimal number ≥ 0.000001",
    ],
    [
      "a distributed run enqueued where no backend is named (the workers' account may differ)",
      [
        "--redis",
        process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
        "--prefix",
        "hailuo-price-refusal",
      ],
      "[price_unknown]",
    ],
  ])("refused: %s", async (_what, extra, said) => {
    const file = join(tmp.dir, "z.yaml");
    await writeFile(file, manifestText(1, "zero"));
    const before = emu.stats().submits.total;
    // No FAL_EMULATOR_URL: the run itself would use the built-in emulator.
    const r = await cli(
      ["run", file, "--out", join(tmp.dir, `z-${extra[0]}`), "--budget", "1", ...extra],
      { FAL_EMULATOR_URL: undefined },
    ).done;
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(said);
    expect(emu.stats().submits.total).toBe(before);
  });

  it("without a budget the run goes on at the list price; its summary and `hailuo status` say the amounts are not verified", async () => {
    const file = join(tmp.dir, "u.yaml");
    await writeFile(file, manifestText(1, "unverified"));
    const runDir = join(tmp.dir, "unverified");
    const before = emu.stats().billed.usd;
    const r = await cli(["run", file, "--out", runDir, "--no-media"], { FAL_EMULATOR_URL: emu.url })
      .done;
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("warning: price not verified");
    expect(r.stderr).toMatch(/warning: the run of .* priced at \$0\.045\/s, the list price/);
    const status = await cli(["status", runDir], { FAL_EMULATOR_URL: emu.url }).done;
    expect(status.stdout).toMatch(/caveat: the run of .* its amounts are estimates, not verified/);
    // The emulator bills at the list price here, so the estimate happens to be the bill.
    const report = JSON.parse(await readFile(join(runDir, "report.json"), "utf8")) as {
      totals: { billedUsd: number };
    };
    expect(emu.stats().billed.usd - before).toBeCloseTo(report.totals.billedUsd, 6);
  });
});
