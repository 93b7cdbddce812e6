import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeErrors, ffprobeFacts, waitFor } from "@hailuo/test-utils";
import { BIN, cli, cliFixture, manifestText, stdoutOf } from "./test-cli.js";
import { expectDocumented } from "./test-events.js";

describe("hailuo CLI", () => {
  const fx = cliFixture();

  it("exits 2 with file:line messages and submits nothing for a bad manifest", async () => {
    const file = join(fx.dir, "bad.yaml");
    await writeFile(
      file,
      "name: bad\nscenes:\n  - id: ok\n    prompt: fine\n  - id: x/../../y\n    prompt: fine too\n    duraton: 6\n",
    );
    const before = fx.emu.stats().submits.total;
    const r = await cli(["run", file], { FAL_EMULATOR_URL: fx.emu.url }).done;
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:5:9: scenes[1].id: id "x/../../y" is not a safe file name`);
    expect(r.stderr).toContain(
      `${file}:7:5: scenes[1].duraton: unknown key; did you mean "duration"?`,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(fx.emu.stats().submits.total).toBe(before);
    const usage = await cli(["run"]).done;
    expect(usage.code).toBe(2);
    const missing = await cli(["validate", join(fx.dir, "nope.yaml")]).done;
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("no such file");
  });

  it("estimates at the live price, dry-runs and validates without submitting anything", async () => {
    const file = join(fx.dir, "est.csv");
    await writeFile(file, "id,prompt,duration\na,first,6\nb,second,10\n");
    const before = fx.emu.stats().submits.total;
    const est = await cli(["estimate", file, "--json"], { FAL_EMULATOR_URL: fx.emu.url }).done;
    expect(est.code).toBe(0);
    expect(expectDocumented(est.stdout)).toEqual([
      expect.objectContaining({
        type: "estimate",
        generations: 2,
        seconds: 16,
        usd: 0.72,
        price: {
          usdPerSecond: 0.045,
          unitPriceUsd: 0.045,
          unit: "second",
          source: "fal pricing API",
          verified: true,
        },
      }),
    ]);
    // The account's live price, from the (emulated) pricing API: change it and the estimate follows.
    fx.emu.setPrice(0.05);
    const dearer = await cli(["estimate", file], { FAL_EMULATOR_URL: fx.emu.url }).done;
    fx.emu.setPrice(0.045);
    expect(dearer.stdout).toContain("16 s of video, $0.80 at $0.05/s");
    expect(dearer.stdout).toContain("price: $0.05/s from the fal pricing API");
    const offline = await cli(["estimate", file], { FAL_EMULATOR_URL: undefined }).done;
    expect(offline.stdout).toContain(
      "price: $0.045/s from the built-in price table (no FAL_KEY or FAL_EMULATOR_URL set: the built-in emulator's price)",
    );
    const dry = await cli(["run", file, "--dry-run", "--out", join(fx.dir, "dry")], {
      FAL_EMULATOR_URL: fx.emu.url,
    }).done;
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(
      "dry run: 2 clip(s): 0 reused, 0 to resume, 2 new → at most $0.72",
    );
    const val = await cli(["validate", file]).done;
    expect(val.stdout).toContain('ok — "est", 2 scene(s), 2 generation(s), $0.72');
    expect(fx.emu.stats().submits.total).toBe(before);
  });

  it("behaves like the tools people trust: --version, short usage errors, quiet on a closed pipe, a dry run that knows the cache, a line saying where money goes", async () => {
    const version = await cli(["--version"]).done;
    expect([version.code, version.stdout.trim()]).toEqual([
      0,
      JSON.parse(await readFile(join(import.meta.dirname, "../package.json"), "utf8")).version,
    ]);
    const usage = await cli(["run", "x.yaml", "--bogus"]).done;
    expect(usage.code).toBe(2);
    expect(usage.stderr.trim().split("\n")).toEqual([
      "error: unknown option '--bogus'",
      "see `hailuo run --help`",
    ]);
    // A reader that stops early closes the pipe: no stack trace, no EPIPE.
    const file = join(fx.dir, "pipe.yaml");
    await writeFile(file, manifestText(3, "pipe"));
    const piped = await promisify(execFile)(
      "sh",
      [
        "-c",
        `"${process.execPath}" "${BIN}" run "${file}" --dry-run --out "${join(fx.dir, "pipe-run")}" | head -1`,
      ],
      { env: { ...process.env, FAL_EMULATOR_URL: fx.emu.url } },
    );
    expect(piped.stdout.split("\n").filter(Boolean)).toHaveLength(1);
    expect(piped.stderr).not.toMatch(/EPIPE|Error/);
    // After a real run the dry run reuses the folder's clips, and the run said where requests went.
    const runDir = join(fx.dir, "pipe-run");
    const real = await cli(["run", file, "--out", runDir, "--no-media"], {
      FAL_EMULATOR_URL: fx.emu.url,
    }).done;
    expect(real.stderr).toContain(
      `→ emulator at ${fx.emu.url} (nothing billed), 3 clip(s) to generate, at most $0.99`,
    );
    // HTTP retries inside the fal client are told once, counted, not a line each.
    const flaky = join(fx.dir, "flaky.yaml");
    await writeFile(flaky, manifestText(2, "flaky-status"));
    fx.emu.setFaults({
      rules: [
        { route: "stream", kind: 503, count: 6 },
        { route: "status", kind: 502, count: 2 },
      ],
    });
    const retried = await cli(["run", flaky, "--out", join(fx.dir, "flaky-run"), "--no-media"], {
      FAL_EMULATOR_URL: fx.emu.url,
    }).done.finally(() => fx.emu.setFaults({}));
    expect(retried.code).toBe(0);
    expect(retried.stderr).not.toContain("http retry:");
    expect(
      retried.stderr.match(/http retries inside the fal client: status after HTTP 502 ×2/g),
    ).toHaveLength(1);
    const again = await cli(["run", file, "--dry-run", "--out", runDir, "--json"], {
      FAL_EMULATOR_URL: fx.emu.url,
    }).done;
    expect(expectDocumented(again.stdout)).toEqual([
      expect.objectContaining({ type: "dry_run", clips: 3, reused: 3, new: 0, atMostUsd: 0 }),
    ]);
  });

  it("says what it means on odd input: validate --json, a binary file is not a manifest, nothing to assemble", async () => {
    const file = join(fx.dir, "ok.csv");
    await writeFile(file, "prompt,duration\na cat,6\n");
    const v = await cli(["validate", file, "--json"]).done;
    expect([v.code, ...expectDocumented(v.stdout)]).toEqual([
      0,
      {
        type: "validate",
        file,
        kind: "manifest",
        name: "ok",
        scenes: 1,
        generations: 1,
        usd: 0.27,
        assembles: false,
      },
    ]);
    // A misspelt option as a CSV column, and a --var no prompt uses: allowed, but said (file:line:col).
    const typo = join(fx.dir, "typo.csv");
    await writeFile(typo, "prompt,duraton\na {{look}} cat,10\n");
    const warned = await cli(["estimate", typo, "--var", "look=grainy", "--var", "mood=calm"]).done;
    expect(warned.code).toBe(0);
    expect(warned.stderr).toContain(
      `warning: ${typo}:1:2: duraton: column "duraton" is not a scene field and no prompt uses {{duraton}}; did you mean the scene field "duration"?`,
    );
    expect(warned.stderr).toContain(
      `warning: ${typo}: mood: variable "mood" given to this manifest (--var, or a job's vars:) is not used by any prompt`,
    );
    expect(warned.stderr).not.toContain("look");
    const song = join(fx.dir, "song.mp3");
    await writeFile(
      song,
      Buffer.from([0x49, 0x44, 0x33, 0x04, 0x00, 0x00, 0xff, 0xfb, 0x90, 0x00]),
    );
    const bad = await cli(["validate", song]).done;
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("not a manifest: this is binary data");
    expect(bad.stderr.split("\n").filter(Boolean).length).toBeLessThanOrEqual(2);
    // A run folder with no finished clip: assemble says so and fails, instead of exiting 0 silently.
    const runDir = join(fx.dir, "empty-run");
    await mkdir(runDir, { recursive: true });
    await writeFile(
      join(runDir, "run.json"),
      JSON.stringify({
        version: 2,
        manifest: {
          name: "e",
          file: file,
          format: "csv",
          defaults: { duration: "6", prompt_optimizer: true, takes: 1 },
          vars: {},
          scenes: [
            {
              id: "a",
              prompt: "a cat",
              duration: "6",
              prompt_optimizer: true,
              takes: 1,
              tags: [],
              source: { file },
            },
          ],
          thumbnails: { posterAt: "auto", sheetColumns: 4, preview: "none" },
        },
      }),
    );
    const a = await cli(["assemble", runDir]).done;
    expect(a.code).toBe(1);
    expect(a.stderr).toContain("nothing to assemble");
  });

  it("runs the emulator in the foreground until Ctrl-C", async () => {
    const p = cli([
      "emulator",
      "--port",
      "0",
      "--slots",
      "3",
      "--fault",
      "submit:503:0.5",
      "--policy-word",
      "gore",
      "--price",
      "0.06",
    ]);
    let url = "";
    await waitFor(
      () => Boolean((url = /http:\/\/127\.0\.0\.1:\d+/.exec(out())?.[0] ?? "")),
      10_000,
    );
    const health = await fetch(`${url}/__emulator/health`);
    expect(await health.json()).toEqual({ ok: true });
    const csv = join(fx.dir, "priced.csv");
    await writeFile(csv, "prompt,duration\none,10\n");
    const est = await cli(["estimate", csv, "--json"], { FAL_EMULATOR_URL: url }).done;
    expect(JSON.parse(est.stdout)).toMatchObject({
      usd: 0.6,
      price: { usdPerSecond: 0.06, source: "fal pricing API" },
    });
    // A second emulator on the same port: a refusal to change (exit 2), one line.
    const busy = await cli(["emulator", "--port", new URL(url).port]).done;
    expect([busy.code, busy.stderr.trim()]).toEqual([
      2,
      `hailuo: error [usage]: port ${new URL(url).port} on 127.0.0.1 is already in use; pick another with --port`,
    ]);
    p.child.kill("SIGINT");
    const r = await p.done;
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("emulator stopped");
    const bad = await cli(["emulator", "--fault", "submit:418:0.1"]).done;
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("kind must be");
    function out(): string {
      return stdoutOf(p.child);
    }
  });

  it("assembles, thumbnails and reports a run folder from the command line", async () => {
    const file = join(fx.dir, "media.yaml");
    await writeFile(file, manifestText(3, "media-cli"));
    const runDir = join(fx.dir, "media-run");
    const env = { FAL_EMULATOR_URL: fx.emu.url };
    const ran = await cli(["run", file, "--out", runDir, "--no-media", "--json"], env).done;
    expect(ran.code).toBe(0);
    expect(existsSync(join(runDir, "index.html"))).toBe(false);
    // --json: stdout is only documented events, from where money goes to the summary.
    const events = expectDocumented(ran.stdout);
    expect(events.map((e) => e.type).filter((t, i, all) => all.indexOf(t) === i)).toEqual([
      "price",
      "target",
      "plan",
      "item",
      "billed",
      "finished",
      "summary",
    ]);
    expect(
      events.filter((e) => e.type === "billed").reduce((sum, e) => sum + (e.usd as number), 0),
    ).toBeCloseTo(0.99, 6);
    const music = join(fx.dir, "music.m4a");
    await promisify(execFile)("ffmpeg", [
      "-v",
      "error",
      "-y",
      "-f",
      "lavfi",
      "-i",
      "sine=f=330:d=2",
      "-c:a",
      "aac",
      music,
    ]);
    const film = join(fx.dir, "cli-film.mp4");
    // Probe once: the clips were measured at download; assembling reads the journal, not ffprobe
    // (a wrapper logs every ffprobe run; only the version check and the finished film's own check may appear).
    const probes = join(fx.dir, "ffprobe.log");
    const wrapper = join(fx.dir, "ffprobe-counting");
    await writeFile(wrapper, `#!/bin/sh\necho "$@" >> '${probes}'\nexec ffprobe "$@"\n`, {
      mode: 0o755,
    });
    const a = await cli(
      [
        "assemble",
        runDir,
        "--transition",
        "fade:0.5",
        "--audio",
        music,
        "--out",
        film,
        "--preset",
        "ultrafast",
        "--json",
      ],
      { ...env, FFPROBE_PATH: wrapper },
    ).done;
    const probed = (await readFile(probes, "utf8")).trim().split("\n");
    expect(probed.filter((l) => l.includes("/clips/"))).toEqual([]);
    expect(probed.filter((l) => l.includes(film))).toHaveLength(1);
    expect(a.code).toBe(0);
    const media = expectDocumented(a.stdout);
    expect(
      media.filter((e) => e.type === "media_progress" && e.step === "film").length,
    ).toBeGreaterThan(0);
    expect(media.at(-1)).toMatchObject({ type: "media_done", film, filmMode: "reencode" });
    const facts = await ffprobeFacts(film);
    // 10 + 6 + 6 − two 0.5 s fades
    expect(facts.durationS).toBeCloseTo(21, 1);
    expect(facts.hasAudio).toBe(true);
    // x264 writes its settings into the stream: ultrafast is the one without subpixel refinement.
    expect((await readFile(film)).includes("subme=0")).toBe(true);
    expect((await cli(["assemble", runDir, "--transition", "spin:1"]).done).code).toBe(2);
    expect((await cli(["assemble", runDir, "--preset", "warp"]).done).code).toBe(2);
    const t = await cli(["thumbs", runDir, "--sheet", "3x1", "--gif", "--json"]).done;
    expect(t.code).toBe(0);
    expect(expectDocumented(t.stdout)).toEqual([
      { type: "thumbs", posters: expect.any(Array), sheet: join(runDir, "contact-sheet.jpg") },
    ]);
    const st = await cli(["status", runDir, "--json"]).done;
    expect(expectDocumented(st.stdout)).toEqual([
      {
        type: "status",
        report: expect.objectContaining({ totals: expect.objectContaining({ done: 3 }) }),
      },
    ]);
    expect((await ffprobeFacts(join(runDir, "contact-sheet.jpg"))).width).toBe(3 * 320 + 4 * 8);
    const r = await cli(["report", runDir]).done;
    expect(r.code).toBe(0);
    expect(await readFile(join(runDir, "index.html"), "utf8")).toContain(
      "media-cli scene number 0",
    );
  }, 120_000);

  it("on a pipe, says once when each media step starts and once when it ends", async () => {
    const file = join(fx.dir, "lines.yaml");
    await writeFile(
      file,
      `name: lines\nassemble: {}\nthumbnails: { preview: none }\nscenes:\n${[1, 2, 3].map((i) => `  - prompt: lines scene ${i}\n    duration: 6\n`).join("")}`,
    );
    const r = await cli(["run", file, "--out", join(fx.dir, "lines-run")], {
      FAL_EMULATOR_URL: fx.emu.url,
    }).done;
    expect(r.code, r.stderr).toBe(0);
    // The film's pieces are made while clips land, then joined: still one line each way.
    expect(
      r.stderr.split("\n").filter((l) => /^(film|thumbnails): (started|done)$/.test(l)),
    ).toEqual(["film: started", "film: done", "thumbnails: started", "thumbnails: done"]);
  });

  it("lists scheduled jobs with their next fire time", async () => {
    const jobs = join(fx.dir, "jobs");
    await mkdir(join(jobs, "nightly"), { recursive: true });
    await writeFile(
      join(jobs, "nightly", "job.yaml"),
      `schedule: "0 3 * * *"\ntimezone: Asia/Tokyo\nmanifest: ../x.yaml\noutput: ../../nightly-out\n`,
    );
    await writeFile(join(jobs, "x.yaml"), "name: x\nscenes:\n  - prompt: nightly {{date}} clip\n");
    const r = await cli(["jobs", "list", jobs, "--json"]).done;
    expect(r.code).toBe(0);
    const [
      {
        type,
        jobs: [row],
      },
    ] = expectDocumented(r.stdout) as [{ type: string; jobs: [Record<string, unknown>] }];
    expect(type).toBe("jobs");
    expect(row).toMatchObject({
      job: "nightly",
      schedule: "0 3 * * *",
      timeZone: "Asia/Tokyo",
      last: null,
    });
    // 03:00 in Tokyo is 18:00 UTC the day before; people read it on the job's clock.
    expect(row.next).toMatch(/T18:00:00\.000Z$/);
    expect(row.nextLocal).toMatch(/^\d{4}-\d\d-\d\d 03:00 GMT\+9$/);
    expect((await cli(["jobs", "list", jobs]).done).stdout).toMatch(
      /next \d{4}-\d\d-\d\d 03:00 GMT\+9/,
    );
    // validate knows a job file from a manifest, and checks the manifest it runs.
    const v = await cli(["validate", join(jobs, "nightly", "job.yaml")]).done;
    expect([v.code, v.stdout]).toEqual([
      0,
      expect.stringMatching(
        /job\.yaml: ok — job "nightly", "0 3 \* \* \*" \(Asia\/Tokyo\), next \d{4}-\d\d-\d\d 03:00 GMT\+9; each run: 1 scene\(s\), 1 generation\(s\), \$0\.27\n/,
      ),
    ]);
    const unknown = await cli(["schedule", jobs, "--once", "weekly"]).done;
    expect([unknown.code, unknown.stderr.trim()]).toEqual([
      2,
      `hailuo: error [usage]: no job named weekly in ${jobs} (have: nightly)`,
    ]);
  });

  it("is usable from anywhere: `npm link` puts hailuo on the PATH, and `pnpm hailuo` resolves paths from where the user stands", async () => {
    const exec = promisify(execFile);
    const prefix = join(fx.dir, "global");
    const here = join(fx.dir, "elsewhere");
    await mkdir(here, { recursive: true });
    await writeFile(join(here, "m.yaml"), "name: here\nscenes:\n  - prompt: from anywhere\n");
    const env = { ...process.env, NPM_CONFIG_PREFIX: prefix, FAL_EMULATOR_URL: fx.emu.url };
    await exec("npm", ["link"], { cwd: join(import.meta.dirname, ".."), env });
    const linked = await exec(join(prefix, "bin", "hailuo"), ["validate", "m.yaml"], {
      cwd: here,
      env,
    });
    expect(linked.stdout).toBe('m.yaml: ok — "here", 1 scene(s), 1 generation(s), $0.27\n');
    // Through pnpm at the repository root, a relative --out still lands in the user's folder.
    const root = join(import.meta.dirname, "../../..");
    const viaPnpm = await exec(
      "pnpm",
      ["--dir", root, "hailuo", "generate", "from anywhere", "--out", "clip.mp4"],
      { cwd: here, env },
    );
    expect(viaPnpm.stdout.trim()).toBe(join(here, "clip.mp4"));
    expect(await decodeErrors(join(here, "clip.mp4"))).toBe("");
  });

  it("starts the built-in emulator when neither FAL_KEY nor FAL_EMULATOR_URL is set", async () => {
    const out = join(fx.dir, "one.mp4");
    const r = await cli(["generate", "A single test clip", "--out", out], {
      FAL_EMULATOR_URL: undefined,
    }).done;
    expect(r.code).toBe(0);
    expect(r.stderr.split("\n").filter((l) => l.includes("built-in fal emulator"))).toHaveLength(1);
    expect((await ffprobeFacts(out)).frames).toBe(144);
  });
});
